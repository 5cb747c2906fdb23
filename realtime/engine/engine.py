"""The real-time engine: an audio callback that copies and mixes, a worker that separates.

Thread contract (DESIGN.md, "The data path"):

- **Audio callback** (PortAudio's or JACK's thread, or the offline driver): ``process_block``
  only. It copies the block's input (from the device or the ``FileSource``) into the in-ring
  and the dry delay line, wakes the worker with one byte on a pipe, reads the stems from the
  out-ring, mixes them with ramped gains and cross-fades to the dry signal for bypass. It never
  allocates array memory, takes a lock, logs, or calls onnxruntime. When the out-ring is short
  it counts an under-run and plays the dry input delayed by the same latency (never silence,
  never an exception), and drops the late stems when they arrive, so the two stay aligned.
- **Worker thread** (``start``/``stop`` manage it): waits on the pipe, reads whatever input is
  there, runs the stream processor (STFT, model step, iSTFT per hop) and writes the stems to
  the out-ring; it records compute time, levels and spectra in ``telemetry``.
- **Control threads** (GUI, terminal, MIDI): ``set_gain``, ``set_mute``, ``set_solo``,
  ``set_master_gain``, ``set_bypass``, ``set_pan``: single stores that the callback ramps
  over ~10 ms; ``set_bleed_gate``: a single store the worker reads per hop;
  ``set_tempo``, ``set_transpose``, ``set_count_in``: single stores on a practice source.
- **Practice source** (``realtime/practice``, a file played at another tempo or key): the
  callback copies its audio from a ring that the worker refills after each block (Rubber Band
  runs there, never in the callback), and the count-in's clicks through a delay line of the
  stems' latency.

Latency. The out-ring starts with ``buffer_samples`` zeros (at least one device block): the
worker processes block k while earlier output plays. So the engine adds exactly
``buffer_samples`` to the processor's algorithmic latency, and ``latency_samples`` is their sum;
the device's own buffers come on top (the back-end reports them).
"""

from __future__ import annotations

import gc
import os
import select
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..practice.practice_source import PracticeSource
from ..practice.tempo_key import LiveTransposer
from .mixer import StemMixer
from .priority import (
    DEFAULT_PRIORITY,
    lock_memory,
    request_realtime_scheduling,
    unlock_memory,
)
from .processor import HopModel, StreamProcessor
from .ring_buffer import AudioRingBuffer
from .sources import FileSource
from .telemetry import Telemetry

