"""The audio session behind the window: a model, the engine, a song and the audio device.

Thread contract: every method runs on the GUI (main) thread. ``open``/``close``/``reload``
block (loading a model builds an onnxruntime session; starting a stream warms the model up);
they are called on user actions, never from the painting timer. The controls (``set_gain_db``,
``set_mute``, ``set_solo``, ``set_master_gain_db``, ``set_bypass``, the transport) are single
stores into the engine's mixer or the file source, which the audio callback picks up at its next
block: the GUI never waits on the audio thread and the audio thread never waits on the GUI.
``snapshot`` copies the engine's telemetry without a lock.

What the window needs and nothing more goes through here, so that the engine can move into a
process of its own behind the same surface (DESIGN.md, the GIL paragraph) without the window
changing.
"""

from __future__ import annotations

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
from ..realtime.runtime.catalog import find_model_file
from ..realtime.runtime.onnx_model import OnnxHopModel

IDENTITY = "identity"  # the model setting's value for the identity (dry) model
BUNDLED = "bundled"  # the model setting's value for the first bundled model (the default)
BLOCK_SIZES = (64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class SessionSettings:
    """What the user chose in Settings: stored by value (QSettings), never by list index.

    Attributes:
        model: a .onnx file, ``BUNDLED`` for the first bundled model, or ``IDENTITY`` for the
            dry model (no separation).
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


@dataclass
class Controls:
    """The mixer controls as the user last set them (GUI thread only)."""

    gain_db: dict[int, float] = field(default_factory=dict)
    muted: dict[int, bool] = field(default_factory=dict)
    soloed: dict[int, bool] = field(default_factory=dict)
    master_db: float = 0.0
    bypassed: bool = False

    def forget_stems(self) -> None:
        self.gain_db.clear()
        self.muted.clear()
        self.soloed.clear()


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
            try:
                model_file = str(find_model_file(None))
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

    def load_song(self, path: str | Path) -> None:
        """Read a song (any format ``load_audio`` reads) at the model's rate; the stream is
        started by ``start``."""
        self.song = load_audio(path, self.sample_rate)
        self.song_path = Path(path)
        self.song_name = self.song_path.name
        self.live_input = False

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
        if not self.live_input:
            assert self.song is not None
            source = FileSource(self.song, self.sample_rate)
            source.seek(position_seconds)
            source.playing = playing
        engine = Engine(
            processor, EngineSettings(self.sample_rate, self.settings.block_size), source
        )
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
    def source(self) -> FileSource | None:
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

    def set_gain_db(self, stem: int, db: float) -> None:
        self._controls.gain_db[stem] = db
        if self.engine is not None and stem < len(self.engine.stems):
            self.engine.set_gain(stem, db_to_gain(db))

    def set_mute(self, stem: int, muted: bool) -> None:
        self._controls.muted[stem] = muted
        if self.engine is not None and stem < len(self.engine.stems):
            self.engine.set_mute(stem, muted)

    def set_solo(self, stem: int, soloed: bool) -> None:
        self._controls.soloed[stem] = soloed
        if self.engine is not None and stem < len(self.engine.stems):
            self.engine.set_solo(stem, soloed)

    def set_master_gain_db(self, db: float) -> None:
        self._controls.master_db = db
        if self.engine is not None:
            self.engine.set_master_gain(db_to_gain(db))

    def set_bypass(self, bypassed: bool) -> None:
        self._controls.bypassed = bypassed
        if self.engine is not None:
            self.engine.set_bypass(bypassed)

    def _apply_controls(self, engine: Engine) -> None:
        """The kept controls into a new engine, before its stream starts (``mixer.reset`` is
        only allowed while the callback is not running)."""
        controls = self._controls
        for stem, db in controls.gain_db.items():
            if stem < len(engine.stems):
                engine.set_gain(stem, db_to_gain(db))
        for stem, muted in controls.muted.items():
            if stem < len(engine.stems):
                engine.set_mute(stem, muted)
        for stem, soloed in controls.soloed.items():
            if stem < len(engine.stems):
                engine.set_solo(stem, soloed)
        engine.set_master_gain(db_to_gain(controls.master_db))
        engine.mixer.reset()  # start at these gains, not ramping towards them
        engine.set_bypass(controls.bypassed)

    def cpu_seconds(self) -> float:
        """CPU time the engine uses outside this process: none (it runs in this one)."""
        return 0.0

    def close(self) -> None:
        self.stop()
