"""Tempo (pitch kept) and transposition (tempo kept) with Rubber Band's real-time stretcher.

Thread contract: a ``TempoKeyStretcher`` belongs to one thread, the engine's **worker** (or an
offline render's loop): every method may allocate (pylibrb returns new arrays) and runs for
milliseconds, so it is never called from the audio callback. Control threads never touch it;
they store targets on the ``PracticeSource``, whose worker side applies them here.

Why Rubber Band: it is the time-stretcher that the practice tools musicians know are built on
(R3, its "finer" engine, keeps transients and formants where a phase vocoder smears them), it
has a real-time mode whose ratios may change at any moment without a click, and pylibrb binds its
C++ API with numpy arrays. It is GPL (as is pylibrb), so it is an optional extra:
``pip install 'livestems[practice]'`` (setup.sh installs it).

Alignment. A real-time stretcher holds ``get_start_delay()`` output samples back. The stretcher
is primed with the song's audio *before* the start position (``get_preferred_start_pad()``
samples, zeros before the song's start) and that many output samples are dropped, so its first
output sample is the start position's: what comes out is in song time, not delayed.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError

#: The tempo range the controls accept (1.0: as recorded).
TEMPO_RANGE = (0.5, 1.5)
#: The transposition range, in semitones (cents are hundredths).
TRANSPOSE_RANGE = (-12.0, 12.0)


def check_tempo(tempo: float) -> float:
    """``tempo`` as a float, or one sentence when it is outside 50-150 %."""
    low, high = TEMPO_RANGE
    if not isinstance(tempo, (int, float)) or not math.isfinite(tempo) or not low <= tempo <= high:
        raise UserError(
            f"Tempo must be between {low:g} and {high:g} (50-150 % of the song's), got {tempo!r}."
        )
    return float(tempo)


def check_transpose(semitones: float) -> float:
    """``semitones`` as a float, or one sentence when it is outside -12..+12."""
    low, high = TRANSPOSE_RANGE
    if (
        not isinstance(semitones, (int, float))
        or not math.isfinite(semitones)
        or not low <= semitones <= high
    ):
        raise UserError(
            f"Transpose must be between {low:g} and {high:+g} semitones, got {semitones!r}."
        )
    return float(semitones)


def require_rubber_band():  # noqa: ANN201 - the pylibrb module, imported where it is needed
    """pylibrb, or one sentence saying how to install it."""
    try:
        import pylibrb
    except ImportError as error:
        raise UserError(
            "Tempo and transpose need Rubber Band: pip install 'livestems[practice]'."
        ) from error
    return pylibrb


def rubber_band_available() -> bool:
    try:
        require_rubber_band()
    except UserError:
        return False
    return True


class TempoKeyStretcher:
    """Audio at ``tempo`` times the speed and ``semitones`` higher, chunk by chunk.

    Args:
        sample_rate: samples per second.
        n_channels: channels, stretched together (the stereo image stays put).
    """

    def __init__(self, sample_rate: int, n_channels: int) -> None:
        pylibrb = require_rubber_band()
        option = pylibrb.Option
        # R3 ("finer"); channels together (a stereo image must not drift between sides);
        # formants shifted with the pitch, as an instrument's would be: preserving them suits a
        # solo voice, but on a whole mix it reshapes each note's level by the old envelope (a
        # transposed pure tone loses a third of its amplitude).
        options = (
            option.PROCESS_REALTIME
            | option.ENGINE_FINER
            | option.CHANNELS_TOGETHER
            | option.FORMANT_SHIFTED
            | option.PitchHighConsistency
        )
        pylibrb.set_default_logging_level(0)
        self._stretcher = pylibrb.RubberBandStretcher(sample_rate, n_channels, options, 1.0, 1.0)
        self.sample_rate = sample_rate
        self.n_channels = n_channels
        self.tempo = 1.0
        self.semitones = 0.0
        self._to_drop = 0

    @property
    def delay_samples(self) -> int:
        """What the stretcher holds back at the current ratios (compensated by ``start``)."""
        return int(self._stretcher.get_start_delay())

    def set(self, tempo: float, semitones: float) -> None:
        """New ratios; Rubber Band moves to them without a click, mid-stream."""
        tempo, semitones = check_tempo(tempo), check_transpose(semitones)
        if tempo != self.tempo:
            self._stretcher.time_ratio = 1.0 / tempo
            self.tempo = tempo
        if semitones != self.semitones:
            self._stretcher.pitch_scale = 2.0 ** (semitones / 12.0)
            self.semitones = semitones
        # Which engine and window the ratio needs can change the hold-back: the alignment is
        # kept by the caller's song-time bookkeeping, not by re-priming (which would click).

    def start(self, audio: np.ndarray, position: int) -> None:
        """Reset, then prime with ``audio`` [shape=(n_samples, n_channels)] before sample
        ``position`` so that the next output sample is ``position``'s."""
        stretcher = self._stretcher
        stretcher.reset()
        pad = int(stretcher.get_preferred_start_pad())
        primer = np.zeros((self.n_channels, pad), dtype=np.float32)
        have = min(pad, position)
        if have:
            primer[:, pad - have :] = audio[position - have : position].T
        stretcher.process(primer)
        self._to_drop = int(stretcher.get_start_delay())

    def process(self, chunk: np.ndarray, final: bool = False) -> np.ndarray:
        """Feed ``chunk`` [shape=(n_samples, n_channels)]; what is ready, [shape=(n_out,
        n_channels)] float32 (``n_out`` varies around ``n_samples / tempo``)."""
        self._stretcher.process(np.ascontiguousarray(chunk.T, dtype=np.float32), final)
        available = int(self._stretcher.available())
        if available <= 0:
            return np.zeros((0, self.n_channels), dtype=np.float32)
        out = self._stretcher.retrieve(available).T
        if self._to_drop:
            dropped = min(self._to_drop, out.shape[0])
            self._to_drop -= dropped
            out = out[dropped:]
        return np.ascontiguousarray(out, dtype=np.float32)

    def samples_required(self) -> int:
        """Input samples the stretcher wants before it can give more output."""
        return int(self._stretcher.get_samples_required())


