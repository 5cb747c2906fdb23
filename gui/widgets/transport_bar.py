"""The transport: play/pause, a seek bar with the time, loop A-B, bypass and the master fader.

Thread contract: GUI thread only. The bar emits what the user asked for; the window applies it
to the file source and the engine (single stores) and calls ``show_position`` from its timer
with the position it read.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from .fader import Fader, format_db

MS = 1000


def format_time(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class TransportBar(QWidget):
    play_clicked = Signal()
    seek_requested = Signal(float)  # seconds from the start
    set_a_clicked = Signal()
    set_b_clicked = Signal()
    loop_toggled = Signal(bool)
    bypass_toggled = Signal(bool)
    master_changed = Signal(float)  # dB

    def __init__(self) -> None:
        super().__init__()
        self.play_button = self._button("Play", "play/pause (space)")
        self.seek_bar = QSlider(Qt.Orientation.Horizontal)
        self.seek_bar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.seek_bar.setRange(0, 0)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.a_button = self._button("A", "loop start: here")
        self.b_button = self._button("B", "loop end: here")
        self.loop_button = self._button("Loop", "loop A-B on/off (L)", checkable=True)
        self.loop_label = QLabel("")
        self.bypass_button = self._button("Bypass", "hear the original mix (B)", checkable=True)
        self.master = Fader(Qt.Orientation.Horizontal)
        self.master.setTickPosition(QSlider.TickPosition.NoTicks)
        self.master.setFixedWidth(140)
        self.master_label = QLabel("master " + format_db(0.0))

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for widget in (self.play_button, self.seek_bar, self.time_label, self.a_button,
                       self.b_button, self.loop_button, self.loop_label, self.bypass_button,
                       self.master, self.master_label):  # fmt: skip
            layout.addWidget(widget, stretch=1 if widget is self.seek_bar else 0)
        # The two that change while playing fill their own background (the window's colour),
        # so that their repaints do not repaint the bar and the window under them.
        for widget in (self.seek_bar, self.time_label):
            widget.setAutoFillBackground(True)

        self.play_button.clicked.connect(self.play_clicked)
        self.seek_bar.sliderReleased.connect(
            lambda: self.seek_requested.emit(self.seek_bar.value() / MS)
        )
        self.a_button.clicked.connect(self.set_a_clicked)
        self.b_button.clicked.connect(self.set_b_clicked)
        self.loop_button.toggled.connect(self.loop_toggled)
        self.bypass_button.toggled.connect(self.bypass_toggled)
        self.master.db_changed.connect(self._on_master)

    @staticmethod
    def _button(text: str, tip: str, checkable: bool = False) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setCheckable(checkable)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return button

    def _on_master(self, db: float) -> None:
        self.master_label.setText("master " + format_db(db))
        self.master_changed.emit(db)

    def show_position(self, seconds: float, duration: float, playing: bool) -> None:
        if self.seek_bar.maximum() != round(duration * MS):
            self.seek_bar.setRange(0, round(duration * MS))
        bar = self.seek_bar
        if not bar.isSliderDown():  # the user is dragging it: leave it alone
            # Moved only when its handle moves by a pixel: each move repaints the bar.
            value = round(seconds * MS)
            step = max(1, (bar.maximum() - bar.minimum()) // max(bar.width(), 1))
            if abs(value - bar.value()) >= step or value in (bar.minimum(), bar.maximum()):
                bar.setValue(value)
        self.time_label.setText(f"{format_time(seconds)} / {format_time(duration)}")
        self.play_button.setText("Pause" if playing else "Play")

    def show_loop(self, start: float | None, end: float | None) -> None:
        def point(seconds: float | None) -> str:
            return "-" if seconds is None else format_time(seconds)

        self.loop_label.setText(f"A {point(start)}  B {point(end)}")

    def set_enabled(self, enabled: bool) -> None:
        for widget in (self.play_button, self.seek_bar, self.a_button, self.b_button,
                       self.loop_button):  # fmt: skip
            widget.setEnabled(enabled)
