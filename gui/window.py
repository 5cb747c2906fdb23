"""The livestems window: a strip per stem (spectrogram, fader, meter, mute, solo), the
transport, the status line, settings, keys and MIDI, over one ``AudioSession``.

Thread contract: everything here runs on the GUI thread. One timer (``FRAME_RATE_HZ``) reads
the newest telemetry snapshot (a copy, no lock), feeds the meters and spectrograms and paints;
user actions become single stores into the engine (gain targets, mute, solo, bypass) or the
file source (play, seek, loop), which the audio callback picks up at its next block. The GUI
never waits for the audio thread. Opening a song or changing the settings stops the stream and
starts a new one (blocking for the model's warm-up, a fraction of a second), never from the
timer. MIDI arrives from rtmidi's thread as a queued Qt signal (``midi.py``). The stem meters
are post-fader by default: the timer scales the engine's levels, which are measured before the
mixer, by the gains the mixer applies (``level_meter.post_fader_db``).

Every error a user can cause (a song that will not load, a model refused, a device missing or
lost) is shown in the window's message line as one sentence; the window stays usable. The
status line fits the window: what does not fit ends in "…", and the whole of it (or the reason
there is no MIDI input) is the tooltip. ``?`` shows every key the window answers to.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..realtime.errors import UserError
from ..realtime.practice.beat_grid import BeatGrid
from .engine_process import ProcessSession
from .midi import GLOBAL_KINDS, MidiEvent, MidiInput, MidiMapping, control_target
from .session import AudioSession, SessionSettings
from .settings_store import (
    CLICK_STRIP,
    METER_POINT_KEY,
    MIDI_MAPPING_KEY,
    load_control,
    load_session_settings,
    save_control,
    save_session_settings,
)
from .widgets.elided_label import ElidedLabel
from .widgets.help_overlay import HelpOverlay
from .widgets.practice_bar import TEMPO_RANGE, TRANSPOSE_RANGE, PracticeBar
from .widgets.settings_dialog import SettingsDialog
from .widgets.stem_strip import StemStrip
from .widgets.transport_bar import TransportBar

FRAME_RATE_HZ = 40
STATUS_EVERY_FRAMES = 8  # the status line changes 5 times a second: readable, and cheap
MAX_COLUMNS_PER_FRAME = 4  # spectrogram columns added per frame when the timer fell behind
SEEK_STEP_S = 5.0
TEMPO_STEP_PERCENT = 5
TRANSPOSE_STEP = 1.0  # semitones
FRAME_HISTORY = 1 << 16
SHIFTED_DIGITS = (Qt.Key.Key_Exclam, Qt.Key.Key_At, Qt.Key.Key_NumberSign, Qt.Key.Key_Dollar)
DIGITS = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4)
AUDIO_FILES = "Audio (*.wav *.flac *.ogg *.mp3 *.mp4 *.m4a *.aiff *.aif);;All files (*)"
ERROR_STYLE = "background: #602020; color: white; padding: 4px;"
NOTICE_STYLE = "background: #404860; color: white; padding: 4px;"
# The keys handle_key answers to, as the help (``?``) lists them: a key it takes without a row
# here fails tests/gui/test_help_overlay.py. The menus' shortcuts are listed from the menus.
KEY_HELP = (
    ("1, 2, 3, 4", "mute stem 1-4 (on / off)"),
    ("Shift+1, Shift+2, Shift+3, Shift+4", "solo stem 1-4 (on / off)"),
    ("Space", "play / pause"),
    ("B", "bypass: hear the original mix (on / off)"),
    ("L", "loop A-B (on / off)"),
    ("Left, Right", f"seek {SEEK_STEP_S:g} s back / forward"),
    ("[, ]", f"tempo -{TEMPO_STEP_PERCENT} % / +{TEMPO_STEP_PERCENT} % (pitch kept)"),
    ("-, =", f"transpose -{TRANSPOSE_STEP:g} / +{TRANSPOSE_STEP:g} semitone (tempo kept)"),
    ("?", "this help (on / off)"),
    ("Esc", "close this help"),
)
MOUSE_HELP = (
    ("Double-click a fader", "back to 0 dB"),
    ("Double-click a pan knob", "centre"),
    ("Double-click tempo or transpose", "back to 100 % / 0 semitones"),
    ("Right-click a meter", "meters pre-fader or post-fader"),
)


class LivestemsWindow(QMainWindow):
    """Args:
    store: where settings and the MIDI mapping live (QSettings).
    song: a song to open; ``None``: the bundled demo, if any (and ``open_demo``).
    open_midi: open the MIDI input ports (tests that need no MIDI skip it).
    open_demo: open the bundled demo when no song is given.
    engine_process: run the engine in a process of its own (``engine_process.py``), so that
        the GUI's Python never holds the GIL the audio callback needs.
    """

    def __init__(
        self,
        store: QSettings,
        song: str | Path | None = None,
        open_midi: bool = True,
        open_demo: bool = True,
        engine_process: bool = False,
    ) -> None:
        super().__init__()
        self.setWindowTitle("livestems")
        self.resize(1180, 640)
        self.setAcceptDrops(True)
        self.store = store
        settings = load_session_settings(store, SessionSettings())
        self.session: AudioSession | ProcessSession = (
            ProcessSession(settings) if engine_process else AudioSession(settings)
        )
        self.strips: list[StemStrip] = []
        self.click_strip: StemStrip | None = None  # the click stem's (a song's only)
        self.grid: BeatGrid | None = None  # the song's beat grid, once the session has it
        self.loop_start: float | None = None
        self.loop_end: float | None = None
        self._spectrum_count = 0
        self._frame = 0
        self._cpu_mark = (time.monotonic(), time.process_time() + self.session.cpu_seconds())
        self.cpu_load = 0.0
        # Timer frame intervals, for the frame rate the soak benchmark reports.
        self._frame_times = np.zeros(FRAME_HISTORY)
        self._n_frames = 0
        self.midi_mapping = MidiMapping.from_json(str(store.value(MIDI_MAPPING_KEY, "")))
        self.midi_learning = False
        self.learn_target: str | None = None

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.hide()
        self.strip_row = QHBoxLayout()
        self.transport = TransportBar()
        self.practice = PracticeBar()
        self.status_label = ElidedLabel("")
        self.midi_label = ElidedLabel("")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.message)
        layout.addLayout(self.strip_row, stretch=1)
        layout.addWidget(self.transport)
        layout.addWidget(self.practice)
        self.setCentralWidget(central)
        # The status gives way first (ignoring its width); the MIDI label keeps its few words.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.midi_label)
        self.help_overlay = HelpOverlay(self)
        self.meters_post_fader = str(store.value(METER_POINT_KEY, "post-fader")) != "pre-fader"
        self._build_menus()
        self._connect_transport()
        self._connect_practice()

        self.midi = MidiInput()
        self.midi.event_received.connect(self.on_midi_event)
        if open_midi:
            self.rescan_midi()
        self._watch_keys()

        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(round(1000 / FRAME_RATE_HZ))
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self._open_initial(song, open_demo)

    # -- building ---------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open...", self.choose_song, "Ctrl+O")
        self._action(file_menu, "Separate the &input device", self.open_live_input)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")
        settings_menu = self.menuBar().addMenu("&Settings")
        self._action(settings_menu, "&Audio and model...", self.choose_settings, "Ctrl+,")
        midi_menu = self.menuBar().addMenu("&MIDI")
        self.learn_action = self._action(midi_menu, "&Learn", self.set_midi_learning)
        self.learn_action.setCheckable(True)
        self._action(midi_menu, "&Rescan ports", self.rescan_midi)
        self._action(midi_menu, "&Forget the mapping", self.forget_midi_mapping)
        help_menu = self.menuBar().addMenu("&Help")
        # "?" is the window's own key (handle_key), so the action only shows it.
        self._action(help_menu, "&Keyboard shortcuts\t?", self.toggle_help)

    def _action(
        self, menu: QMenu, text: str, slot: Callable[..., object], shortcut: str | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect_transport(self) -> None:
        bar = self.transport
        bar.play_clicked.connect(self.toggle_play)
        bar.seek_requested.connect(self.seek)
        bar.set_a_clicked.connect(self.set_loop_start)
        bar.set_b_clicked.connect(self.set_loop_end)
        bar.loop_toggled.connect(self._apply_loop)
        bar.bypass_toggled.connect(lambda on: self.session.set_bypass(on))
        bar.master_changed.connect(lambda db: self.session.set_master_gain_db(db))
        bar.master.touched.connect(lambda: self._on_control_touched("master"))

    def _connect_practice(self) -> None:
        """The stored practice controls into the bar (and so into the session, before the
        first engine starts), then the bar's changes to the session and the store."""
        bar = self.practice
        tempo = float(load_control(self.store, "tempo_percent", 100.0))
        transpose = float(load_control(self.store, "transpose", 0.0))
        bar.tempo_slider.setValue(round(min(max(tempo, TEMPO_RANGE[0]), TEMPO_RANGE[1])))
        bar.transpose_spin.setValue(min(max(transpose, TRANSPOSE_RANGE[0]), TRANSPOSE_RANGE[1]))
        bar.snap_button.setChecked(bool(load_control(self.store, "snap", False)))
        bar.count_in_button.setChecked(bool(load_control(self.store, "count_in", False)))
        for apply in (lambda: self.set_tempo_percent(bar.tempo_percent),
                      lambda: self.set_transpose(bar.transpose),
                      lambda: self.set_count_in(bar.count_in_button.isChecked())):  # fmt: skip
            apply()
        bar.tempo_changed.connect(self.set_tempo_percent)
        bar.transpose_changed.connect(self.set_transpose)
        bar.count_in_toggled.connect(self.set_count_in)
        bar.snap_toggled.connect(lambda on: save_control(self.store, "snap", on))
        bar.touched.connect(self._on_control_touched)

    def _new_strip(self, index: int, name: str, spectrogram: bool = True) -> StemStrip:
        """A strip wired to the session, its pan as stored for that stem's name."""
        strip = StemStrip(index, name, self.session.sample_rate, spectrogram)
        strip.gain_changed.connect(lambda s, db: self.session.set_gain_db(s, db))
        strip.mute_toggled.connect(lambda s, on: self.session.set_mute(s, on))
        strip.solo_toggled.connect(lambda s, on: self.session.set_solo(s, on))
        strip.pan_changed.connect(lambda s, pan: self._on_pan(name, s, pan))
        strip.gate_changed.connect(lambda s, db: self._on_gate(name, s, db))
        strip.touched.connect(self._on_control_touched)
        strip.meter_point_chosen.connect(self.set_meters_post_fader)
        strip.set_meter_post_fader(self.meters_post_fader)
        strip.pan_knob.set_pan(float(load_control(self.store, f"pan/{name}", 0.0)))
        if spectrogram:  # a model stem: the click has no gate
            strip.set_gate(float(load_control(self.store, f"gate/{name}", 0.0)) or None)
        return strip

    def _on_pan(self, name: str, stem: int, pan: float) -> None:
        try:
            self.session.set_pan(stem, pan)
        except UserError as error:
            self.show_message(str(error))
            return
        save_control(self.store, f"pan/{name}", pan)

    def _on_gate(self, name: str, stem: int, threshold_db: float | None) -> None:
        try:
            self.session.set_bleed_gate(stem, threshold_db)
        except UserError as error:
            self.show_message(str(error))
            return
        save_control(self.store, f"gate/{name}", threshold_db or 0.0)  # 0: off

    def _build_click_strip(self) -> None:
        """The click stem's strip (fader, pan, mute, solo; no spectrogram), after the model's
        stems; its controls stored, muted at first."""
        index = len(self.session.stems)
        if self.click_strip is not None and self.click_strip.index == index:
            return
        if self.click_strip is not None:
            self.strip_row.removeWidget(self.click_strip)
            self.click_strip.deleteLater()
        strip = self._new_strip(index, CLICK_STRIP, spectrogram=False)
        strip.setToolTip("the click track on the song's beat grid")
        strip.fader.set_db(float(load_control(self.store, "click/gain_db", 0.0)))
        strip.mute_button.setChecked(bool(load_control(self.store, "click/muted", True)))
        strip.solo_button.setChecked(bool(load_control(self.store, "click/soloed", False)))
        self.session.set_mute(index, strip.muted)  # (a button already checked emits nothing)
        strip.gain_changed.connect(lambda _s, db: save_control(self.store, "click/gain_db", db))
        strip.mute_toggled.connect(lambda _s, on: save_control(self.store, "click/muted", on))
        strip.solo_toggled.connect(lambda _s, on: save_control(self.store, "click/soloed", on))
        self.strip_row.addWidget(strip, stretch=0)
        self.click_strip = strip

    def all_strips(self) -> list[StemStrip]:
        """The model stems' strips and the click stem's."""
        return [*self.strips, *([self.click_strip] if self.click_strip is not None else [])]

    def _rebuild_strips(self) -> None:
        """One strip per stem of the model now loaded (kept when the stems did not change, so
        that faders, mute and solo survive a reload)."""
        stems = self.session.stems
        if tuple(strip.name for strip in self.strips) != stems:
            for strip in self.all_strips():
                self.strip_row.removeWidget(strip)
                strip.deleteLater()
            self.strips, self.click_strip = [], None
            for index, name in enumerate(stems):
                strip = self._new_strip(index, name)
                self.strip_row.addWidget(strip, stretch=1)
                self.strips.append(strip)
        if stems:
            self._build_click_strip()
        if self.click_strip is not None:
            self.click_strip.setVisible(not self.session.live_input)
        self._watch_keys()

    def _after_restart(self) -> None:
        """A new engine has the session's kept controls already; the loop and the pictures
        belong to the window."""
        self._apply_loop(self.transport.loop_button.isChecked())
        self._spectrum_count = 0
        for strip in self.strips:
            strip.spectrogram.clear_columns()

    # -- messages ---------------------------------------------------------------------------

    def show_message(self, text: str, error: bool = True) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else NOTICE_STYLE)
        self.message.setText(text)
        self.message.show()

    def clear_message(self) -> None:
        self.message.hide()
        self.message.setText("")

    def _started(self) -> None:
        """After any (re)start: strips, controls, and the session's notice if it has one."""
        self._rebuild_strips()
        self._after_restart()
        self.transport.set_enabled(self.session.source is not None)
        if self.session.notice:
            self.show_message(self.session.notice, error=False)
        title = self.session.song_name or ("input device" if self.session.live_input else "")
        self.setWindowTitle(f"livestems - {title}" if title else "livestems")

    # -- opening ----------------------------------------------------------------------------

    def _open_initial(self, song: str | Path | None, open_demo: bool) -> None:
        from ..realtime.runtime.catalog import bundled_demo_song

        if song is None and open_demo:
            song = bundled_demo_song()
        if song is not None:
            self.open_song(song)
            return
        try:
            self.session.start()  # loads the model: no song yet, so no stream
        except UserError as error:
            self.show_message(str(error))
        self._started()
        missing = "No song is open" if bundled_demo_song() else "No demo song is bundled here"
        message = f"{missing}: open a song (File > Open, or drop a file here)."
        self.show_message(" ".join(filter(None, [self.session.notice, message])), error=False)

    def open_song(self, path: str | Path) -> bool:
        """Load a song and play it from the start; False (and a message) when it cannot, in
        which case what was playing plays on (the song is read before the stream stops)."""
        self.clear_message()
        session = self.session
        try:
            session.open_song(path)
            session.start()
        except UserError as error:
            self.show_message(str(error))
            self._started()
            return False
        self.loop_start = self.loop_end = None
        self.transport.loop_button.setChecked(False)
        self.transport.show_loop(None, None)
        self.grid = None
        self.practice.show_grid(None)
        self._started()
        return True

    def choose_song(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a song", "", AUDIO_FILES)
        if path:
            self.open_song(path)

    def open_live_input(self) -> None:
        self.clear_message()
        try:
            self.session.open_live_input()
        except UserError as error:
            self.show_message(str(error))
        self._started()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            self.open_song(files[0])
            event.acceptProposedAction()

    def choose_settings(self) -> None:
        dialog = SettingsDialog(self.session.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.chosen())

    def apply_settings(self, settings: SessionSettings) -> bool:
        """Reload with new settings (without restarting the window) and store them."""
        self.clear_message()
        try:
            self.session.apply_settings(settings)
        except UserError as error:
            self.show_message(str(error))
            self._started()
            return False
        save_session_settings(self.store, settings)
        self._started()
        return True

    # -- transport --------------------------------------------------------------------------

    def toggle_play(self) -> None:
        source = self.session.source
        if source is not None:
            if source.finished:
                source.seek(0.0)
            source.toggle()

    def seek(self, seconds: float) -> None:
        source = self.session.source
        if source is not None:
            source.seek(seconds)

    def seek_by(self, seconds: float) -> None:
        source = self.session.source
        if source is not None:
            source.seek_by(seconds)

    def set_loop_start(self) -> None:
        source = self.session.source
        if source is not None:
            self.loop_start = self._snapped(source.seconds)
            self._loop_points_changed()

    def set_loop_end(self) -> None:
        source = self.session.source
        if source is not None:
            self.loop_end = self._snapped(source.seconds)
            self._loop_points_changed()

    def _snapped(self, seconds: float) -> float:
        """``seconds``, or the nearest bar line when snapping is on and the song has a grid."""
        if self.practice.snap_button.isChecked() and self.grid is not None:
            return self.grid.snap_to_bar(seconds)
        return seconds

    # -- practice ---------------------------------------------------------------------------

    def set_tempo_percent(self, percent: float) -> None:
        """The song's tempo in percent (50-150), pitch kept; stored. A bad value (or no Rubber
        Band) is one sentence in the message line."""
        try:
            self.session.set_tempo(percent / 100.0)
        except UserError as error:
            self.show_message(str(error))
            return
        if self.practice.tempo_percent != round(percent):
            self.practice.tempo_slider.setValue(round(percent))  # (comes back here: a no-op)
        save_control(self.store, "tempo_percent", percent)

    def set_transpose(self, semitones: float) -> None:
        """The song's key in semitones (-12..+12, cents as hundredths), tempo kept; stored."""
        try:
            self.session.set_transpose(semitones)
        except UserError as error:
            self.show_message(str(error))
            return
        if abs(self.practice.transpose - semitones) > 1e-9:
            self.practice.transpose_spin.setValue(semitones)
        save_control(self.store, "transpose", semitones)

    def set_count_in(self, enabled: bool) -> None:
        self.session.set_count_in(enabled)
        save_control(self.store, "count_in", enabled)

    def step_tempo(self, percent: int) -> None:
        low, high = TEMPO_RANGE
        self.practice.tempo_slider.setValue(
            min(max(self.practice.tempo_percent + percent, low), high)
        )

    def step_transpose(self, semitones: float) -> None:
        low, high = TRANSPOSE_RANGE
        self.practice.transpose_spin.setValue(
            min(max(self.practice.transpose + semitones, low), high)
        )

    def _poll_grid(self) -> None:
        """The song's beat grid into the bar once the session has it (found in the background
        when the song loaded)."""
        if self.grid is not None or self.session.source is None:
            return
        try:
            grid = self.session.beat_grid()
        except UserError:
            return  # the engine's process is gone: the timer's lost check says so
        if grid is not None:
            self.grid = grid
            self.practice.show_grid(grid)

    def _loop_points_changed(self) -> None:
        self.transport.show_loop(self.loop_start, self.loop_end)
        if self.transport.loop_button.isChecked():
            self._apply_loop(True)

    def _apply_loop(self, on: bool) -> None:
        source = self.session.source
        if source is None:
            return
        start = self.loop_start or 0.0
        end = self.loop_end if self.loop_end is not None else source.duration
        if on and end <= start:
            self.show_message("Loop B must come after A: set B later in the song.")
            on = False
        if on:
            source.set_loop(start, end)
        else:
            source.set_loop(0.0, 0.0)

    # -- keys -------------------------------------------------------------------------------

    def _watch_keys(self) -> None:
        """Watch the keys of the window and of each of its widgets that could take one (has or
        may take the focus, or eats keys: sliders and buttons), so that keys go to the window
        whichever of its widgets has the focus; dialogs keep theirs. Not the whole
        application's events: while playing, some thousand events a second (paints, timers,
        the scenes' updates) would each pass through Python."""
        for widget in (self, *self.findChildren(QWidget)):
            takes_keys = widget.focusPolicy() != Qt.FocusPolicy.NoFocus or isinstance(
                widget, QAbstractSlider | QAbstractButton
            )
            if widget is self or takes_keys:
                widget.installEventFilter(self)  # (again: no second copy, Qt keeps one)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # (The isinstance comes first: much cheaper than building event.type()'s enum.)
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            if _in_spin_box(watched):
                return super().eventFilter(watched, event)  # typing a tempo or a key
            target = watched.window() if isinstance(watched, QWidget) else None
            if target is self and self.handle_key(event):
                return True
        return super().eventFilter(watched, event)

    def handle_key(self, event: QKeyEvent) -> bool:
        """The keys of ``KEY_HELP``: 1-4 mute, Shift+1-4 solo, space play/pause, B bypass, L
        loop, arrows seek, [ ] tempo, - = transpose, ? help, Esc closes the help."""
        key = Qt.Key(event.key())
        shifted = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if key == Qt.Key.Key_Question:
            self.toggle_help()
            return True
        if key == Qt.Key.Key_Escape and self.help_overlay.isVisible():
            self.help_overlay.hide()
            return True
        if key in DIGITS or key in SHIFTED_DIGITS:
            index = DIGITS.index(key) if key in DIGITS else SHIFTED_DIGITS.index(key)
            if index < len(self.strips):
                strip = self.strips[index]
                button = (
                    strip.solo_button if shifted or key in SHIFTED_DIGITS else strip.mute_button
                )
                button.toggle()
            return True
        if key == Qt.Key.Key_Space:
            self.toggle_play()
        elif key == Qt.Key.Key_B:
            self.transport.bypass_button.toggle()
        elif key == Qt.Key.Key_L:
            self.transport.loop_button.toggle()
        elif key == Qt.Key.Key_Right:
            self.seek_by(SEEK_STEP_S)
        elif key == Qt.Key.Key_Left:
            self.seek_by(-SEEK_STEP_S)
        elif key == Qt.Key.Key_BracketLeft:
            self.step_tempo(-TEMPO_STEP_PERCENT)
        elif key == Qt.Key.Key_BracketRight:
            self.step_tempo(TEMPO_STEP_PERCENT)
        elif key == Qt.Key.Key_Minus:
            self.step_transpose(-TRANSPOSE_STEP)
        elif key == Qt.Key.Key_Equal:
            self.step_transpose(TRANSPOSE_STEP)
        else:
            return False
        return True

    # -- help -------------------------------------------------------------------------------

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for every key the window answers to: its own keys, then its
        menus' shortcuts, then the mouse."""
        menus = [
            (action.shortcut().toString(QKeySequence.SequenceFormat.NativeText),
             action.text().replace("&", "").split("\t")[0])
            for action in self.findChildren(QAction)
            if not action.shortcut().isEmpty()
        ]  # fmt: skip
        return [*KEY_HELP, *menus, *MOUSE_HELP]

    def toggle_help(self) -> None:
        if self.help_overlay.isVisible():
            self.help_overlay.hide()
        else:
            self.help_overlay.show_rows("Keys (? or Esc closes this)", self.shortcut_rows())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.help_overlay.isVisible():
            self.help_overlay.fit()

    # -- meters -----------------------------------------------------------------------------

    def set_meters_post_fader(self, post_fader: bool) -> None:
        """Every stem meter post-fader (the default) or pre-fader; stored."""
        self.meters_post_fader = post_fader
        for strip in self.strips:
            strip.set_meter_post_fader(post_fader)
        self.store.setValue(METER_POINT_KEY, "post-fader" if post_fader else "pre-fader")

    # -- MIDI -------------------------------------------------------------------------------

    def set_midi_learning(self, learning: bool) -> None:
        self.midi_learning = learning
        self.learn_target = None
        self.learn_action.setChecked(learning)
        for strip in self.all_strips():
            strip.set_learning(False)
        if learning:
            self.show_message(
                "MIDI learn: touch a fader, pan knob, mute or solo button (or the master fader, "
                "tempo or transpose), then move the controller that should drive it.",
                error=False,
            )
        else:
            self.clear_message()

    def _on_control_touched(self, target: str) -> None:
        if not self.midi_learning:
            return
        self.learn_target = target
        kind, index = control_target(target)
        for strip in self.all_strips():
            strip.set_learning(strip.index == index and kind not in GLOBAL_KINDS)

    def on_midi_event(self, event: MidiEvent) -> None:
        if self.midi_learning and self.learn_target is not None:
            self.midi_mapping.bind(event.key, self.learn_target)
            self.store.setValue(MIDI_MAPPING_KEY, self.midi_mapping.to_json())
            self.show_message(f"MIDI {event.key} now drives {self.learn_target}.", error=False)
            self.learn_target = None
            for strip in self.all_strips():
                strip.set_learning(False)
            return
        target = self.midi_mapping.target(event)
        if target is None:
            return
        kind, index = control_target(target)
        if kind == "master":
            self.transport.master.set_fraction(event.value / 127)
            return
        if kind == "tempo":
            self.practice.tempo_slider.set_fraction(event.value / 127)
            return
        if kind == "transpose":  # whole semitones over the travel: -12 at 0, +12 at 127
            low, high = TRANSPOSE_RANGE
            self.practice.transpose_spin.setValue(round(low + event.value / 127 * (high - low)))
            return
        strips = self.all_strips()
        if index >= len(strips):
            return
        strip = strips[index]
        if kind == "fader":
            strip.fader.set_fraction(event.value / 127)
            return
        if kind == "pan":
            strip.pan_knob.set_fraction(event.value / 127)
            return
        button = strip.mute_button if kind == "mute" else strip.solo_button
        if event.kind == "cc":  # a switch sends 127 when on and 0 when off
            button.setChecked(event.value >= 64)
        elif event.value > 0:  # a pad: every hit toggles, note-offs do nothing
            button.toggle()

    def rescan_midi(self) -> None:
        """(Re)open the MIDI ports: a few words in the status line, the detail as its tooltip."""
        self.midi_label.setText(self.midi.open())
        self.midi_label.set_tooltip(self.midi.detail)

    def forget_midi_mapping(self) -> None:
        self.midi_mapping = MidiMapping()
        self.store.setValue(MIDI_MAPPING_KEY, self.midi_mapping.to_json())

    # -- the timer --------------------------------------------------------------------------

    def tick(self) -> None:
        """One frame: telemetry into meters and spectrograms, the transport, the status."""
        now = time.perf_counter()
        self._frame_times[self._n_frames % FRAME_HISTORY] = now
        self._n_frames += 1
        self._frame += 1
        session = self.session
        lost = session.lost_reason()
        if lost is not None and not self._revive():
            session.stop()
            self.show_message(lost)
            self.transport.set_enabled(False)
        snapshot = session.snapshot()
        source = session.source
        if snapshot is not None:
            moving = session.live_input or (source is not None and source.playing)
            new_columns = snapshot.spectrum_count - self._spectrum_count
            self._spectrum_count = snapshot.spectrum_count
            n_columns = min(new_columns, MAX_COLUMNS_PER_FRAME) if moving else 0
            gains = session.stem_gains() if self.meters_post_fader else None
            for strip in self.strips:
                strip.show_telemetry(
                    float(snapshot.stem_rms_db[strip.index]),
                    float(snapshot.stem_peak_db[strip.index]),
                    None if gains is None else float(gains[strip.index]),
                )
                strip.spectrogram.push(snapshot.stem_spectra_db[strip.index], n_columns)
                strip.spectrogram.paint_image()
        if source is not None:
            self.transport.show_position(source.seconds, source.duration, source.playing)
        if self._frame % STATUS_EVERY_FRAMES == 0:
            self._update_status()
            self._poll_grid()

    def _revive(self) -> bool:
        """A dead engine process comes back with the same settings, song, position and
        controls, and the message says it happened; False when there is none to revive (the
        engine runs in this process, or the stream stopped for another reason)."""
        session = self.session
        if not isinstance(session, ProcessSession) or session.process.is_alive():
            return False
        # The shared block still holds where the dead process was.
        source = session.source
        position, playing = (source.seconds, source.playing) if source else (0.0, True)
        try:
            message = session.revive(position, playing)
        except UserError as error:
            self.show_message(str(error))
            return False
        self._started()
        for strip in self.all_strips():
            session.set_gain_db(strip.index, strip.fader.db)
            session.set_mute(strip.index, strip.muted)
            session.set_solo(strip.index, strip.soloed)
            session.set_pan(strip.index, strip.pan_knob.pan)
        for strip in self.strips:
            session.set_bleed_gate(strip.index, strip.gate_db)
        self.set_tempo_percent(self.practice.tempo_percent)
        self.set_transpose(self.practice.transpose)
        self.set_count_in(self.practice.count_in_button.isChecked())
        self.show_message(message)
        return True

    def _update_status(self) -> None:
        # This process, and the engine's when it runs in one of its own.
        wall, cpu = time.monotonic(), time.process_time() + self.session.cpu_seconds()
        if wall > self._cpu_mark[0]:
            self.cpu_load = (cpu - self._cpu_mark[1]) / (wall - self._cpu_mark[0])
        self._cpu_mark = (wall, cpu)
        self.status_label.setText(self.status_text())

    def status_text(self) -> str:
        session = self.session
        status, snapshot = session.status(), session.snapshot()
        if status is None or snapshot is None:
            return f"model {session.model_name or '-'} | stopped | CPU {100 * self.cpu_load:.0f}%"

        def ms(samples: int) -> str:
            return f"{1000.0 * samples / status.sample_rate:.1f} ms"

        p50, p99, _ = snapshot.hop_percentiles_ms()
        hop_ms = 1000.0 * status.hop / status.sample_rate
        compute = "-" if math.isnan(p50) else f"{p50 / hop_ms:.2f} / {p99 / hop_ms:.2f} of hop"
        return (
            f"preset {status.preset} | model {status.model} | {status.provider} | latency: "
            f"algorithmic {ms(status.algorithmic_latency)}, buffer {ms(status.engine_buffer)}, "
            f"device {ms(status.device_latency)} | compute p50/p99 {compute} | "
            f"under-runs {snapshot.underruns} | CPU {100 * self.cpu_load:.0f}%"
        )

    def frame_intervals(self) -> np.ndarray:
        """Seconds between consecutive timer frames, oldest first (at most FRAME_HISTORY)."""
        n = min(self._n_frames, FRAME_HISTORY)
        start = self._n_frames - n
        order = (np.arange(start, self._n_frames)) % FRAME_HISTORY
        return np.diff(self._frame_times[order])

    # -- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the timer, the stream and MIDI (idempotent)."""
        self.timer.stop()
        for widget in (self, *self.findChildren(QWidget)):
            widget.removeEventFilter(self)
        self.midi.close()
        self.session.close()


def _in_spin_box(widget: QObject) -> bool:
    """Whether ``widget`` is a spin box or its text field (where keys type a number)."""
    return isinstance(widget, QAbstractSpinBox) or isinstance(widget.parent(), QAbstractSpinBox)
