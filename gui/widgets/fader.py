"""A fader in decibels: a slider in tenths of a dB whose bottom is silence; a double-click sets
it back to 0 dB.

Thread contract: GUI thread only. The fader only emits ``db_changed``; the window turns that
into a gain target in the engine (one store, ramped by the audio callback).
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QSlider

MIN_DB = -60.0  # the bottom of the travel: silence
MAX_DB = 12.0
STEPS_PER_DB = 10


def format_db(db: float) -> str:
    return "-inf dB" if db == -math.inf else f"{db:+.1f} dB"


class Fader(QSlider):
    """Emits ``db_changed(dB)``, ``-inf`` at the bottom of its travel."""

    db_changed = Signal(float)
    double_clicked = Signal()
    touched = Signal()  # any press on it: MIDI learn takes it as the control to bind

    def __init__(self, orientation: Qt.Orientation = Qt.Orientation.Vertical) -> None:
        super().__init__(orientation)
        self.setRange(round(MIN_DB * STEPS_PER_DB), round(MAX_DB * STEPS_PER_DB))
        self.setSingleStep(5)
        self.setPageStep(30)
        self.setValue(0)
        # Keys belong to the window (space, arrows, 1-4), not to whichever fader was touched.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setTickPosition(QSlider.TickPosition.TicksBothSides)
        self.setTickInterval(6 * STEPS_PER_DB)
        self.valueChanged.connect(self._emit_db)

    @property
    def db(self) -> float:
        value = self.value()
        return -math.inf if value <= self.minimum() else value / STEPS_PER_DB

    def set_db(self, db: float) -> None:
        """Move the fader (emits ``db_changed`` if it moved)."""
        if db == -math.inf:
            self.setValue(self.minimum())
        else:
            self.setValue(round(min(max(db, MIN_DB), MAX_DB) * STEPS_PER_DB))

    def set_fraction(self, fraction: float) -> None:
        """Move to a point of the travel, 0 (bottom) to 1 (top): what a MIDI fader sends."""
        fraction = min(max(fraction, 0.0), 1.0)
        self.setValue(round(self.minimum() + fraction * (self.maximum() - self.minimum())))

    def _emit_db(self, _value: int) -> None:
        self.db_changed.emit(self.db)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.touched.emit()
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.set_db(0.0)
        self.double_clicked.emit()
        event.accept()
