"""One stem's channel strip: its spectrogram, a pan knob, a bleed gate, a fader, a peak/RMS
meter, mute and solo (the click stem's strip: no spectrogram and no gate).

Thread contract: GUI thread only. The strip holds the stem's control state (fader, pan, gate,
mute, solo) as its widgets show it and emits a signal on every change; the window forwards each
to the engine (single stores). ``show_telemetry`` takes values the window's timer already copied out
of a telemetry snapshot, and the gain the mixer applies to the stem for a post-fader meter.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QFont, QMouseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDial,
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


PAN_STEPS = 100  # the knob's travel either side of the centre
# The bleed gate's thresholds below the stem's peak, in dB (None: off, the default). Steps
# rather than a knob: the gate is set once per song by ear, and 10 dB apart is what one hears.
GATE_STEPS: tuple[float | None, ...] = (None, -20.0, -30.0, -40.0, -50.0, -60.0)
GATE_TIP = (
    "bleed gate for {name}: silences its bins more than this far below its loudest bin in each "
    "frame (what another stem left in it); off by default"
)


def format_gate(threshold_db: float | None) -> str:
    return "gate off" if threshold_db is None else f"gate {threshold_db:g} dB"


def format_pan(pan: float) -> str:
    if abs(pan) < 0.005:
        return "C"
    return f"{'L' if pan < 0 else 'R'}{round(abs(pan) * 100)}"


class PanKnob(QDial):
    """Pan, -1 (left) to +1 (right), in hundredths; a double-click centres it."""

    pan_changed = Signal(float)
    touched = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setRange(-PAN_STEPS, PAN_STEPS)
        self.setValue(0)
        self.setNotchesVisible(True)
        self.setNotchTarget(10.0)
        self.setFixedSize(40, 40)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.valueChanged.connect(lambda value: self.pan_changed.emit(value / PAN_STEPS))

    @property
    def pan(self) -> float:
        return self.value() / PAN_STEPS

    def set_pan(self, pan: float) -> None:
        self.setValue(round(min(max(pan, -1.0), 1.0) * PAN_STEPS))

    def set_fraction(self, fraction: float) -> None:
        """0 (left) to 1 (right): what a MIDI knob sends."""
        self.set_pan(2.0 * min(max(fraction, 0.0), 1.0) - 1.0)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.touched.emit()
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.setValue(0)
        event.accept()


class StemStrip(QFrame):
    """Args:
    index: the stem's position in the engine (0-based; the click stem's is the number of model
        stems).
    name: the stem's name.
    sample_rate: the stems' rate (for the spectrogram's axis).
    spectrogram: whether it has one (the click stem's strip has none).
    """

    gain_changed = Signal(int, float)  # stem, dB (-inf: silence)
    mute_toggled = Signal(int, bool)
    solo_toggled = Signal(int, bool)
    pan_changed = Signal(int, float)  # stem, -1 (left) to +1 (right)
    gate_changed = Signal(int, object)  # stem, dB below the peak (negative) or None (off)
    touched = Signal(str)  # "fader:<i>", "pan:<i>", "mute:<i>" or "solo:<i>": for MIDI learn
    meter_point_chosen = Signal(bool)  # from the meter's menu: True post-fader, False pre-fader

    def __init__(self, index: int, name: str, sample_rate: int, spectrogram: bool = True) -> None:
        super().__init__()
        self.setObjectName("strip")
        self.index = index
        self.name = name
        self.spectrogram = SpectrogramView(sample_rate, title=f"{index + 1}  {name}")
        self.pan_knob = PanKnob()
        self.pan_label = QLabel("pan C")
        self.pan_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pan_knob.setToolTip(f"pan {name} (double-click: centre)")
        self.gate_box = QComboBox()
        for threshold_db in GATE_STEPS:
            self.gate_box.addItem(format_gate(threshold_db), threshold_db)
        self.gate_box.setToolTip(GATE_TIP.format(name=name))
        self.gate_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the window's keys stay the window's
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
        keyed = spectrogram and index < 4  # the keys 1-4 reach the first four model stems
        mute_tip = f"mute {name} (key {index + 1})" if keyed else f"mute {name}"
        solo_tip = f"solo {name} (Shift+{index + 1})" if keyed else f"solo {name}"
        self.mute_button = self._toggle_button("M", mute_tip, MUTE_STYLE)
        self.solo_button = self._toggle_button("S", solo_tip, SOLO_STYLE)

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
        pan_row = QHBoxLayout()
        pan_row.addStretch(1)
        pan_row.addWidget(self.pan_knob)
        pan_row.addWidget(self.pan_label)
        pan_row.addStretch(1)
        if spectrogram:
            layout.addWidget(self.spectrogram, stretch=3)
        else:
            self.spectrogram.hide()
            self.gate_box.hide()  # the click is made, not separated: nothing bled into it
            title = QLabel(name)
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(title)
        layout.addLayout(pan_row)
        if spectrogram:
            layout.addWidget(self.gate_box, alignment=Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(controls, stretch=2)
        layout.addWidget(self.db_label)
        layout.addLayout(buttons)

        self.fader.db_changed.connect(self._on_fader)
        self.fader.touched.connect(lambda: self.touched.emit(f"fader:{index}"))
        self.pan_knob.pan_changed.connect(self._on_pan)
        self.pan_knob.touched.connect(lambda: self.touched.emit(f"pan:{index}"))
        self.gate_box.currentIndexChanged.connect(
            lambda i: self.gate_changed.emit(index, self.gate_box.itemData(i))
        )
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

    def _on_pan(self, pan: float) -> None:
        self.pan_label.setText(f"pan {format_pan(pan)}")
        self.pan_changed.emit(self.index, pan)

    # -- state ------------------------------------------------------------------------------

    @property
    def gate_db(self) -> float | None:
        return self.gate_box.currentData()

    def set_gate(self, threshold_db: float | None) -> None:
        """Show (and emit) the step nearest ``threshold_db``; None or 0: off."""
        if not threshold_db:
            self.gate_box.setCurrentIndex(0)
            return
        steps = [step for step in GATE_STEPS if step is not None]
        nearest = min(steps, key=lambda step: abs(step - threshold_db))
        self.gate_box.setCurrentIndex(GATE_STEPS.index(nearest))

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
