"""PQMF filter bank: K cosine-modulated bands, decimated by K, near-perfect reconstruction.

Thread contract: ``design_pqmf`` is a pure function whose result is cached and read-only, so
any thread may call it (a processor calls it in ``prepare()``, never per block). A
``StreamingPqmfAnalysis`` or ``StreamingPqmfSynthesis`` belongs to one thread, the worker (or
whoever renders offline); it is not shared and takes no lock. Every array it touches per block
is allocated in ``__init__`` for ``max_block`` samples; ``process`` writes into those buffers
and returns a view of one, valid until the next call. The audio callback never calls into this
module.

The bank serves the ``cws`` family (Liu et al., "Channel-wise Subband Input for Better Voice
and Accompaniment Separation on High Resolution Music", 2020): the band signals are what the
network's subband STFT sees, and the synthesis bank rebuilds the full band from masked bands.
The design is Lin and Vaidyanathan's Kaiser-window method ("A Kaiser window approach for the
design of prototype filters of cosine modulated filterbanks", 1998): one windowed-sinc
prototype whose cutoff is tuned so that it is nearly a 2K-th band filter, cosine-modulated to
K analysis and K synthesis filters with phases that cancel the aliasing between neighbours.

Time axis and alignment, shared by the offline functions, the streaming classes and the torch
twin (``models/layers/pqmf.py``), with ``N = design.order`` and ``K = design.n_bands``:

- Analysis: band ``k`` at decimated index ``m`` is ``sum_n analysis[k, n] * x[m*K - n]``
  (``x`` is zero before sample 0), the causal filter's output taken at sample ``m*K``. It
  depends on input samples up to ``m*K`` only. Only whole blocks of K samples are analysed.
- Synthesis: ``x_hat[t] = sum_k sum_m bands[m, k] * synthesis[k, t - m*K]``, the textbook
  zero-stuffing then filtering, with the factor K that makes up for the decimation already in
  the synthesis filters. Output sample ``t`` depends on band samples with ``m*K <= t`` only.
- Together: ``x_hat[t] = x[t - N]`` up to the near-PR error (about -63 dB), so the bank's
  delay is exactly ``design.delay_samples = N`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.signal import windows

from .stft import SAMPLE_DTYPE

ALLOWED_N_BANDS = (2, 4, 8)


@dataclass(frozen=True, eq=False)
class PqmfDesign:
    """The filters of one PQMF bank.

    Attributes:
        n_bands: K, the number of bands and the decimation factor.
        order: N, the filters' order (``taps_per_band * n_bands``); filters have N + 1 taps.
        cutoff: the prototype lowpass's cutoff, in radians per sample (near ``pi / (2K)``).
        analysis: [shape=(n_bands, order + 1), float64, read-only], unit passband gain.
        synthesis: [shape=(n_bands, order + 1), float64, read-only], passband gain K (the
            decimation's loss is made up here, so synthesis is a plain sum of filtered bands).
    """

    n_bands: int
    order: int
    cutoff: float
    analysis: np.ndarray = field(repr=False)
    synthesis: np.ndarray = field(repr=False)

    @property
    def delay_samples(self) -> int:
        """Delay of analysis then synthesis, in full-band samples: two centre taps of N / 2."""
        return self.order


def design_pqmf(n_bands: int, taps_per_band: int = 16, kaiser_beta: float = 8.0) -> PqmfDesign:
    """The PQMF bank with ``n_bands`` bands, designed once per argument set and cached.

    Args:
        n_bands: K, one of 2, 4 or 8.
        taps_per_band: the order N is ``taps_per_band * n_bands``; 16 gives about 63 dB of
            reconstruction SNR and a delay of 16 K samples.
        kaiser_beta: the prototype window's shape; larger trades a wider transition band for
            lower stopband leakage (aliasing).

    Raises:
        ValueError: for arguments a bank cannot be built from, in one sentence.
    """
    if isinstance(n_bands, bool) or not isinstance(n_bands, int | np.integer):
        raise ValueError(f"n_bands must be 2, 4 or 8 (a power of two), got {n_bands!r}.")
    if n_bands not in ALLOWED_N_BANDS:
        raise ValueError(f"n_bands must be 2, 4 or 8 (a power of two), got {n_bands!r}.")
    if (
        isinstance(taps_per_band, bool)
        or not isinstance(taps_per_band, int | np.integer)
        or taps_per_band < 1
    ):
        raise ValueError(f"taps_per_band must be a positive integer, got {taps_per_band!r}.")
    if not np.isfinite(kaiser_beta) or kaiser_beta < 0:
        raise ValueError(f"kaiser_beta must be a finite number >= 0, got {kaiser_beta!r}.")
    # Normalised arguments, so that 4, np.int64(4) and 4.0 share one cache entry.
    return _design(int(n_bands), int(taps_per_band), float(kaiser_beta))


@lru_cache(maxsize=32)
def _design(n_bands: int, taps_per_band: int, kaiser_beta: float) -> PqmfDesign:
    order = taps_per_band * n_bands
    n = np.arange(order + 1, dtype=np.float64) - order / 2
    window = windows.kaiser(order + 1, kaiser_beta)

    def prototype(cutoff: float) -> np.ndarray:
        return cutoff / np.pi * np.sinc(cutoff * n / np.pi) * window

    # p convolved with its reverse is the (alias-free) distortion's prototype; where it is a
    # 2K-th band filter (zero at every 2K-th tap from the centre) the bank reconstructs
    # perfectly, so the cutoff minimises the largest of those taps.
    centre = order
    others = np.arange(centre % (2 * n_bands), 2 * order + 1, 2 * n_bands)
    others = others[others != centre]

    def worst_tap(cutoff: float) -> float:
        p = prototype(cutoff)
        q = np.convolve(p, p[::-1])
        return float(np.max(np.abs(q[others])) / q[centre])

    nominal = np.pi / (2 * n_bands)
    # The objective is a maximum of absolute values, with a sharp minimum near 1.12 x nominal
    # for the defaults; the bounds keep the search in that single valley.
    result = minimize_scalar(
        worst_tap, bounds=(0.5 * nominal, 1.5 * nominal), method="bounded", options={"xatol": 1e-12}
    )
    cutoff = float(result.x)
    p = prototype(cutoff)

    k = np.arange(n_bands, dtype=np.float64)[:, None]
    phase = (2 * k + 1) * nominal * n[None, :]
    # Alternating +-pi/4 phases make each band's alias cancel its neighbour's.
    offset = (-1.0) ** k * np.pi / 4
    analysis = 2.0 * p * np.cos(phase + offset)
    synthesis = 2.0 * p * np.cos(phase - offset)
    # Scale both so that the distortion sum_k h_k * g_k has its centre tap exactly 1; the
    # decimation divides by K, which the synthesis filters give back.
    distortion_centre = sum(np.convolve(analysis[i], synthesis[i])[order] for i in range(n_bands))
    scale = 1.0 / np.sqrt(distortion_centre)
    analysis *= scale
    synthesis *= scale * n_bands
    analysis.setflags(write=False)
    synthesis.setflags(write=False)
    return PqmfDesign(n_bands, order, cutoff, analysis, synthesis)


def _analysis_kernel(design: PqmfDesign) -> np.ndarray:
    """Reversed analysis filters, so that a window of the oldest-first signal dots with them.

    [shape=(order + 1, n_bands), float32]
    """
    return np.ascontiguousarray(design.analysis[:, ::-1].T, dtype=SAMPLE_DTYPE)


def _synthesis_taps(design: PqmfDesign) -> int:
    """Band samples that touch one output block of K samples: N / K + 1."""
    return design.order // design.n_bands + 1


def _synthesis_kernel(design: PqmfDesign) -> np.ndarray:
    """The synthesis filters in polyphase form, for a window of band samples, oldest first.

    Output sample ``m*K + r`` is ``sum_l sum_k bands[m - l, k] * synthesis[k, l*K + r]``; a
    window holds band samples ``m - L + 1 .. m``, so window position ``i`` is ``l = L - 1 - i``.

    [shape=(L * n_bands, n_bands), float32] with L from ``_synthesis_taps``; row ``i * n_bands
    + k``, column ``r``.
    """
    n_bands, n_taps = design.n_bands, _synthesis_taps(design)
    padded = np.zeros((n_bands, n_taps * n_bands))
    padded[:, : design.order + 1] = design.synthesis
    # (n_bands, L * K) -> (L, n_bands, K): tap l*K + r of band k at [l, k, r]
    phases = padded.reshape(n_bands, n_taps, n_bands).transpose(1, 0, 2)
    return np.ascontiguousarray(phases[::-1].reshape(n_taps * n_bands, n_bands), SAMPLE_DTYPE)


def _strided_windows(timeline: np.ndarray, width: int, step: int) -> np.ndarray:
    """Windows of ``width`` along the last axis, every ``step``: [shape=(..., n, width)]."""
    return np.lib.stride_tricks.sliding_window_view(timeline, width, axis=-1)[..., ::step, :]


def pqmf_analyze(signal: np.ndarray, design: PqmfDesign) -> np.ndarray:
    """Whole-signal analysis, equal to ``StreamingPqmfAnalysis`` fed block by block.

    Args:
        signal: [shape=(n_samples, n_channels), float32]

    Returns:
        [shape=(n_samples // K, n_bands, n_channels), float32], band sample ``m`` taken at
        input sample ``m*K`` (see the module's alignment).
    """
    n_bands, order = design.n_bands, design.order
    n_samples, n_channels = signal.shape
    n_sub = n_samples // n_bands
    if n_sub == 0:
        return np.zeros((0, n_bands, n_channels), dtype=SAMPLE_DTYPE)
    padded = np.zeros((n_channels, order + n_sub * n_bands), dtype=SAMPLE_DTYPE)
    padded[:, order:] = signal[: n_sub * n_bands].T
    # (n_channels, n_sub, order + 1): the N + 1 samples ending at m*K, oldest first
    frames = _strided_windows(padded, order + 1, n_bands)
    bands = np.matmul(frames, _analysis_kernel(design))
    # (n_channels, n_sub, n_bands) -> (n_sub, n_bands, n_channels)
    return np.ascontiguousarray(bands.transpose(1, 2, 0))


def pqmf_synthesize(bands: np.ndarray, design: PqmfDesign, n_samples: int) -> np.ndarray:
    """Whole-signal synthesis, equal to ``StreamingPqmfSynthesis`` fed block by block.

    Args:
        bands: [shape=(n_sub, n_bands, n_channels), float32]
        n_samples: output length; band samples beyond it are ignored, missing ones are zeros.

    Returns:
        [shape=(n_samples, n_channels), float32]; after ``pqmf_analyze`` it is the input
        delayed by ``design.delay_samples``.
    """
    n_bands, n_taps = design.n_bands, _synthesis_taps(design)
    n_sub_in, _, n_channels = bands.shape
    n_sub = -(-n_samples // n_bands)
    if n_sub == 0:
        return np.zeros((0, n_channels), dtype=SAMPLE_DTYPE)
    n_used = min(n_sub, n_sub_in)
    history = np.zeros((n_channels, n_taps - 1 + n_sub, n_bands), dtype=SAMPLE_DTYPE)
    # (n_sub, n_bands, n_channels) -> (n_channels, n_sub, n_bands)
    history[:, n_taps - 1 : n_taps - 1 + n_used] = bands[:n_used].transpose(2, 0, 1)
    # (n_channels, n_taps - 1 + n_sub, n_bands) -> (n_channels, n_sub, n_taps * n_bands):
    # the band samples m - L + 1 .. m, oldest first
    frames = _strided_windows(history.reshape(n_channels, -1), n_taps * n_bands, n_bands)
    blocks = np.matmul(frames, _synthesis_kernel(design))
    # (n_channels, n_sub, K) -> (n_sub * K, n_channels)
    signal = blocks.reshape(n_channels, n_sub * n_bands).T
    return np.ascontiguousarray(signal[:n_samples])


def _check_max_block(design: PqmfDesign, max_block: int) -> None:
    if max_block < design.n_bands or max_block % design.n_bands:
        raise ValueError(
            f"max_block must be a positive multiple of n_bands ({design.n_bands}), got {max_block}."
        )


class StreamingPqmfAnalysis:
    """Analysis, one block of whole multiples of K samples at a time.

    Keeps the newest N input samples as history, so that consecutive blocks give exactly what
    ``pqmf_analyze`` gives for the whole signal.

    Args:
        design: the bank.
        n_channels: audio channels analysed side by side.
        max_block: the largest block ``process`` accepts, in samples (a multiple of K).
        phase: which sample of each block of K a band sample is taken at: 0, the first, as
            ``pqmf_analyze`` does; ``K - 1``, the last, as the subband front end needs (its hops
            end ``K - 1`` samples before the full-band hop grid, ``front_end.py``).
    """

    def __init__(
        self, design: PqmfDesign, n_channels: int, max_block: int = 4096, phase: int = 0
    ) -> None:
        _check_max_block(design, max_block)
        if not 0 <= phase < design.n_bands:
            raise ValueError(f"phase must be in [0, {design.n_bands - 1}], got {phase}.")
        self.design = design
        self.n_channels = n_channels
        self.max_block = max_block
        order, n_bands = design.order, design.n_bands
        self._kernel = _analysis_kernel(design)
        # The newest N samples, then room for one block: a block's frames are one strided
        # view of this buffer, and the history moves back to the front after each block.
        self._signal = np.zeros((n_channels, order + max_block), dtype=SAMPLE_DTYPE)
        self._frames = _strided_windows(self._signal[:, phase:], order + 1, n_bands)
        max_sub = max_block // n_bands
        self._bands_by_channel = np.zeros((n_channels, max_sub, n_bands), dtype=SAMPLE_DTYPE)
        self._bands = np.zeros((max_sub, n_bands, n_channels), dtype=SAMPLE_DTYPE)

    def reset(self) -> None:
        """Forget all history, as if no sample had been seen."""
        self._signal.fill(0.0)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Append one block and return the band samples it completes.

        Args:
            block: [shape=(n_block, n_channels), float32] with ``n_block`` a multiple of K, at
                most ``max_block``.

        Returns:
            [shape=(n_block // K, n_bands, n_channels), float32], a view valid until the next
            call.
        """
        order, n_bands = self.design.order, self.design.n_bands
        n_block = block.shape[0]
        if n_block % n_bands or n_block > self.max_block:
            raise ValueError(
                f"blocks must be a multiple of n_bands ({n_bands}) samples and at most "
                f"max_block ({self.max_block}), got {n_block}."
            )
        n_sub = n_block // n_bands
        # (n_block, n_channels) -> (n_channels, n_block): each channel's timeline contiguous
        np.copyto(self._signal[:, order : order + n_block], block.T)
        by_channel = self._bands_by_channel[:, :n_sub]
        np.matmul(self._frames[:, :n_sub], self._kernel, out=by_channel)
        # (n_channels, n_sub, n_bands) -> (n_sub, n_bands, n_channels)
        np.copyto(self._bands[:n_sub], by_channel.transpose(1, 2, 0))
        # numpy copies overlapping slices as if through a temporary, so a block shorter than
        # N is safe here.
        self._signal[:, :order] = self._signal[:, n_block : n_block + order]
        return self._bands[:n_sub]


class StreamingPqmfSynthesis:
    """Synthesis, any number of band samples at a time.

    Keeps the newest N / K band samples, the ones whose filter tails still reach the next
    output block (the overlap-add tail, kept as its inputs), so that consecutive calls give
    exactly what ``pqmf_synthesize`` gives for the whole signal.

    Args:
        design: the bank.
        n_channels: audio channels synthesised side by side.
        max_block: the largest output block, in samples (a multiple of K); ``process``
            accepts at most ``max_block // K`` band samples.
    """

    def __init__(self, design: PqmfDesign, n_channels: int, max_block: int = 4096) -> None:
        _check_max_block(design, max_block)
        self.design = design
        self.n_channels = n_channels
        self.max_block = max_block
        n_bands, n_taps = design.n_bands, _synthesis_taps(design)
        max_sub = max_block // n_bands
        self._kernel = _synthesis_kernel(design)
        self._history = np.zeros((n_channels, n_taps - 1 + max_sub, n_bands), dtype=SAMPLE_DTYPE)
        # (n_channels, n_taps - 1 + max_sub, n_bands) -> (n_channels, max_sub, n_taps * n_bands)
        self._frames = _strided_windows(
            self._history.reshape(n_channels, -1), n_taps * n_bands, n_bands
        )
        self._blocks = np.zeros((n_channels, max_sub, n_bands), dtype=SAMPLE_DTYPE)
        self._signal = np.zeros((max_block, n_channels), dtype=SAMPLE_DTYPE)

    def reset(self) -> None:
        """Forget all band history, as if no band sample had been seen."""
        self._history.fill(0.0)

    def process(self, bands: np.ndarray) -> np.ndarray:
        """Append band samples and return the output block they complete.

        Args:
            bands: [shape=(n_sub, n_bands, n_channels), float32], ``n_sub * K`` at most
                ``max_block``.

        Returns:
            [shape=(n_sub * K, n_channels), float32], a view valid until the next call.
        """
        n_bands, n_taps = self.design.n_bands, _synthesis_taps(self.design)
        n_sub = bands.shape[0]
        if n_sub * n_bands > self.max_block:
            raise ValueError(
                f"at most {self.max_block // n_bands} band samples per call (max_block "
                f"{self.max_block}), got {n_sub}."
            )
        live = n_taps - 1
        # (n_sub, n_bands, n_channels) -> (n_channels, n_sub, n_bands)
        np.copyto(self._history[:, live : live + n_sub], bands.transpose(2, 0, 1))
        blocks = self._blocks[:, :n_sub]
        np.matmul(self._frames[:, :n_sub], self._kernel, out=blocks)
        # (n_channels, n_sub, K) -> (n_sub * K, n_channels): time first, as the rings want it
        n_block = n_sub * n_bands
        np.copyto(self._signal[:n_block], blocks.reshape(self.n_channels, n_block).T)
        self._history[:, :live] = self._history[:, n_sub : n_sub + live]
        return self._signal[:n_block]
