"""One stem's channel strip: its spectrogram, a fader, a peak/RMS meter, mute and solo.

Thread contract: GUI thread only. The strip holds the stem's control state (fader, mute, solo)
as its widgets show it and emits a signal on every change; the window forwards each to the
engine (single stores). ``show_telemetry`` takes values the window's timer already copied out
of a telemetry snapshot.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from .fader import Fader, format_db
from .level_meter import LevelMeter
from .spectrogram_view import SpectrogramView

MUTE_STYLE = "QPushButton:checked { background: #d0a020; color: black; }"
SOLO_STYLE = "QPushButton:checked { background: #3090e0; color: black; }"
LEARN_STYLE = "QFrame#strip { border: 2px solid #e04080; }"


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

    def __init__(self, index: int, name: str, sample_rate: int) -> None:
        super().__init__()
        self.setObjectName("strip")
        self.index = index
        self.name = name
        self.spectrogram = SpectrogramView(sample_rate, title=f"{index + 1}  {name}")
        self.fader = Fader()
        self.meter = LevelMeter()
        self.db_label = QLabel(format_db(0.0))
        self.db_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mute_button = self._toggle_button("M", f"mute {name} (key {index + 1})", MUTE_STYLE)
        self.solo_button = self._toggle_button("S", f"solo {name} (Shift+{index + 1})", SOLO_STYLE)

        controls = QHBoxLayout()
        controls.addStretch(1)
        controls.addWidget(self.fader)
        controls.addWidget(self.meter)
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

    def show_telemetry(self, rms_db: float, peak_db: float) -> None:
        self.meter.set_levels(rms_db, peak_db)
