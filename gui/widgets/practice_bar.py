"""The practice controls: tempo (slider and spin box), transpose (semitones and cents), the
song's BPM and key, snap loop A-B to bars, and the count-in.

Thread contract: GUI thread only. The bar emits what the user asked for (``tempo_changed`` in
percent, ``transpose_changed`` in semitones, ``snap_toggled``, ``count_in_toggled``); the window
applies it to the session (single stores) and calls ``show_grid`` with the beat grid once the
session has it. A double-click on the tempo slider or either spin box resets it (100 %, 0).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from ...realtime.practice.beat_grid import BeatGrid

TEMPO_RANGE = (50, 150)  # percent
TRANSPOSE_RANGE = (-12.0, 12.0)  # semitones
COMPUTING = "finding the beat..."


def grid_text(grid: BeatGrid | None) -> tuple[str, str]:
    """What the BPM label says about ``grid`` (``None``: still being found), and its tooltip."""
    if grid is None:
        return "no beat grid", COMPUTING
    key = f" · {grid.key}" if grid.key else ""
    if not grid.available:
        return "no beat grid" + key, grid.reason
    return f"BPM {grid.bpm:.1f}{key}", f"{len(grid.beats)} beats, {len(grid.downbeats)} bars"


class TempoSlider(QSlider):
    """Tempo in percent; a double-click puts it back at 100 %."""

    touched = Signal()

    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.setRange(*TEMPO_RANGE)
        self.setValue(100)
        self.setSingleStep(1)
        self.setPageStep(5)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window
        self.setFixedWidth(120)

    def set_fraction(self, fraction: float) -> None:
        """A point of the travel, 0 (50 %) to 1 (150 %): what a MIDI knob sends."""
        fraction = min(max(fraction, 0.0), 1.0)
        self.setValue(round(self.minimum() + fraction * (self.maximum() - self.minimum())))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.touched.emit()
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.setValue(100)
        event.accept()


class TransposeSpinBox(QDoubleSpinBox):
    """Semitones, -12 to +12, in cents (hundredths), shown signed: ``+2.50 st``."""

    def __init__(self) -> None:
        super().__init__()
        self.setRange(*TRANSPOSE_RANGE)
        self.setDecimals(2)
        self.setSingleStep(0.01)
        self.setSuffix(" st")
        self.setToolTip("transpose in semitones, the decimals are cents (- and = keys: one "
                        "semitone; double-click: 0)")  # fmt: skip

    def textFromValue(self, value: float) -> str:
        return f"{value:+.2f}"


class PracticeBar(QWidget):
    tempo_changed = Signal(int)  # percent
    transpose_changed = Signal(float)  # semitones
    snap_toggled = Signal(bool)
    count_in_toggled = Signal(bool)
    touched = Signal(str)  # "tempo" or "transpose": for MIDI learn

    def __init__(self) -> None:
        super().__init__()
        self.tempo_slider = TempoSlider()
        self.tempo_slider.setToolTip("tempo, pitch kept ([ and ] keys: 5 %; double-click: 100 %)")
        self.tempo_spin = QSpinBox()
        self.tempo_spin.setRange(*TEMPO_RANGE)
        self.tempo_spin.setValue(100)
        self.tempo_spin.setSuffix(" %")
        self.tempo_spin.setToolTip(self.tempo_slider.toolTip())
        self.transpose_spin = TransposeSpinBox()
        self.grid_label = QLabel()
        self.snap_button = self._button("Snap", "loop A and B snap to the nearest bar line")
        self.count_in_button = self._button(
            "Count-in", "one bar of clicks before play and before each loop restart"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for widget in (QLabel("tempo"), self.tempo_slider, self.tempo_spin, QLabel("transpose"),
                       self.transpose_spin, self.grid_label, self.snap_button,
                       self.count_in_button):  # fmt: skip
            layout.addWidget(widget)
        layout.addStretch(1)
        self.show_grid(None)

        self.tempo_slider.valueChanged.connect(self._on_tempo)
        self.tempo_spin.valueChanged.connect(self.tempo_slider.setValue)
        self.transpose_spin.valueChanged.connect(self.transpose_changed)
        self.snap_button.toggled.connect(self.snap_toggled)
        self.count_in_button.toggled.connect(self.count_in_toggled)
        self.tempo_slider.touched.connect(lambda: self.touched.emit("tempo"))
        for spin in (self.tempo_spin, self.transpose_spin):
            spin.lineEdit().installEventFilter(self)
            spin.installEventFilter(self)

    @staticmethod
    def _button(text: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setCheckable(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return button

    def _on_tempo(self, percent: int) -> None:
        self.tempo_spin.blockSignals(True)
        self.tempo_spin.setValue(percent)
        self.tempo_spin.blockSignals(False)
        self.tempo_changed.emit(percent)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """A double-click on a spin box resets it; a press marks it for MIDI learn."""
        kind = event.type()
        if kind in (QEvent.Type.MouseButtonDblClick, QEvent.Type.MouseButtonPress):
            tempo = watched in (self.tempo_spin, self.tempo_spin.lineEdit())
            if kind == QEvent.Type.MouseButtonPress:
                self.touched.emit("tempo" if tempo else "transpose")
                return False
            if tempo:
                self.tempo_slider.setValue(100)
            else:
                self.transpose_spin.setValue(0.0)
            return True
        return super().eventFilter(watched, event)

    # -- what the window sets ---------------------------------------------------------------

    @property
    def tempo_percent(self) -> int:
        return self.tempo_slider.value()

    @property
    def transpose(self) -> float:
        return self.transpose_spin.value()

    def show_grid(self, grid: BeatGrid | None) -> None:
        """The song's BPM and key, or "no beat grid" and why (its tooltip)."""
        text, tip = grid_text(grid)
        self.grid_label.setText(text)
        self.grid_label.setToolTip(tip)
