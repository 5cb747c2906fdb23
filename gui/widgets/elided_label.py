"""A one-line label that fits whatever width it is given: text that does not fit ends in "…"
(the whole text is then its tooltip), and the label never asks its layout for more room than a
few letters, so a long status can neither widen the window nor run under its neighbours.

Thread contract: GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

MARGIN = 2  # pixels left and right of the text
MIN_CHARACTERS = "MMMM"  # the least it shows: a few letters and the ellipsis


class ElidedLabel(QWidget):
    """Args:
    text: the text to show.
    tooltip: a fixed tooltip (``""``: the whole text, shown when it does not fit).
    """

    def __init__(self, text: str = "", tooltip: str = "") -> None:
        super().__init__()
        self._text = text
        self._tooltip = tooltip
        # It fills its own background, so a new text repaints the label alone, not the status
        # bar and the window under it.
        self.setAutoFillBackground(True)
        # Preferred: as wide as its text when there is room, down to a few letters when not.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._update_tooltip()

    def text(self) -> str:
        """The whole text, whatever is shown of it."""
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 (QLabel's name, for its callers)
        if text != self._text:
            self._text = text
            self._update_tooltip()
            self.updateGeometry()  # its preferred width changed
            self.update()

    def set_tooltip(self, tooltip: str) -> None:
        """A fixed tooltip (``""``: the whole text when it does not fit)."""
        self._tooltip = tooltip
        self._update_tooltip()

    def shown_text(self) -> str:
        """What fits: the text, or its beginning and "…"."""
        width = max(self.width() - 2 * MARGIN, 0)
        metrics = self.fontMetrics()
        if metrics.horizontalAdvance(self._text) <= width:
            return self._text  # (elidedText elides a text exactly as wide as the room)
        return metrics.elidedText(self._text, Qt.TextElideMode.ElideRight, width)

    def is_elided(self) -> bool:
        return self.shown_text() != self._text

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(self._text) + 2 * MARGIN, metrics.height())

    def minimumSizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(MIN_CHARACTERS) + 2 * MARGIN, metrics.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        if self._tooltip:
            self.setToolTip(self._tooltip)
        else:
            self.setToolTip(self._text if self.is_elided() else "")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.rect().adjusted(MARGIN, 0, -MARGIN, 0)
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(rect, align, self.shown_text())
        painter.end()