WAKE = b"\x00"
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class EngineSettings:
    """What belongs to a run (not to the model).

    Attributes:
        sample_rate: the device's rate; must equal the model's.
        block_size: samples per audio callback (the device block).
        buffer_blocks: device blocks of output pre-filled before the start: the time the worker
            has to process a block (``None``: enough blocks for ``min_buffer_ms``).
        ring_blocks: ring capacity, in device blocks, beyond the pre-fill.
        spectrum_every: samples between spectrogram columns in telemetry.
        realtime_priority: the ``SCHED_FIFO`` priority the worker asks for as it starts
            (``priority.py``); ``None``: it does not ask.
    """

    sample_rate: int
    block_size: int
    buffer_blocks: int | None = None
    ring_blocks: int = 16
    spectrum_every: int = 1024
    min_buffer_ms: float = 10.0
    realtime_priority: int | None = DEFAULT_PRIORITY

    @property
    def buffer_samples(self) -> int:
        """The worker's head start: ``buffer_blocks`` device blocks, or by default the fewest
        blocks that give it ``min_buffer_ms``. One block is the minimum (the worker needs a
        whole block before it can start); more absorbs the scheduling spikes of a shared
        machine (measured here: a hop that takes 0.5 ms at the median now and then takes 5)."""
        blocks = self.buffer_blocks
        if blocks is None:
            wanted = self.min_buffer_ms * self.sample_rate / 1000.0
            blocks = max(1, -(-int(wanted) // self.block_size))
        return blocks * self.block_size


class Engine:
    """Args:
    processor: the stream processor (a model and its spectral path); prepared here.
    settings: the run's device geometry.
    source: a file to play; ``None`` takes the input of the device (live).
    live_transpose: live input may be transposed (``set_transpose``): Rubber Band in the
        worker, before the separation, adds its ``latency_samples`` to the engine's for the
        whole run (``LiveTransposer``).
    """

    def __init__(
        self,
        processor: StreamProcessor,
        settings: EngineSettings,
        source: FileSource | None = None,
        live_transpose: bool = False,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.source = source
        self.stems = processor.stems
        n_stems, n_channels = len(self.stems), processor.n_channels
        self.n_channels = n_channels
        block = settings.block_size
        self.buffer_samples = settings.buffer_samples
        self.transposer: LiveTransposer | None = None
        if live_transpose and source is None:
            self.transposer = LiveTransposer(settings.sample_rate, n_channels, block)
        self.transpose_samples = 0 if self.transposer is None else self.transposer.latency_samples
        self.latency_samples = (
            processor.latency_samples + self.buffer_samples + self.transpose_samples
        )
        capacity = settings.ring_blocks * block + self.buffer_samples
        processor.prepare(settings.sample_rate, capacity)
        self._in_ring = AudioRingBuffer(capacity, n_channels)
        self._out_ring = AudioRingBuffer(capacity + self.buffer_samples, n_stems * n_channels)
        self._dry_line = AudioRingBuffer(self.latency_samples + capacity, n_channels)
        # A practice source (tempo, key, count-in: realtime/practice) gives its audio with the
        # count-in's clicks, the grid's clicks and song time beside it; both clicks wait in a
        # delay line of the stems' latency, so that they stay on the beats they mark.
        self._practice = source is not None and hasattr(source, "read_block_into")
        #: What the mixer mixes: the model's stems, and with a practice source the click track
        #: on the song's beat grid (its own fader, mute and solo; muted at the start).
        self.mix_stems: tuple[str, ...] = (*self.stems, "click") if self._practice else self.stems
        self.mixer = StemMixer(len(self.mix_stems), n_channels, settings.sample_rate, capacity)
        if self._practice:
            self.mixer.set_mute(n_stems, True)
            self.mixer.reset()
        self._mix_in = np.zeros((len(self.mix_stems), capacity, n_channels), dtype=np.float32)
        # Wet (the stems' mix) and dry (the input, delayed alike), cross-faded for bypass.
        self._bypass = StemMixer(2, n_channels, settings.sample_rate, capacity)
        self._bypass.set_gain(1, 0.0)
        self._bypass.reset()
        self.telemetry = Telemetry(n_stems, n_channels)
        # Callback buffers [shape=(capacity, ...)]: a block is a slice of these.
        self._input = np.zeros((capacity, n_channels), dtype=np.float32)
        self._stems = np.zeros((capacity, n_stems * n_channels), dtype=np.float32)
        self._wet_dry = np.zeros((2, capacity, n_channels), dtype=np.float32)
        n_columns = getattr(source, "n_columns", n_channels) if self._practice else n_channels
        self._source_block = np.zeros((capacity, n_columns), dtype=np.float32)
        # [count-in, click stem] per sample
        self._click_line = AudioRingBuffer(self.latency_samples + capacity, 2)
        self._clicks = np.zeros((capacity, 2), dtype=np.float32)
        # The worker's refill times of the practice source, seconds per call (a ring of the
        # last calls; the worker is its only writer): what stretching costs next to the model.
        self.refill_seconds = np.zeros(1 << 16, dtype=np.float64)
        self.refill_calls = 0
        self._late_samples = 0  # stems owed to under-runs, dropped when they arrive
        self._hops_pending = 0  # input samples the processor holds towards its next hop
        # Worker buffers.
        self._work_in = np.zeros((capacity, n_channels), dtype=np.float32)
        self._work_out = np.zeros((capacity, n_stems * n_channels), dtype=np.float32)
        self._work_shifted = np.zeros((capacity, n_channels), dtype=np.float32)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._running = False
        self._worker: threading.Thread | None = None
        self.worker_error: BaseException | None = None
        # What the worker's scheduling and the process's memory were granted (the report's
        # "real-time" line): written once by the worker as it starts, and by lock_memory().
        self.scheduling = "not started"
        self.memory = "not locked (not asked for)"
        self._saved_switch_interval: float | None = None
        self.reset()

    @classmethod
    def for_model(
        cls,
        model: HopModel,
        audio: np.ndarray | None,
        block_size: int,
        postfilter: bool = False,
        practice: bool = False,
        **settings: float,
    ) -> Engine:
        """The engine that plays ``audio`` (at the model's rate; ``None``: the device's input)
        through a model file's hop model, at ``block_size`` samples per device block
        (``postfilter``: with the Wiener post-filter; ``practice``: a file played through a
        ``PracticeSource``, whose tempo, key and count-in can change)."""
        processor = StreamProcessor.for_model(model, postfilter)
        rate = processor.preset.sample_rate
        source: FileSource | None = None
        if audio is not None and practice:
            lead = EngineSettings(rate, block_size, **settings).buffer_samples + 2 * block_size  # type: ignore[arg-type]
            source = PracticeSource(audio, rate, lead_samples=lead)
        elif audio is not None:
            source = FileSource(audio, rate)
        return cls(processor, EngineSettings(rate, block_size, **settings), source)  # type: ignore[arg-type]

    # -- lifetime ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear every ring and all model state; only while stopped."""
        if self._running:
            raise RuntimeError("reset() while the engine runs")
        self.processor.reset()
        if self.transposer is not None:
            self.transposer.reset()
        for ring in (self._in_ring, self._out_ring, self._dry_line):
            ring.reset()
        # Pre-filled with exactly the latency each adds: the worker's head start (a live
        # transposer's FIFO holds its own part), and the dry path's delay, equal to the stems'
        # total delay so that bypass and fallback line up.
        self._out_ring.write_zeros(self.buffer_samples)
        self._dry_line.write_zeros(self.latency_samples)
        self._late_samples = 0
        self._hops_pending = 0
        self._click_line.reset()
        self._click_line.write_zeros(self.latency_samples)
        if self._practice:
            self.source.restart()  # type: ignore[union-attr]

    def warm_up(self, n_hops: int = 16) -> None:
        """Run the processor on silence, then reset: onnxruntime's first runs are many times
        slower than the rest (allocation, kernel selection), and would otherwise fall in the
        first blocks of the stream."""
        hop = self.processor.preset.hop
        samples = min(n_hops * hop, self._work_in.shape[0])
        silence = np.zeros((samples, self.n_channels), dtype=np.float32)
        for _ in range(max(1, n_hops * hop // samples)):
            self.processor.process_into(silence, self._work_out[:samples])
        self.reset()

    def start(self) -> None:
        if self._running:
            return
        # The callback is Python too and must get the GIL when its block is due. CPython hands
        # the GIL over only every "switch interval" (5 ms by default, most of a 5.8 ms block):
        # while streaming, a thread that wants it waits at most 0.5 ms.
        if self._saved_switch_interval is None:
            self._saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # A full garbage collection walks every object the process holds (hundreds of
        # thousands once torch is imported): tens of milliseconds with the GIL held, whenever
        # allocation counts say so. Freezing what exists now leaves the collector only what
        # the stream allocates itself.
        gc.collect()
        gc.freeze()
        self._running = True
        self._worker = threading.Thread(target=self._work, name="livestems-worker", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        if self._saved_switch_interval is not None:
            sys.setswitchinterval(self._saved_switch_interval)
            self._saved_switch_interval = None
            gc.unfreeze()

    def lock_memory(self) -> str:
        """Lock the process's pages into RAM, now that every buffer is allocated; call before
        ``start()`` in a process that plays (a command, the window's engine process)."""
        self.memory = lock_memory()
        return self.memory

    def close(self) -> None:
        self.stop()
        if self.memory.startswith("locked"):
            unlock_memory()  # the report still says what the run had
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def output_available(self) -> int:
        """Frames of stems ready for the callback (any thread; a lower bound)."""
        return self._out_ring.fill()

    def ready_for(self, n_samples: int) -> bool:
        """Whether the next block of ``n_samples`` is there: the stems, and a practice
        source's audio (an offline render waits for both)."""
        if self._out_ring.fill() < n_samples:
            return False
        return not self._practice or self.source.ready(n_samples)  # type: ignore[union-attr]

    # -- controls, any thread ---------------------------------------------------------------

    def set_gain(self, stem: int, gain: float) -> None:
        self.mixer.set_gain(stem, gain)

    def set_gain_db(self, stem: int, db: float) -> None:
        self.mixer.set_gain_db(stem, db)

    def set_mute(self, stem: int, muted: bool) -> None:
        self.mixer.set_mute(stem, muted)

    def set_solo(self, stem: int, soloed: bool) -> None:
        self.mixer.set_solo(stem, soloed)

    def set_pan(self, stem: int, pan: float) -> None:
        """-1 (left) to +1 (right): the mixer's balance law."""
        self.mixer.set_pan(stem, pan)

    def set_bleed_gate(self, stem: int, threshold_db: float | None) -> None:
        """Silence the stem's bins ``threshold_db`` below its peak (``None``: off); the worker
        applies it from its next hop."""
        self.processor.set_bleed_gate(stem, threshold_db)

    def set_master_gain(self, gain: float) -> None:
        self.mixer.set_master_gain(gain)

    def set_bypass(self, bypassed: bool) -> None:
        self._bypass.set_gain(0, 0.0 if bypassed else 1.0)
        self._bypass.set_gain(1, 1.0 if bypassed else 0.0)

    @property
    def bypassed(self) -> bool:
        return self._bypass.gain(1) > 0.0

    def set_tempo(self, tempo: float) -> None:
        """Play the song at ``tempo`` times its speed, pitch kept (0.5-1.5)."""
        self._practice_source("Tempo").set_tempo(tempo)

    def set_transpose(self, semitones: float) -> None:
        """Play the song (or the live input, with ``live_transpose``) ``semitones`` higher,
        tempo kept (-12..+12, cents as hundredths)."""
        if self.transposer is not None:
            self.transposer.set_transpose(semitones)
            return
        if self.source is None:
            raise UserError(
                "Live input is transposed only when the run starts with --transpose "
                "(Rubber Band adds its latency for the whole run)."
            )
        self._practice_source("Transpose").set_transpose(semitones)

    @property
    def transpose(self) -> float:
        """The transposition asked for, in semitones (file or live)."""
        if self.transposer is not None:
            return self.transposer.semitones
        return float(getattr(self.source, "transpose", 0.0))

    def set_count_in(self, enabled: bool) -> None:
        """One bar of clicks before play and before each loop restart."""
        self._practice_source("The count-in").set_count_in(enabled)

    def _practice_source(self, what: str):  # noqa: ANN202 - a PracticeSource
        if not self._practice:
            raise UserError(f"{what} applies to a song played from a file, not to live input.")
        return self.source

    # -- audio callback ---------------------------------------------------------------------

    def process_block(
        self,
        indata: np.ndarray | None,
        outdata: np.ndarray,
        stems_out: np.ndarray | None = None,
    ) -> None:
        """One device block: ``indata`` [shape=(n_samples, n_channels)] (``None`` when a file
        source plays) in, ``outdata`` [shape=(n_samples, n_channels)] filled; ``stems_out``
        [shape=(n_stems, n_samples, n_channels)], if given, receives each stem before its fader
        (zeros during an under-run), for back-ends with a port per stem."""
        n_samples = outdata.shape[0]
        block = self._input[:n_samples]
        if self._practice:
            columns = self._source_block[:n_samples]
            self.source.read_block_into(columns)  # type: ignore[union-attr]
            block[:] = columns[:, : self.n_channels]
            self._click_line.write(columns[:, self.n_channels : self.n_channels + 2])
        elif self.source is not None:
            self.source.read_into(block)
        elif indata is not None:
            block[:] = indata
        else:
            block.fill(0.0)
        dropped = n_samples - self._in_ring.write(block)
        if dropped:
            # The worker is so far behind that the in-ring is full: these samples will never
            # come back as stems, so stop owing them (else every later block under-runs).
            self._late_samples = max(0, self._late_samples - dropped)
        self._wake()
        wet, dry = self._wet_dry[0, :n_samples], self._wet_dry[1, :n_samples]
        self._dry_line.write(block)
        self._dry_line.read_into(dry)
        out_ring = self._out_ring
        if self._late_samples:
            self._late_samples -= out_ring.skip(self._late_samples)
        available = out_ring.fill()
        if available >= n_samples and not self._late_samples:
            stems = self._stems[:n_samples]
            out_ring.read_into(stems)
            # (n_samples, n_stems * n_channels) -> (n_stems, n_samples, n_channels)
            by_stem = stems.reshape(n_samples, -1, self.n_channels).transpose(1, 0, 2)
            if self._practice:
                self._mix_with_clicks(by_stem, wet)
            else:
                self.mixer.mix_into(by_stem, wet)
            if stems_out is not None:
                stems_out[:] = by_stem
        else:
            self._late_samples += n_samples
            self.telemetry.record_underrun(n_samples - available)
            wet[:] = dry
            if stems_out is not None:
                stems_out.fill(0.0)
            if self._practice:
                self._click_line.read_into(self._clicks[:n_samples])  # keep the clicks in step
        self._bypass.mix_into(self._wet_dry[:, :n_samples], outdata)
        if self._practice:
            count_in = self._clicks[:n_samples, 0:1]
            outdata += count_in  # every channel: the clicks are in the middle
        self.telemetry.record_block(n_samples, available)

    def _mix_with_clicks(self, by_stem: np.ndarray, wet: np.ndarray) -> None:
        """Mix the stems and the click stem (callback; copies into preallocated buffers,
        channel by channel, as the mixer does, so numpy builds no broadcasting iterator)."""
        n_samples, n_stems = wet.shape[0], len(self.stems)
        clicks = self._clicks[:n_samples]
        self._click_line.read_into(clicks)
        mix_in = self._mix_in[:, :n_samples]
        for s in range(n_stems):
            for c in range(self.n_channels):
                np.copyto(mix_in[s, :, c], by_stem[s, :, c])
        for c in range(self.n_channels):
            np.copyto(mix_in[n_stems, :, c], clicks[:, 1])
        self.mixer.mix_into(mix_in, wet)

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, WAKE)
        except (BlockingIOError, OSError):
            pass  # the pipe is full (the worker is awake anyway) or closed (stopping)

    # -- worker -----------------------------------------------------------------------------

    def _work(self) -> None:
        self.scheduling = request_realtime_scheduling(self.settings.realtime_priority)
        try:
            while self._running:
                ready, _, _ = select.select([self._wake_read], [], [], 0.1)
                if ready:
                    os.read(self._wake_read, 4096)
                self._drain_input()
                if self._practice:
                    started = time.perf_counter()
                    self.source.refill()  # type: ignore[union-attr]
                    slot = self.refill_calls % self.refill_seconds.shape[0]
                    self.refill_seconds[slot] = time.perf_counter() - started
                    self.refill_calls += 1
        except BaseException as error:  # kept for the owner to report; the callback goes on
            self.worker_error = error  # dry, so audio never stops on a worker failure
            self._running = False

    def _drain_input(self) -> None:
        processor, hop = self.processor, self.processor.preset.hop
        n_stems = len(self.stems)
        while self._running:
            n_samples = self._in_ring.read_into(self._work_in)
            if n_samples == 0:
                return
            pending_before = self._hops_pending
            block = self._work_in[:n_samples]
            if self.transposer is not None:
                # before the separation: the stems are of what is heard
                self.transposer.process_into(block, self._work_shifted[:n_samples])
                block = self._work_shifted[:n_samples]
            started = time.perf_counter()
            processor.process_into(block, self._work_out[:n_samples])
            elapsed = time.perf_counter() - started
            total = pending_before + n_samples
            n_hops, self._hops_pending = divmod(total, hop)
            if n_hops:
                self.telemetry.record_compute(elapsed / n_hops, n_hops)
            self._out_ring.write(self._work_out[:n_samples])
            # (n_samples, n_stems * n_channels) -> (n_samples, n_stems, n_channels)
            stems = self._work_out[:n_samples].reshape(n_samples, n_stems, self.n_channels)
            self.telemetry.record_output(stems, self.settings.spectrum_every)