class LiveTransposer:
    """Live input transposed in the engine's worker, a fixed number of samples out for each
    sample in.

    Thread contract: the **worker** calls ``process_into`` and ``reset`` (the latter also while
    the engine is stopped); a **control thread** calls ``set_transpose`` (one float store, which
    the worker applies at its next block). Never the audio callback.

    Rubber Band hands its output over in bursts, so the transposed samples pass through a FIFO
    that starts with ``latency_samples`` zeros: the most the stretcher was ever behind its
    input, measured here at construction for this block size at both ends of the range, plus a
    hop of margin. That is the transposition's whole cost in latency, fixed for the run (the
    engine adds it to its own, so the dry path stays aligned), and the report shows it. R2
    ("faster") with its short window: the least latency Rubber Band has (R3 holds ~40 % more).

    Args:
        sample_rate: samples per second.
        n_channels: channels, shifted together.
        block_size: samples per ``process_into`` call at most (the device block, or the
            worker's largest read).
    """

    def __init__(self, sample_rate: int, n_channels: int, block_size: int) -> None:
        pylibrb = require_rubber_band()
        option = pylibrb.Option
        self._options = (
            option.PROCESS_REALTIME
            | option.ENGINE_FASTER
            | option.WINDOW_SHORT
            | option.CHANNELS_TOGETHER
            | option.FORMANT_SHIFTED
            | option.PitchHighConsistency
        )
        pylibrb.set_default_logging_level(0)
        self._pylibrb = pylibrb
        self.sample_rate = sample_rate
        self.n_channels = n_channels
        self.semitones = 0.0
        self._applied = 0.0
        self._stretcher = pylibrb.RubberBandStretcher(
            sample_rate, n_channels, self._options, 1.0, 1.0
        )
        self.latency_samples = max(self._worst_deficit(block_size, s) for s in (-12.0, 12.0))
        self.latency_samples += 256
        from ..engine.ring_buffer import AudioRingBuffer

        self._fifo = AudioRingBuffer(self.latency_samples + 4 * block_size + 16384, n_channels)
        self.short_samples = 0  # samples the FIFO could not give (never, with the margin)
        self._to_drop = 0
        self.reset()

    def _worst_deficit(self, block_size: int, semitones: float) -> int:
        stretcher = self._pylibrb.RubberBandStretcher(
            self.sample_rate, self.n_channels, self._options, 1.0, 2.0 ** (semitones / 12.0)
        )
        pad = int(stretcher.get_preferred_start_pad())
        stretcher.process(np.zeros((self.n_channels, pad), np.float32))
        given = -int(stretcher.get_start_delay())
        fed = worst = 0
        silence = np.zeros((self.n_channels, block_size), np.float32)
        for _ in range(max(64, 16 * 4096 // block_size)):
            stretcher.process(silence)
            fed += block_size
            available = int(stretcher.available())
            if available > 0:
                stretcher.retrieve(available)
                given += available
            worst = max(worst, fed - given)
        return worst

    def set_transpose(self, semitones: float) -> None:
        self.semitones = check_transpose(semitones)

    def reset(self) -> None:
        """Empty, primed with silence, the FIFO holding its ``latency_samples`` of zeros."""
        stretcher = self._stretcher
        stretcher.reset()
        self._applied = self.semitones
        stretcher.pitch_scale = 2.0 ** (self._applied / 12.0)
        stretcher.process(
            np.zeros((self.n_channels, int(stretcher.get_preferred_start_pad())), np.float32)
        )
        self._to_drop = int(stretcher.get_start_delay())
        self._fifo.reset()
        self._fifo.write_zeros(self.latency_samples)

    def process_into(self, block: np.ndarray, out: np.ndarray) -> None:
        """``block`` [shape=(n, n_channels)] in, the transposed stream's next ``n`` samples
        into ``out`` [shape=(n, n_channels)]."""
        if self.semitones != self._applied:
            self._applied = self.semitones
            self._stretcher.pitch_scale = 2.0 ** (self._applied / 12.0)
        self._stretcher.process(np.ascontiguousarray(block.T))
        available = int(self._stretcher.available())
        if available > 0:
            shifted = self._stretcher.retrieve(available).T
            if self._to_drop:
                dropped = min(self._to_drop, shifted.shape[0])
                self._to_drop -= dropped
                shifted = shifted[dropped:]
            self._fifo.write(np.ascontiguousarray(shifted))
        got = self._fifo.read_into(out)
        if got < out.shape[0]:
            out[got:].fill(0.0)
            self.short_samples += out.shape[0] - got
