"""A vertical peak and RMS meter, painted with QPainter (no layout work per frame).

Thread contract: GUI thread only. ``set_levels`` stores two numbers that the window's timer
copied out of the engine's telemetry; the widget repaints only when what it draws changes (the
bar's top, the peak line or the colour moves by a pixel), not on every new number.

The bar is the RMS level; the line above it is the peak, held for ``PEAK_HOLD_S`` and then
falling at ``PEAK_FALL_DB_PER_S``, as on a mixing desk, so that a short transient stays
readable at a 30-60 Hz refresh.

A stem's meter is post-fader by default (``post_fader_db``): it shows the stem as it goes into
the mix, so a muted stem's meter falls to nothing and the meter follows the fader; pre-fader it
shows the stem as the model separated it.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...realtime.engine.mixer import gain_to_db

FLOOR_DB = -60.0
CEILING_DB = 6.0
PEAK_HOLD_S = 1.0
PEAK_FALL_DB_PER_S = 20.0
BACKGROUND = QColor("#181820")
BAR = QColor("#40c070")
BAR_OVER = QColor("#e04040")  # a peak above 0 dB
PEAK_LINE = QColor("#f0f0a0")


def post_fader_db(level_db: float, gain: float) -> float:
    """A stem's level after the mixer's gain for it, in dB (``-inf`` for a gain of 0).

    The engine's telemetry measures each stem's RMS and peak before the mixer (pre-fader: the
    worker records the stems it separated), and the mixer's gains are not part of telemetry. A
    gain multiplies every sample of the stem, so it multiplies its RMS and its peak alike: the
    post-fader level is the pre-fader level plus the gain in dB. The gain is the one the mixer
    applied last (``current_gains``: fader, mute, solo and master, with their ramps), read at the
    same frame as the levels; the levels are measured a hop at a time by the worker, so the two
    may be up to the engine's buffer apart in time, which a meter does not show.
    """
    return level_db + gain_to_db(gain)


def level_fraction(db: float) -> float:
    """Where a level sits on the meter, 0 (floor) to 1 (ceiling)."""
    return min(max((db - FLOOR_DB) / (CEILING_DB - FLOOR_DB), 0.0), 1.0)


class LevelMeter(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.rms_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self.held_peak_db = FLOOR_DB
        self._held_at = 0.0
        self._drawn: tuple[int, int, bool] | None = None  # what the last paint showed
        # It paints every pixel of itself: Qt need not paint the strip and the window under it
        # first (which it otherwise does on each of the meter's repaints).
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(80)

    def sizeHint(self) -> QSize:
        return QSize(14, 160)

    def set_levels(self, rms_db: float, peak_db: float) -> None:
        now = time.monotonic()
        if peak_db >= self.held_peak_db:
            self.held_peak_db, self._held_at = peak_db, now
        elif now - self._held_at > PEAK_HOLD_S:
            fallen = self.held_peak_db - PEAK_FALL_DB_PER_S * (now - self._held_at - PEAK_HOLD_S)
            self.held_peak_db = max(fallen, peak_db)
        self.rms_db, self.peak_db = rms_db, peak_db
        if self._drawing() != self._drawn:
            self.update()

    def _drawing(self) -> tuple[int, int, bool]:
        """What a paint would show, to the pixel: the bar's top, the peak line, red or not."""
        height = self.height()
        rms_top = round(height * (1.0 - level_fraction(self.rms_db)))
        peak_y = int(height * (1.0 - level_fraction(self.held_peak_db)))
        return rms_top, peak_y, self.peak_db > 0.0

    def paintEvent(self, event: QPaintEvent) -> None:
        self._drawn = self._drawing()
        painter = QPainter(self)
        width, height = self.width(), self.height()
        painter.fillRect(0, 0, width, height, BACKGROUND)
        rms_top = height * (1.0 - level_fraction(self.rms_db))
        colour = BAR_OVER if self.peak_db > 0.0 else BAR
        painter.fillRect(QRectF(2, rms_top, width - 4, height - rms_top), colour)
        peak_y = height * (1.0 - level_fraction(self.held_peak_db))
        painter.setPen(PEAK_LINE)
        painter.drawLine(1, int(peak_y), width - 2, int(peak_y))
        zero_y = int(height * (1.0 - level_fraction(0.0)))
        painter.setPen(Qt.PenStyle.DotLine)
        painter.drawLine(0, zero_y, width, zero_y)
        painter.end()
