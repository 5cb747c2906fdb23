"""The Python API's objects: ``separate(audio, sample_rate)`` and the plugin-shaped ``Separator``.

Thread contract: one thread owns a ``Separator`` and calls ``prepare``, ``process``, ``flush``
and ``reset``, like the ``StreamProcessor`` inside it; nothing here is shared or locked. This is
the caller's surface, not the audio callback's: ``process`` returns new arrays the caller owns
(``process_into`` writes into the caller's and keeps no new array when no resampling is needed).

Conventions (README.md, "Conventions"), the same everywhere in the public surface: audio is
samples first, ``(n_samples, n_channels)`` float32, as soundfile and PortAudio have it; stems
are a mapping from stem name to such an array (``separate``), or a leading axis in the order of
``Separator.stems``: ``(n_stems, n_samples, n_channels)`` (``process``).

Rates: a model runs at its own rate (44.1 kHz for the bundled ones). Audio at any other rate is
resampled with soxr (HQ) to the model's rate and the stems back, inside, so the caller never
sees the model's rate. Offline (``separate``) the whole signal is resampled at once and the
stems line up with the input sample for sample; what the resampling round trip loses (a 48 kHz
song's band above 22.05 kHz, which a 44.1 kHz model never hears) is added to the ``other`` stem
(the last stem when a model has no ``other``), so the stems always sum to the input. Streaming
(``Separator``), soxr's streaming resamplers hold samples back in bursts; the output is padded
by the most they hold back, measured in ``prepare``, and ``latency_samples`` counts it.
"""

from __future__ import annotations

import os

import numpy as np
import soxr

from ..dsp.presets import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ..dsp.stft import SAMPLE_DTYPE
from ..engine.processor import StreamProcessor
from ..engine.ring_buffer import AudioRingBuffer
from ..errors import UserError
from .catalog import resolve_model
from .onnx_model import OnnxHopModel
from .separation import separate_signal

__all__ = ["Separator", "separate"]

#: The stem that takes what the model's band cannot hold (see the module's docstring).
RESIDUAL_STEM = "other"
_RESAMPLE_QUALITY = "HQ"


