"""One stem's channel strip: its spectrogram, a fader, a peak/RMS meter, mute and solo.

Thread contract: GUI thread only. The strip holds the stem's control state (fader, mute, solo)
as its widgets show it and emits a signal on every change; the window forwards each to the
engine (single stores). ``show_telemetry`` takes values the window's timer already copied out
of a telemetry snapshot, and the gain the mixer applies to the stem for a post-fader meter.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .fader import Fader, format_db
from .level_meter import LevelMeter, post_fader_db
from .spectrogram_view import SpectrogramView

MUTE_STYLE = "QPushButton:checked { background: #d0a020; color: black; }"
SOLO_STYLE = "QPushButton:checked { background: #3090e0; color: black; }"
LEARN_STYLE = "QFrame#strip { border: 2px solid #e04080; }"
METER_POINT_STYLE = "color: #909098;"
POST_FADER_TIP = (
    "post-fader meter: {name} as it goes into the mix, after its fader, mute and solo (and the "
    "master); right-click to meter it pre-fader"
)
PRE_FADER_TIP = (
    "pre-fader meter: {name} as the model separated it, before its fader, mute and solo; "
    "right-click to meter it post-fader"
)


class StemStrip(QFrame):
    """Args:
    index: the stem's position in the engine (0-based).
    name: the stem's name.
    sample_rate: the stems' rate (for the spectrogram's axis).
    """

    gain_changed = Signal(int, float)  # stem, dB (-inf: silence)
    mute_toggled = Signal(int, bool)
    solo_toggled = Signal(int, bool)
    touched = Signal(str)  # "fader:<i>", "mute:<i>" or "solo:<i>": for MIDI learn
    meter_point_chosen = Signal(bool)  # from the meter's menu: True post-fader, False pre-fader

    def __init__(self, index: int, name: str, sample_rate: int) -> None:
        super().__init__()
        self.setObjectName("strip")
        self.index = index
        self.name = name
        self.spectrogram = SpectrogramView(sample_rate, title=f"{index + 1}  {name}")
        self.fader = Fader()
        self.meter = LevelMeter()
        self.meter.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.meter.customContextMenuRequested.connect(self._show_meter_menu)
        self.meter_point_label = QLabel()
        self.meter_point_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.meter_point_label.setStyleSheet(METER_POINT_STYLE)
        small = QFont(self.meter_point_label.font())
        small.setPointSizeF(max(small.pointSizeF() - 2.0, 6.0))
        self.meter_point_label.setFont(small)
        self.meter_point_label.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.meter_point_label.customContextMenuRequested.connect(self._show_meter_menu)
        self.post_fader = True
        self.set_meter_post_fader(True)
        self.db_label = QLabel(format_db(0.0))
        self.db_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mute_button = self._toggle_button("M", f"mute {name} (key {index + 1})", MUTE_STYLE)
        self.solo_button = self._toggle_button("S", f"solo {name} (Shift+{index + 1})", SOLO_STYLE)

        meter_column = QVBoxLayout()
        meter_column.addWidget(self.meter, stretch=1, alignment=Qt.AlignmentFlag.AlignHCenter)
        meter_column.addWidget(self.meter_point_label)
        controls = QHBoxLayout()
        controls.addStretch(1)
        controls.addWidget(self.fader)
        controls.addLayout(meter_column)
        controls.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.mute_button)
        buttons.addWidget(self.solo_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.spectrogram, stretch=3)
        layout.addLayout(controls, stretch=2)
        layout.addWidget(self.db_label)
        layout.addLayout(buttons)

        self.fader.db_changed.connect(self._on_fader)
        self.fader.touched.connect(lambda: self.touched.emit(f"fader:{index}"))
        self.mute_button.toggled.connect(lambda on: self.mute_toggled.emit(index, on))
        self.solo_button.toggled.connect(lambda on: self.solo_toggled.emit(index, on))
        self.mute_button.clicked.connect(lambda: self.touched.emit(f"mute:{index}"))
        self.solo_button.clicked.connect(lambda: self.touched.emit(f"solo:{index}"))

    @staticmethod
    def _toggle_button(text: str, tip: str, style: str) -> QPushButton:
        button = QPushButton(text)
        button.setCheckable(True)
        button.setToolTip(tip)
        button.setStyleSheet(style)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setFixedWidth(36)
        return button

    def _on_fader(self, db: float) -> None:
        self.db_label.setText(format_db(db))
        self.gain_changed.emit(self.index, db)

    # -- state ------------------------------------------------------------------------------

    @property
    def muted(self) -> bool:
        return self.mute_button.isChecked()

    @property
    def soloed(self) -> bool:
        return self.solo_button.isChecked()

    def set_learning(self, learning: bool) -> None:
        self.setStyleSheet(LEARN_STYLE if learning else "")

    def set_meter_post_fader(self, post_fader: bool) -> None:
        """Meter the stem after its fader (the default) or before it."""
        self.post_fader = post_fader
        self.meter_point_label.setText("post-fader" if post_fader else "pre-fader")
        tip = (POST_FADER_TIP if post_fader else PRE_FADER_TIP).format(name=self.name)
        self.meter.setToolTip(tip)
        self.meter_point_label.setToolTip(tip)

    def meter_menu(self) -> QMenu:
        """The meter's context menu: post-fader or pre-fader (for every strip: the window
        applies the choice to all)."""
        menu = QMenu(self)
        for text, post_fader in (("Post-fader meters", True), ("Pre-fader meters", False)):
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(post_fader == self.post_fader)
            action.triggered.connect(
                lambda _checked=False, post=post_fader: self.meter_point_chosen.emit(post)
            )
        return menu

    def _show_meter_menu(self, position: QPoint) -> None:
        widget = self.sender()
        at = widget.mapToGlobal(position) if isinstance(widget, QWidget) else position
        self.meter_menu().exec(at)

    def show_telemetry(self, rms_db: float, peak_db: float, gain: float | None = None) -> None:
        """The stem's levels as the engine measured them (pre-fader), and the gain the mixer
        applies to it: post-fader, the meter shows the levels times the gain."""
        if self.post_fader and gain is not None:
            rms_db, peak_db = post_fader_db(rms_db, gain), post_fader_db(peak_db, gain)
        self.meter.set_levels(rms_db, peak_db)
