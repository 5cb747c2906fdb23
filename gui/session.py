"""The audio session behind the window: a model, the engine, a song and the audio device.

Thread contract: every method runs on the GUI (main) thread. ``open``/``close``/``reload``
block (loading a model builds an onnxruntime session; starting a stream warms the model up);
they are called on user actions, never from the painting timer. The controls (``set_gain_db``,
``set_mute``, ``set_solo``, ``set_pan``, ``set_bleed_gate``, ``set_master_gain_db``,
``set_bypass``, ``set_tempo``, ``set_transpose``, ``set_count_in``, the transport) are single
stores into the engine's mixer or the file source, which the audio callback picks up at its next
block: the GUI never waits on the audio thread and the audio thread never waits on the GUI.
``snapshot`` copies the engine's telemetry without a lock.
A song plays through a ``PracticeSource`` (tempo, key, count-in; a click stem after the model's
stems). Its beat grid is found on a ``BeatGridLoader``'s thread when the song loads; that
thread stores it here and gives it to the playing source under ``_grid_lock`` (held for a few
stores, never by the audio thread), and the window reads it with ``beat_grid``.

What the window needs and nothing more goes through here, so that the engine can move into a
process of its own behind the same surface (DESIGN.md, the GIL paragraph) without the window
changing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..realtime.backends.portaudio import SoundDeviceBackend
from ..realtime.dsp.presets import PRESETS, SAMPLE_RATE
from ..realtime.engine.engine import Engine, EngineSettings
from ..realtime.engine.mixer import db_to_gain
from ..realtime.engine.processor import IdentityHopModel, StreamProcessor
from ..realtime.engine.sources import FileSource
from ..realtime.engine.telemetry import TelemetrySnapshot
from ..realtime.errors import UserError
from ..realtime.io.audio_file import load_audio
from ..realtime.practice.beat_grid import BeatGrid, BeatGridLoader
from ..realtime.practice.practice_source import PracticeSource
from ..realtime.practice.tempo_key import check_tempo, check_transpose, require_rubber_band
from ..realtime.runtime.catalog import find_model_file
from ..realtime.runtime.onnx_model import OnnxHopModel

IDENTITY = "identity"  # the model setting's value for the identity (dry) model
# The model setting's value for the bundled default model: ``DEFAULT_MODEL`` for a song,
# ``DEFAULT_LIVE_INPUT_MODEL`` for the input device (``live_input``).
BUNDLED = "bundled"
BLOCK_SIZES = (64, 128, 256, 512, 1024, 2048)


def check_bleed_gate(threshold_db: float | None) -> None:
    """A bleed gate's threshold is a level below the stem's peak: -120 to 0 dB (None: off)."""
    if threshold_db is not None and not (-120.0 <= threshold_db < 0.0):
        raise UserError(
            f"A bleed gate's threshold is a level below the stem's peak, -120 to 0 dB, "
            f"not {threshold_db:g}."
        )


@dataclass(frozen=True)
class SessionSettings:
    """What the user chose in Settings: stored by value (QSettings), never by list index.

    Attributes:
        model: a .onnx file, ``BUNDLED`` for the bundled default model of the source (a song or
            the input device), or ``IDENTITY`` for the dry model (no separation).
        preset: the identity model's frame geometry (a model file brings its own).
        provider: onnxruntime's execution provider: ``auto``, ``cpu`` or ``cuda``.
        output_device, input_device: PortAudio device names (``""``: the default).
        block_size: frames per audio callback.
    """

    model: str = BUNDLED
    preset: str = "live"
    provider: str = "auto"
    output_device: str = ""
    input_device: str = ""
    block_size: int = 256

    def with_model(self, model: str) -> SessionSettings:
        return replace(self, model=model)


@dataclass(frozen=True)
class SessionStatus:
    """What the status bar shows; numbers in samples or fractions, formatted by the window."""

    preset: str
    model: str
    provider: str
    sample_rate: int
    hop: int
    algorithmic_latency: int
    engine_buffer: int
    device_latency: int


#: The controls' key for the click stem (the mixer's stem after the model's, a song's only).
CLICK = "click"
StemKey = int | str  # a model stem's index, or ``CLICK``


@dataclass
class Controls:
    """The mixer and practice controls as the user last set them (GUI thread only). A model
    stem's are keyed by its index, the click stem's by ``CLICK`` (its index depends on the
    model's stems); the click stem starts muted, as the engine's does."""

    gain_db: dict[StemKey, float] = field(default_factory=dict)
    muted: dict[StemKey, bool] = field(default_factory=lambda: {CLICK: True})
    soloed: dict[StemKey, bool] = field(default_factory=dict)
    pan: dict[StemKey, float] = field(default_factory=dict)
    bleed_gate_db: dict[int, float | None] = field(default_factory=dict)
    master_db: float = 0.0
    bypassed: bool = False
    tempo: float = 1.0
    transpose: float = 0.0
    count_in: bool = False

    def forget_stems(self) -> None:
        """A new model's stems: the model stems' controls go, the click's stay."""
        for table in (self.gain_db, self.muted, self.soloed, self.pan, self.bleed_gate_db):
            for key in [key for key in table if key != CLICK]:
                del table[key]  # type: ignore[arg-type]


class AudioSession:
    """The engine, its model and its stream, rebuilt whenever the song or the settings change.

    Args:
        settings: model, provider, devices and block size.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.backend: SoundDeviceBackend | None = None
        self.song: np.ndarray | None = None  # [shape=(n_samples, n_channels)], at sample_rate
        self.song_name = ""
        self.song_path: Path | None = None
        self.live_input = False
        # Lock the process's memory when the engine starts: only in the engine's own process
        # (engine_process.py), not beside Qt in the window's.
        self.lock_memory = False
        self._model_key: tuple[str, str, str] | None = None
        self.notice: str | None = None  # why the model is not the one asked for
        # (the stored model refused at launch, the sentence): the bundled model plays instead
        self._stand_in: tuple[str, str] | None = None
        self.model_name = ""
        self.provider = "CPU"
        self.sample_rate = SAMPLE_RATE
        self.stems: tuple[str, ...] = ()
        self._processor: StreamProcessor | None = None
        self._controls = Controls()
        # The song's beat grid, found on the loader's thread; ``_grid_lock`` keeps the grid
        # and the engine it is given to consistent between that thread and this one.
        self.grid: BeatGrid | None = None
        self._grid_lock = threading.Lock()
        self._grid_loader = BeatGridLoader(on_done=self._on_grid)

    # -- model ------------------------------------------------------------------------------

    def load_model(self) -> str | None:
        """Load the model the settings name (kept while they do not change).

        Returns:
            a sentence for the user when the model asked for is not the one that runs: none is
            bundled (the identity (dry) model runs instead), or the stored model file cannot be
            used when no model is loaded yet (the bundled one runs instead), so that the window
            still opens and plays.

        Raises:
            UserError: the model file cannot be used (the previous model stays loaded).
        """
        model = self.settings.model
        if self._stand_in is not None and self._stand_in[0] == model:
            return self._stand_in[1]  # refused before: the bundled model still stands in
        try:
            return self._load_model(self.settings)
        except UserError as error:
            if self._processor is not None or model in (BUNDLED, IDENTITY):
                raise
            # A stored model that broke (moved, damaged, from a newer livestems) must not stop
            # the window from opening on every launch: play the bundled one and say why.
            notice = self._load_model(self.settings.with_model(BUNDLED))
            sentences = [f"{error} Playing the bundled model instead.", notice]
            self._stand_in = (model, " ".join(filter(None, sentences)))
            return self._stand_in[1]

    def _load_model(self, settings: SessionSettings) -> str | None:
        model_file, notice = settings.model, None
        if model_file == BUNDLED:
            try:  # the default for the source: a song, or the input device (catalog.py)
                model_file = str(find_model_file(None, self.live_input))
            except UserError:
                model_file = IDENTITY
                notice = (
                    "No trained model is bundled here: playing the identity (dry) model on the "
                    f"{settings.preset} preset; choose a model file in Settings."
                )
        key = (model_file, settings.preset, settings.provider)
        if key == self._model_key and self._processor is not None:
            return notice
        if model_file == IDENTITY:
            if settings.preset not in PRESETS:
                raise UserError(
                    f"Unknown preset {settings.preset!r}: choose one of {', '.join(PRESETS)}."
                )
            preset = PRESETS[settings.preset]
            processor = StreamProcessor(IdentityHopModel(preset), preset)
            model_name, provider, sample_rate = "identity (dry)", "none", preset.sample_rate
        else:
            onnx_model = OnnxHopModel(model_file, provider=settings.provider)
            meta = onnx_model.metadata
            processor = StreamProcessor(
                onnx_model, meta.preset, meta.n_channels, onnx_model.front_end()
            )
            model_name = Path(model_file).name
            provider = "CUDA" if "CUDA" in onnx_model.provider else "CPU"
            sample_rate = meta.sample_rate
        self._model_key, self._processor = key, processor
        self.model_name, self.provider, self.sample_rate = model_name, provider, sample_rate
        if processor.stems != self.stems:
            self._controls.forget_stems()  # a stem's fader belongs to that stem
        self.stems = processor.stems
        return notice

    # -- song -------------------------------------------------------------------------------

    def open_song(self, path: str | Path) -> None:
        """Go to a song (from another song or from the input device): load the model for a
        recording (the source's default, or the one Settings names) and read the song at that
        model's rate; the stream is started by ``start``.

        Raises:
            UserError: the model or the song cannot be used; the session still plays what it
                played (a song, or the input device).
        """
        # What plays now, put back if the song cannot be played: the status line names the
        # model that runs, and the next start must not find another one loaded.
        before = (self.live_input, self.notice, self._model_key, self._processor)
        shown = (self.model_name, self.provider, self.sample_rate, self.stems)
        # The default model follows the source, and the song is read at its model's rate: the
        # input device's default may run at another rate than a recording's.
        self.live_input = False
        try:
            self.notice = self.load_model()
            self.load_song(path)
        except BaseException:
            self.live_input, self.notice, self._model_key, self._processor = before
            self.model_name, self.provider, self.sample_rate, self.stems = shown
            raise

    def open_live_input(self) -> None:
        """Separate the input device (the source's default model, or the one Settings names)
        instead of the song, and start the stream.

        Raises:
            UserError: the input device cannot be opened; the song plays on from where it was.
        """
        source = self.source
        song_playing = None if self.live_input or source is None else source.playing
        position = source.seconds if source is not None else 0.0
        was_live, self.live_input = self.live_input, True
        try:
            self.start()
        except UserError:
            self.live_input = was_live
            if song_playing is not None:
                self.start(position, song_playing)
            raise

    def load_song(self, path: str | Path) -> None:
        """Read a song (any format ``load_audio`` reads) at the model's rate; the stream is
        started by ``start``."""
        self.song = load_audio(path, self.sample_rate)
        self.song_path = Path(path)
        self.song_name = self.song_path.name
        with self._grid_lock:
            self.grid = None
        self._grid_loader.start(self.song_path, self.song, self.sample_rate)

    def _on_grid(self, grid: BeatGrid) -> None:
        """The loader's thread: keep the grid and give it to the playing source (attribute
        stores the worker reads at its next refill)."""
        with self._grid_lock:
            self.grid = grid
            engine = self.engine
            if engine is not None and isinstance(engine.source, PracticeSource):
                _give_grid(engine.source, grid)

    def beat_grid(self) -> BeatGrid | None:
        """The song's beat grid; ``None`` while it is found (or with no song)."""
        return None if self.live_input else self.grid

    # -- stream -----------------------------------------------------------------------------

    def start(self, position_seconds: float = 0.0, playing: bool = True) -> None:
        """(Re)build the engine on the current model and song (or the input device, when
        ``live_input``) and start the stream; stops a running one first."""
        self.stop()
        self.notice = self.load_model()
        processor = self._processor
        assert processor is not None
        if self.song is None and not self.live_input:
            return
        source = None
        settings = EngineSettings(self.sample_rate, self.settings.block_size)
        if not self.live_input:
            assert self.song is not None
            # The head start the engine keeps, and a block either side (``Engine.for_model``).
            lead = settings.buffer_samples + 2 * settings.block_size
            source = PracticeSource(self.song, self.sample_rate, lead_samples=lead)
            source.seek(position_seconds)
            source.playing = playing
        engine = Engine(processor, settings, source)
        self._apply_controls(engine)
        if self.lock_memory:
            engine.lock_memory()
        try:
            backend = SoundDeviceBackend(
                engine,
                output_device=self.settings.output_device or None,
                input_device=self.settings.input_device or None,
            )
        except BaseException:
            engine.close()
            raise
        try:
            backend.start()
        except BaseException:
            backend.stop()
            engine.close()
            raise
        # Published only once streaming: a reader on another thread (the engine process's
        # publisher) must never see a stream that is not active yet and take it for lost.
        with self._grid_lock:
            if self.grid is not None and isinstance(source, PracticeSource):
                _give_grid(source, self.grid)
            self.engine, self.backend = engine, backend

    def stop(self) -> None:
        backend, engine = self.backend, self.engine
        self.backend = self.engine = None
        if backend is not None:
            backend.stop()
        if engine is not None:
            engine.close()

    def apply_settings(self, settings: SessionSettings) -> None:
        """New settings, applied cleanly: stop the stream, load the model if it changed (and the
        song again if the model's rate differs), start again where the song was.

        Raises:
            UserError: the new model or device cannot be used; the previous settings are then
                running again, as they were.
        """
        source = self.source
        position = source.seconds if source is not None else 0.0
        playing = source.playing if source is not None else True
        previous = self.settings
        self.stop()
        try:
            self._restart(settings, position, playing)
        except UserError:
            self._restart(previous, position, playing)
            raise

    def _restart(self, settings: SessionSettings, position: float, playing: bool) -> None:
        self.settings = settings
        rate = self.sample_rate
        self.notice = self.load_model()
        if self.song_path is not None and self.sample_rate != rate:
            self.load_song(self.song_path)
        self.start(position, playing)

    def lost_reason(self) -> str | None:
        """Why the stream stopped by itself (the device went, the worker failed), else None."""
        if self.backend is not None and not self.backend.alive():
            return f"The audio stream stopped: {self.backend.lost}."
        if self.engine is not None and self.engine.worker_error is not None:
            return f"The separator stopped ({self.engine.worker_error}); playing the dry mix."
        return None

    # -- what the window reads --------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.engine is not None

    @property
    def source(self) -> FileSource | None:  # a PracticeSource for a song
        return self.engine.source if self.engine is not None else None

    def snapshot(self) -> TelemetrySnapshot | None:
        return self.engine.telemetry.snapshot() if self.engine is not None else None

    def stem_gains(self) -> np.ndarray | None:
        """The gain the mixer applied to each stem on the last sample it mixed (fader, mute, solo
        and master, ramps included: ``StemMixer.current_gains``); None while nothing plays.
        [shape=(n_stems,)], linear"""
        if self.engine is None:
            return None
        return self.engine.mixer.current_gains()[: len(self.engine.stems)]

    def status(self) -> SessionStatus | None:
        engine, backend = self.engine, self.backend
        if engine is None or backend is None:
            return None
        preset = engine.processor.preset
        return SessionStatus(
            preset=preset.name,
            model=self.model_name,
            provider=self.provider,
            sample_rate=self.sample_rate,
            hop=preset.hop,
            algorithmic_latency=engine.processor.latency_samples,
            engine_buffer=engine.buffer_samples,
            device_latency=backend.device_latency_samples,
        )

    # -- controls: single stores, picked up by the callback at its next block ------------------
    # Each is also kept here, so that the next engine (a new song, model or device) starts
    # with it, set before its stream starts rather than ramped to after.

    def _key(self, stem: int) -> StemKey:
        """The controls' key for the mixer's stem ``stem``: the click stem comes after the
        model's."""
        return CLICK if stem == len(self.stems) else stem

    def _mix_index(self, engine: Engine, key: StemKey) -> int | None:
        """The engine's mixer index for a controls key; None when the engine has no such stem
        (the click stem with live input)."""
        index = len(engine.stems) if key == CLICK else int(key)
        return index if index < len(engine.mix_stems) else None

    def _mixer_index(self, stem: int) -> int | None:
        return None if self.engine is None else self._mix_index(self.engine, self._key(stem))

    def set_gain_db(self, stem: int, db: float) -> None:
        """``stem``: a model stem's index, or ``len(stems)`` for the click stem (as for mute,
        solo and pan)."""
        self._controls.gain_db[self._key(stem)] = db
        index = self._mixer_index(stem)
        if self.engine is not None and index is not None:
            self.engine.set_gain(index, db_to_gain(db))

    def set_mute(self, stem: int, muted: bool) -> None:
        self._controls.muted[self._key(stem)] = muted
        index = self._mixer_index(stem)
        if self.engine is not None and index is not None:
            self.engine.set_mute(index, muted)

    def set_solo(self, stem: int, soloed: bool) -> None:
        self._controls.soloed[self._key(stem)] = soloed
        index = self._mixer_index(stem)
        if self.engine is not None and index is not None:
            self.engine.set_solo(index, soloed)

    def set_pan(self, stem: int, pan: float) -> None:
        """-1 (left) to +1 (right). Raises UserError for a value outside."""
        pan = float(pan)
        if not (-1.0 <= pan <= 1.0):
            raise UserError(f"Pan must be between -1 (left) and +1 (right), not {pan:g}.")
        self._controls.pan[self._key(stem)] = pan
        index = self._mixer_index(stem)
        if self.engine is not None and index is not None:
            self.engine.set_pan(index, pan)

    def set_bleed_gate(self, stem: int, threshold_db: float | None) -> None:
        """A model stem's bleed gate: its bins more than ``threshold_db`` (negative, e.g. -40)
        below its loudest are silenced (None: off)."""
        check_bleed_gate(threshold_db)
        self._controls.bleed_gate_db[stem] = threshold_db
        if self.engine is not None and stem < len(self.engine.stems):
            self.engine.set_bleed_gate(stem, threshold_db)

    def set_master_gain_db(self, db: float) -> None:
        self._controls.master_db = db
        if self.engine is not None:
            self.engine.set_master_gain(db_to_gain(db))

    def set_bypass(self, bypassed: bool) -> None:
        self._controls.bypassed = bypassed
        if self.engine is not None:
            self.engine.set_bypass(bypassed)

    def set_tempo(self, tempo: float) -> None:
        """The song's speed, pitch kept: 0.5-1.5. Raises UserError (one sentence) for a value
        outside, or without Rubber Band."""
        tempo = check_tempo(tempo)
        if tempo != 1.0:
            require_rubber_band()
        self._controls.tempo = tempo
        if self.engine is not None and isinstance(self.engine.source, PracticeSource):
            self.engine.set_tempo(tempo)

    def set_transpose(self, semitones: float) -> None:
        """The song's key, tempo kept: -12..+12 semitones (cents as hundredths). Raises
        UserError as ``set_tempo``."""
        semitones = check_transpose(semitones)
        if semitones != 0.0:
            require_rubber_band()
        self._controls.transpose = semitones
        if self.engine is not None and isinstance(self.engine.source, PracticeSource):
            self.engine.set_transpose(semitones)

    def set_count_in(self, enabled: bool) -> None:
        """One bar of clicks before play and before each loop restart."""
        self._controls.count_in = bool(enabled)
        if self.engine is not None and isinstance(self.engine.source, PracticeSource):
            self.engine.set_count_in(bool(enabled))

    def _apply_controls(self, engine: Engine) -> None:
        """The kept controls into a new engine, before its stream starts (``mixer.reset`` is
        only allowed while the callback is not running)."""
        controls = self._controls
        for key, db in controls.gain_db.items():
            if (index := self._mix_index(engine, key)) is not None:
                engine.set_gain(index, db_to_gain(db))
        for key, muted in controls.muted.items():
            if (index := self._mix_index(engine, key)) is not None:
                engine.set_mute(index, muted)
        for key, soloed in controls.soloed.items():
            if (index := self._mix_index(engine, key)) is not None:
                engine.set_solo(index, soloed)
        for key, pan in controls.pan.items():
            if (index := self._mix_index(engine, key)) is not None:
                engine.set_pan(index, pan)
        for stem, threshold_db in controls.bleed_gate_db.items():
            if stem < len(engine.stems):
                engine.set_bleed_gate(stem, threshold_db)
        if isinstance(engine.source, PracticeSource):
            engine.set_tempo(controls.tempo)
            engine.set_transpose(controls.transpose)
            engine.set_count_in(controls.count_in)
        engine.set_master_gain(db_to_gain(controls.master_db))
        engine.mixer.reset()  # start at these gains, not ramping towards them
        engine.set_bypass(controls.bypassed)

    def cpu_seconds(self) -> float:
        """CPU time the engine uses outside this process: none (it runs in this one)."""
        return 0.0

    def close(self) -> None:
        self.stop()


def _give_grid(source: PracticeSource, grid: BeatGrid) -> None:
    """A grid to the source: its beats for the click stem and the count-in (none when the
    grid is unavailable: the count-in then clicks at 120 BPM)."""
    if grid.available:
        source.set_grid(np.asarray(grid.beats), grid.bpm, np.asarray(grid.downbeats))
    else:
        source.set_grid(None, None)
