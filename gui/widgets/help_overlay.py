"""The keyboard help: a panel over the window that lists every key it answers to.

Thread contract: GUI thread only. The window owns the keys: it opens the overlay on ``?`` and
closes it on ``?`` or Esc (``window.py``); a click on the overlay closes it too. The overlay
shows the rows the window gives it (its key table and its menus' shortcuts), so the list is
the one the window acts on.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

SHADE = QColor(0, 0, 0, 170)
PANEL_STYLE = (
    "QFrame#help { background: #20202c; border: 1px solid #606078; border-radius: 6px; }"
    "QLabel { color: #e8e8f0; }"
)


class HelpOverlay(QWidget):
    """Covers its parent (and follows its size); hidden until ``show_rows``.

    Args:
        parent: the widget to cover (the window).
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.panel = QFrame(self)
        self.panel.setObjectName("help")
        self.panel.setStyleSheet(PANEL_STYLE)
        self.label = QLabel(self.panel)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self.panel)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.addWidget(self.label)
        self.rows: list[tuple[str, str]] = []
        self.hide()

    def show_rows(self, title: str, rows: list[tuple[str, str]]) -> None:
        """Show ``rows`` of (keys, what they do) under ``title``, over the whole parent."""
        self.rows = list(rows)
        cells = "".join(
            f"<tr><td style='padding: 2px 18px 2px 0'><b>{html.escape(keys)}</b></td>"
            f"<td style='padding: 2px 0'>{html.escape(action)}</td></tr>"
            for keys, action in self.rows
        )
        self.label.setText(f"<h3>{html.escape(title)}</h3><table>{cells}</table>")
        self.fit()
        self.show()
        self.raise_()

    def text(self) -> str:
        """The rows as plain text, one per line: ``keys<TAB>what they do``."""
        return "\n".join(f"{keys}\t{action}" for keys, action in self.rows)

    def fit(self) -> None:
        """Cover the parent again, the panel in its middle (the parent calls this when it is
        resized)."""
        parent = self.parentWidget()
        if parent is None:
            return
        self.setGeometry(parent.rect())
        self.panel.adjustSize()
        size = self.panel.sizeHint()
        self.panel.move((self.width() - size.width()) // 2, (self.height() - size.height()) // 2)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), SHADE)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()
        event.accept()