def _check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` as ``(n_samples, n_channels)`` float32, or one sentence saying what is wrong."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise UserError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}.")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise UserError(
            f"sample_rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got "
            f"{sample_rate}."
        )
    array = np.asarray(audio)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] not in (1, 2):
        raise UserError(
            f"audio must be (n_samples,) or (n_samples, n_channels) with 1 or 2 channels, "
            f"samples first; got shape {np.shape(audio)}."
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"audio must be floating point (-1 to 1), got {array.dtype}.")
    array = np.ascontiguousarray(array, dtype=SAMPLE_DTYPE)
    if not np.isfinite(array).all():
        raise UserError("audio holds NaN or infinite samples; nothing was separated.")
    return array


def separate(
    audio: np.ndarray,
    sample_rate: int,
    model: str | os.PathLike[str] | None = None,
    *,
    provider: str = "auto",
    threads: int = 1,
    postfilter: bool = False,
) -> dict[str, np.ndarray]:
    """One array per stem for a whole signal, lined up with it sample for sample.

    Args:
        audio: [shape=(n_samples, n_channels) or (n_samples,), float] at ``sample_rate``; mono
            or stereo.
        sample_rate: the audio's rate in Hz (any rate from 8 kHz to 384 kHz).
        model: a model name that ``livestems models`` lists, a model file, or ``None`` for
            the default bundled model.
        provider: onnxruntime execution provider: ``auto``, ``cpu`` or ``cuda``.
        threads: onnxruntime CPU threads.
        postfilter: sharpen the masks with the single-frame Wiener post-filter.

    Returns:
        ``{stem: [shape=audio's shape, float32]}`` in the model's stem order; the stems sum to
        the input (to float32 rounding).
    """
    separator = Separator.load(model, provider=provider, threads=threads, postfilter=postfilter)
    return separator.separate(audio, sample_rate)


class Separator:
    """A model behind a plugin's surface: ``prepare``, ``process`` any block, ``reset``.

    Build one with ``Separator.load(name_or_file)``. Offline, ``separate(audio, rate)``;
    streaming, ``prepare(rate, max_block)`` then ``process(block)`` for blocks of any length:
    the stems come out ``latency_samples`` later, and ``flush()`` returns what is still owed.
    """

    def __init__(self, model: OnnxHopModel, postfilter: bool = False) -> None:
        self.model = model
        self.postfilter = postfilter
        self.stems: tuple[str, ...] = tuple(model.stems)
        self._processor = StreamProcessor.for_model(model, postfilter)
        self.sample_rate = 0
        self.n_channels = 0
        self.max_block = 0
        self._pad = self._align = 0

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        provider: str = "auto",
        threads: int = 1,
        postfilter: bool = False,
    ) -> Separator:
        """A model by name (``livestems models``), by file, or the bundled default for a
        recording (``postfilter``: with the single-frame Wiener post-filter). Live input wants a
        model a few milliseconds behind: name it (``catalog.DEFAULT_LIVE_INPUT_MODEL``)."""
        name = None if model is None else str(model)
        return cls(resolve_model(name, provider, threads), postfilter)

    @property
    def model_sample_rate(self) -> int:
        return self.model.metadata.sample_rate

    # ------------------------------------------------------------------ offline

    def separate(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """The stems of a whole signal; see the module-level ``separate``."""
        signal = _check_audio(audio, sample_rate)
        n_samples, n_channels = signal.shape
        rate = self.model_sample_rate
        at_model = signal if sample_rate == rate else _resample(signal, sample_rate, rate)
        if self.model.metadata.n_channels == 2 and n_channels == 1:
            at_model = np.repeat(at_model, 2, axis=1)
        # (n_stems, n, the model's channels)
        stems = separate_signal(self.model, at_model, postfilter=self.postfilter)
        if stems.shape[2] != n_channels:  # a mono song through a stereo model
            stems = stems.mean(axis=2, keepdims=True)
        out = {}
        for index, name in enumerate(self.stems):
            stem = np.ascontiguousarray(stems[index])
            if sample_rate != rate:
                stem = _fit(_resample(stem, rate, sample_rate), n_samples)
            out[name] = stem
        residual_stem = RESIDUAL_STEM if RESIDUAL_STEM in out else self.stems[-1]
        out[residual_stem] += signal - sum(out.values())
        return out

    # ---------------------------------------------------------------- streaming

    def prepare(self, sample_rate: int, max_block: int = 512, n_channels: int = 2) -> None:
        """Allocate for blocks of up to ``max_block`` samples at ``sample_rate``, then reset."""
        _check_audio(np.zeros((0, n_channels), SAMPLE_DTYPE), sample_rate)
        if isinstance(max_block, bool) or not isinstance(max_block, int) or max_block < 1:
            raise UserError(f"max_block must be a whole number of at least 1, got {max_block!r}.")
        if n_channels != self.model.metadata.n_channels:
            raise UserError(
                f"{self.model.path.name} separates {self.model.metadata.n_channels}-channel "
                f"audio; prepare(..., n_channels={n_channels}) cannot stream through it."
            )
        self.sample_rate, self.max_block, self.n_channels = sample_rate, max_block, n_channels
        rate = self.model_sample_rate
        n_stems = len(self.stems)
        if sample_rate == rate:
            self._pad = self._align = 0
            self._processor.prepare(rate, max_block)
        else:
            # The most the two streaming resamplers hold back, for this block size, in caller
            # samples: the output FIFO starts with that many zeros so a block never waits.
            self._pad = _measure_holdback(sample_rate, rate, n_channels, n_stems, max_block)
            self._align = _alignment_delay(self._processor.latency_samples, sample_rate, rate)
            model_block = int(np.ceil(max_block * rate / sample_rate)) + 64
            self._processor.prepare(rate, model_block)
            self._fifo = AudioRingBuffer(4 * (self._pad + max_block) + 4096, n_stems * n_channels)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Samples at the caller's rate between a sample in and its stems out (rounded)."""
        self._require_prepared()
        model_latency = self._processor.latency_samples + self._align
        return self._pad + round(model_latency * self.sample_rate / self.model_sample_rate)

    def reset(self) -> None:
        """Forget the past: model state, partial hops, resampler history, the output owed."""
        self._require_prepared()
        self._processor.reset()
        if self._pad:
            rate, n_stems = self.model_sample_rate, len(self.stems)
            self._down = _stream(self.sample_rate, rate, self.n_channels)
            self._up = _stream(rate, self.sample_rate, n_stems * self.n_channels)
            self._fifo.reset()
            self._fifo.write_zeros(self._pad)
            if self._align:
                # silent stems before the model's first output: the whole delay becomes a
                # whole number of caller samples (delayed after the model, not before it, so
                # the frames fall where they fall offline)
                silence = np.zeros((self._align, n_stems * self.n_channels), SAMPLE_DTYPE)
                self._fifo.write(self._up.resample_chunk(silence))

    def process(self, block: np.ndarray) -> np.ndarray:
        """Stems for a block of any length, ``latency_samples`` late.

        Args:
            block: [shape=(n_samples, n_channels), float32] at the prepared rate.

        Returns:
            [shape=(n_stems, n_samples, n_channels), float32], a new array the caller owns.
        """
        n_samples = np.shape(block)[0]
        flat = np.empty((n_samples, len(self.stems) * self.n_channels), SAMPLE_DTYPE)
        self.process_into(block, flat)
        return flat.reshape(n_samples, len(self.stems), self.n_channels).transpose(1, 0, 2).copy()

    def process_into(self, block: np.ndarray, out: np.ndarray) -> None:
        """Like ``process``, into ``out`` [shape=(n_samples, n_stems * n_channels)]: the real-time
        layout, each sample's stems side by side (stem-major). At the model's rate nothing is
        allocated for blocks up to ``max_block``."""
        self._require_prepared()
        block = np.asarray(block, dtype=SAMPLE_DTYPE)
        if block.ndim != 2 or block.shape[1] != self.n_channels:
            raise UserError(
                f"A block must be (n_samples, {self.n_channels}) float32, samples first; got "
                f"shape {block.shape}."
            )
        if not self._pad:
            self._processor.process_into(block, out)
            return
        at_model = self._down.resample_chunk(block)
        stems = np.empty((at_model.shape[0], out.shape[1]), SAMPLE_DTYPE)
        self._processor.process_into(np.ascontiguousarray(at_model), stems)
        back = self._up.resample_chunk(stems)
        if self._fifo.space() < back.shape[0]:
            raise UserError(
                "The resampling buffer overflowed; call prepare() with a larger max_block."
            )
        self._fifo.write(back)
        if self._fifo.fill() < block.shape[0]:
            raise UserError(
                "The resamplers held back more than prepare() measured; call prepare() with a "
                "larger max_block."
            )
        self._fifo.read_into(out[: block.shape[0]])

    def flush(self) -> np.ndarray:
        """The ``latency_samples`` of stems still owed for what was processed, as ``process``
        returns them (zeros go in behind the signal); ``reset()`` before a new stream."""
        return self.process(np.zeros((self.latency_samples, self.n_channels), SAMPLE_DTYPE))

    def _require_prepared(self) -> None:
        if not self.sample_rate:
            raise UserError("Call prepare(sample_rate, max_block) before streaming.")


def _resample(signal: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    return soxr.resample(signal, from_rate, to_rate, quality=_RESAMPLE_QUALITY).astype(
        SAMPLE_DTYPE, copy=False
    )


def _stream(from_rate: int, to_rate: int, n_channels: int) -> soxr.ResampleStream:
    return soxr.ResampleStream(
        from_rate, to_rate, n_channels, dtype="float32", quality=_RESAMPLE_QUALITY
    )


def _fit(signal: np.ndarray, n_samples: int) -> np.ndarray:
    """``signal`` cut or zero-padded to ``n_samples`` (resampling rounds the length)."""
    if signal.shape[0] >= n_samples:
        return np.ascontiguousarray(signal[:n_samples])
    pad = np.zeros((n_samples - signal.shape[0], signal.shape[1]), SAMPLE_DTYPE)
    return np.concatenate([signal, pad])


#: The longest extra delay (model samples) spent to make the latency whole at the caller's rate.
_MAX_ALIGNMENT_DELAY = 1024


def _alignment_delay(latency: int, rate: int, model_rate: int) -> int:
    """Model samples of extra delay that make ``latency`` a whole number of samples at ``rate``:
    48 kHz against 44.1 kHz needs a multiple of 147 model samples. A stem then lines up with
    its input exactly ``latency_samples`` later, not to the nearest sample (which smears the
    highs when stems are summed with the dry signal). Rates that would need more than
    ``_MAX_ALIGNMENT_DELAY`` get none and round."""
    from math import gcd

    period = model_rate // gcd(rate, model_rate)
    delay = -latency % period
    return delay if delay <= _MAX_ALIGNMENT_DELAY else 0


def _measure_holdback(
    rate: int, model_rate: int, n_channels: int, n_stems: int, max_block: int
) -> int:
    """The largest deficit of resampled-and-back samples behind the samples given, over block
    patterns a caller makes (every block ``max_block``, single samples, and a seeded mix),
    plus one block of margin: soxr releases its output in bursts whose size depends on the
    rates and the quality, not on the audio, so zeros measure it."""
    rng = np.random.default_rng(0)
    patterns = [
        [max_block] * 64,
        [1] * 4096,
        list(rng.integers(1, max_block + 1, 256)),
    ]
    worst = 0
    for pattern in patterns:
        down = _stream(rate, model_rate, n_channels)
        up = _stream(model_rate, rate, n_stems * n_channels)
        given = produced = 0
        for n in pattern:
            at_model = down.resample_chunk(np.zeros((int(n), n_channels), SAMPLE_DTYPE))
            back = up.resample_chunk(
                np.zeros((at_model.shape[0], n_stems * n_channels), SAMPLE_DTYPE)
            )
            given += int(n)
            produced += back.shape[0]
            worst = max(worst, given - produced)
    return worst + max_block
