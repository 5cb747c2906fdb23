"""Audio back-ends: where the engine's blocks come from and go to.

Thread contract: a back-end is opened, started and stopped from the main thread. Its audio
callback (PortAudio's thread) calls ``Engine.process_block`` and, if recording, copies the
block into a preallocated ``Recorder``; nothing else. The offline back-end drives the same
``process_block`` from the calling thread as fast as the worker keeps up.

Device problems end in one sentence (``DeviceError``): no device, an unsupported rate or block
size; a device lost mid-stream stops the stream cleanly and is reported by ``stop()``.
"""

from __future__ import annotations

import atexit
import time
from types import ModuleType
from typing import Any

import numpy as np

from ..engine.engine import Engine
from ..errors import UserError


class DeviceError(UserError):
    """An audio device that cannot be opened or was lost."""


class Recorder:
    """Keeps what the stream played, in a buffer allocated up front (no allocation per block).

    Args:
        n_frames: most frames kept; later blocks are counted but not kept.
        n_channels: channels per frame.
    """

    def __init__(self, n_frames: int, n_channels: int) -> None:
        self.buffer = np.zeros((n_frames, n_channels), dtype=np.float32)
        self.n_recorded = 0

    def write(self, block: np.ndarray) -> None:
        start = self.n_recorded
        take = min(block.shape[0], self.buffer.shape[0] - start)
        if take > 0:
            self.buffer[start : start + take] = block[:take]
        self.n_recorded = start + block.shape[0]

    @property
    def recorded(self) -> np.ndarray:
        return self.buffer[: min(self.n_recorded, self.buffer.shape[0])]


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as error:
        raise DeviceError(
            "PortAudio is not installed: install it with 'apt-get install libportaudio2'."
        ) from error
    return sounddevice


class SoundDeviceBackend:
    """A PortAudio stream (ALSA, PulseAudio/PipeWire, JACK) through sounddevice.

    Args:
        engine: the engine to drive.
        output_device, input_device: device names or indices (``None``: the default).
        recorder: optionally keeps the output played.
    """

    def __init__(
        self,
        engine: Engine,
        output_device: int | str | None = None,
        input_device: int | str | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.lost: str | None = None
        self._stopping = False
        sd = _sounddevice()
        settings = engine.settings
        duplex = engine.source is None
        kind = sd.Stream if duplex else sd.OutputStream
        device: Any = (input_device, output_device) if duplex else output_device
        try:
            self.stream = kind(
                samplerate=settings.sample_rate,
                blocksize=settings.block_size,
                device=device,
                channels=engine.n_channels,
                dtype="float32",
                latency="low",
                callback=self._callback if duplex else self._output_callback,
                finished_callback=self._finished,
            )
        except (sd.PortAudioError, ValueError) as error:
            explanation = self._explain(error, settings.sample_rate, settings.block_size)
            raise DeviceError(explanation) from error
        latency = self.stream.latency
        output_latency = latency[1] if isinstance(latency, tuple) else latency
        input_latency = latency[0] if isinstance(latency, tuple) else 0.0
        self.device_latency_samples = round((output_latency + input_latency) * settings.sample_rate)

    @staticmethod
    def _explain(error: Exception, sample_rate: int, block_size: int) -> str:
        text = str(error)
        if "Invalid sample rate" in text:
            return (
                f"The audio device does not run at {sample_rate} Hz, the model's rate: choose "
                "another device (livestems devices) or set the device to that rate."
            )
        no_device = ("No Default", "Device unavailable", "Invalid device", "querying device -1")
        if any(phrase in text for phrase in no_device):
            return (
                "No usable audio device: connect one or start a sound server (JACK, PulseAudio); "
                "'livestems devices' lists what PortAudio sees."
            )
        return (
            f"The audio device refused a stream at {sample_rate} Hz, {block_size}-sample blocks "
            f"({text})."
        )

    def _output_callback(
        self, outdata: np.ndarray, frames: int, time_info: Any, status: Any
    ) -> None:
        if status.output_underflow:
            self.engine.telemetry.device_xruns += 1
        self.engine.process_block(None, outdata)
        if self.recorder is not None:
            self.recorder.write(outdata)

    def _callback(
        self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info: Any, status: Any
    ) -> None:
        if status.output_underflow or status.input_overflow:
            self.engine.telemetry.device_xruns += 1
        self.engine.process_block(indata, outdata)
        if self.recorder is not None:
            self.recorder.write(outdata)

    def _finished(self) -> None:
        # Called whenever the stream ends: by stop(), or by PortAudio when the device goes.
        if not self._stopping:
            self.lost = "the audio device stopped the stream (was it unplugged?)"

    def start(self) -> None:
        self.engine.warm_up()
        self.engine.start()
        self.stream.start()

    def stop(self) -> None:
        self._stopping = True
        try:
            if self.lost is None:
                self.stream.stop()
                self.stream.close()
            else:
                # PortAudio blocks for ever stopping, closing or terminating a stream whose
                # device (a JACK server, say) has gone; leave it to the operating system,
                # including sounddevice's clean-up at exit, so that the program can end.
                atexit.unregister(_sounddevice()._exit_handler)
        finally:
            self.engine.stop()

    def alive(self) -> bool:
        """False once the device has stopped the stream (and ``lost`` says so)."""
        if self.lost is None and not self._stopping and not self.stream.active:
            # Our callback never stops the stream: if it is not active, the device went.
            self.lost = "the audio device stopped the stream (was it unplugged?)"
        return self.lost is None

    def run_for(self, seconds: float, poll: float = 0.05) -> None:
        """Play for ``seconds`` (or until the source ends or the device is lost)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.engine.source is not None and self.engine.source.finished:
                break
            if not self.alive():
                break
            time.sleep(poll)


class OfflineBackend:
    """Drives the engine without a device, as fast as the worker keeps up: each block waits
    until the worker has produced it, so an offline run has no under-runs by construction and
    gives exactly the samples a device would have played."""

    def __init__(self, engine: Engine, recorder: Recorder | None = None) -> None:
        self.engine = engine
        self.recorder = recorder
        block = engine.settings.block_size
        self._out = np.zeros((block, engine.n_channels), dtype=np.float32)

    def render(self, n_frames: int, input_audio: np.ndarray | None = None) -> None:
        engine = self.engine
        block = engine.settings.block_size
        engine.start()
        try:
            for start in range(0, n_frames, block):
                frames = min(block, n_frames - start)
                indata = None if input_audio is None else input_audio[start : start + frames]
                # The worker has the previous block's input; wait until its output is there.
                waited = 0.0
                while not engine.ready_for(frames):
                    if engine.worker_error is not None or waited > 10.0:
                        raise RuntimeError("the engine's worker stopped") from engine.worker_error
                    time.sleep(0.0002)
                    waited += 0.0002
                engine.process_block(indata, self._out[:frames])
                if self.recorder is not None:
                    self.recorder.write(self._out[:frames])
        finally:
            engine.stop()
