"""Streaming STFT and iSTFT (weighted overlap-add), and the offline transform they equal.

Thread contract: a ``StreamingStft`` or ``StreamingIstft`` belongs to one thread, the worker
(or whoever renders offline); it is not shared and takes no lock. Every array it touches per
hop is allocated in ``__init__``: ``analyze``/``synthesize`` write into preallocated buffers
(numpy 2's ``out=`` for the FFTs) and return views of them, valid until the next call. The
audio callback never calls into this module.

Time axis and alignment, shared by both paths:

- Frame ``m`` covers input samples ``[(m + 1) * hop - n_fft, (m + 1) * hop)``; samples before
  the first are zeros. Only full hops are analysed.
- The output of the synthesis has ``hop - 1`` leading zeros, then each frame's completed
  ``hop`` samples in order, so that output sample ``t`` is input sample
  ``t - preset.latency_samples`` under identity masks.

The offline functions ``stft``/``istft`` perform the same float32 operations in the same
order, so they equal the streaming path bit for bit (asserted in the tests), and offline
rendering is what a listener would have heard live.
"""

from __future__ import annotations

import numpy as np

from .presets import SpectralPreset

#: The one audio sample type of the project: float32 everywhere audio moves.
SAMPLE_DTYPE = np.dtype(np.float32)
SPECTRUM_DTYPE = np.complex64


def _window32(window: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(window, dtype=SAMPLE_DTYPE)


class StreamingStft:
    """Analysis, one hop at a time.

    Args:
        preset: the frame geometry.
        n_channels: audio channels analysed side by side.
    """

    def __init__(self, preset: SpectralPreset, n_channels: int) -> None:
        self.preset = preset
        self.n_channels = n_channels
        self._window = _window32(preset.analysis_window)
        n_fft = preset.n_fft
        # History of the newest n_fft samples per channel, in a buffer twice as long so that a
        # frame is always one contiguous slice and the move back to the start (once every
        # n_fft / hop hops) never overlaps itself.
        self._history = np.zeros((n_channels, 2 * n_fft), dtype=SAMPLE_DTYPE)
        self._end = n_fft
        self._windowed = np.zeros((n_channels, n_fft), dtype=SAMPLE_DTYPE)
        self._spectrum = np.zeros((n_channels, preset.n_bins), dtype=SPECTRUM_DTYPE)

    def reset(self) -> None:
        """Forget all history, as if no sample had been seen."""
        self._history.fill(0.0)
        self._end = self.preset.n_fft

    def analyze(self, hop_samples: np.ndarray) -> np.ndarray:
        """Append one hop of input and return the spectrum of the newest frame.

        Args:
            hop_samples: [shape=(hop, n_channels), float32]

        Returns:
            [shape=(n_channels, n_bins), complex64], a view valid until the next call.
        """
        n_fft, hop = self.preset.n_fft, self.preset.hop
        if self._end + hop > self._history.shape[1]:
            keep = n_fft - hop
            self._history[:, :keep] = self._history[:, self._end - keep : self._end]
            self._end = keep
        self._history[:, self._end : self._end + hop] = hop_samples.T
        self._end += hop
        np.multiply(
            self._history[:, self._end - n_fft : self._end], self._window, out=self._windowed
        )
        # numpy's stubs type FFT outputs as 64-bit; numpy 2 computes float32 natively.
        np.fft.rfft(self._windowed, axis=-1, out=self._spectrum)  # type: ignore[arg-type]
        return self._spectrum


class StreamingIstft:
    """Synthesis with overlap-add, one frame at a time, for any number of signals at once.

    Args:
        preset: the frame geometry.
        lead_shape: shape of the signals synthesised side by side, e.g. ``(n_stems, n_channels)``.
    """

    def __init__(self, preset: SpectralPreset, lead_shape: tuple[int, ...]) -> None:
        self.preset = preset
        self.lead_shape = tuple(lead_shape)
        n_signals = int(np.prod(self.lead_shape, dtype=np.int64))
        self._start = preset.synthesis_start
        support = preset.n_fft - self._start
        self._window = _window32(preset.synthesis_window[self._start :])
        self._frame = np.zeros((n_signals, preset.n_fft), dtype=SAMPLE_DTYPE)
        self._weighted = np.zeros((n_signals, support), dtype=SAMPLE_DTYPE)
        # Overlap-add accumulator, twice the support so that the hop read out is contiguous
        # and the move back to the start never overlaps itself. Beyond the live support it
        # holds zeros, so each frame adds onto zeros where it first lands.
        self._sums = np.zeros((n_signals, 2 * support), dtype=SAMPLE_DTYPE)
        self._head = 0
        self._hop_out = np.zeros((preset.hop, n_signals), dtype=SAMPLE_DTYPE)

    def reset(self) -> None:
        self._sums.fill(0.0)
        self._head = 0

    def synthesize(self, spectra: np.ndarray) -> np.ndarray:
        """Overlap-add one frame and return the hop of output it completes.

        Args:
            spectra: [shape=(*lead_shape, n_bins), complex64]

        Returns:
            [shape=(hop, *lead_shape), float32], a view valid until the next call.
        """
        preset = self.preset
        hop, support = preset.hop, self._weighted.shape[1]
        # (*lead_shape, n_bins) -> (n_signals, n_bins): one row per signal
        flat = spectra.reshape(-1, preset.n_bins)
        np.fft.irfft(flat, n=preset.n_fft, axis=-1, out=self._frame)  # type: ignore[arg-type]
        np.multiply(self._frame[:, self._start :], self._window, out=self._weighted)
        if self._head + support > self._sums.shape[1]:
            live = support - hop
            self._sums[:, :live] = self._sums[:, self._head : self._head + live]
            self._sums[:, live:] = 0.0
            self._head = 0
        region = self._sums[:, self._head : self._head + support]
        np.add(region, self._weighted, out=region)
        # (n_signals, hop) -> (hop, n_signals): time first, as the rings and devices want it
        np.copyto(self._hop_out, region[:, :hop].T)
        self._head += hop
        return self._hop_out.reshape((hop, *self.lead_shape))


def stft(signal: np.ndarray, preset: SpectralPreset) -> np.ndarray:
    """Whole-signal analysis, equal to feeding ``StreamingStft`` hop by hop.

    Args:
        signal: [shape=(n_samples, n_channels), float32]

    Returns:
        [shape=(n_frames, n_channels, n_bins), complex64] with ``n_frames = n_samples // hop``.
    """
    n_fft, hop = preset.n_fft, preset.hop
    n_samples, n_channels = signal.shape
    n_frames = n_samples // hop
    padded = np.zeros((n_channels, n_fft - hop + n_frames * hop), dtype=SAMPLE_DTYPE)
    padded[:, n_fft - hop :] = signal[: n_frames * hop].T
    # (n_channels, n_frames, n_fft) -> (n_frames, n_channels, n_fft): one frame per row group
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
    frames = frames.transpose(1, 0, 2)
    windowed = np.multiply(frames, _window32(preset.analysis_window))
    return np.fft.rfft(windowed, axis=-1)


def istft(spectra: np.ndarray, preset: SpectralPreset, n_samples: int) -> np.ndarray:
    """Whole-signal synthesis, equal to feeding ``StreamingIstft`` frame by frame.

    Args:
        spectra: [shape=(n_frames, *lead_shape, n_bins), complex64]
        n_samples: output length; frames beyond it are ignored, missing ones give zeros.

    Returns:
        [shape=(n_samples, *lead_shape), float32], on the streaming timeline: input sample
        ``t`` of an identity transform comes out at ``t + preset.latency_samples``.
    """
    n_fft, hop = preset.n_fft, preset.hop
    start = preset.synthesis_start
    support = n_fft - start
    n_frames = spectra.shape[0]
    lead_shape = spectra.shape[1:-1]
    n_parts = -(-support // hop)
    # (n_frames, *lead, n_bins) -> (n_frames, n_signals, n_bins)
    flat = spectra.reshape(n_frames, -1, preset.n_bins)
    frames = np.fft.irfft(flat, n=n_fft, axis=-1)
    weighted = np.zeros((n_frames, flat.shape[1], n_parts * hop), dtype=SAMPLE_DTYPE)
    np.multiply(
        frames[..., start:], _window32(preset.synthesis_window[start:]), out=weighted[..., :support]
    )
    # (n_frames, n_signals, n_parts * hop) -> (n_frames, n_signals, n_parts, hop)
    parts = weighted.reshape(n_frames, flat.shape[1], n_parts, hop)
    completed = np.zeros((n_frames, flat.shape[1], hop), dtype=SAMPLE_DTYPE)
    # Oldest frame first, as the streaming accumulator receives them, so sums round alike.
    for part in range(n_parts - 1, -1, -1):
        completed[part:] += parts[: n_frames - part, :, part]
    # (n_frames, n_signals, hop) -> (n_frames * hop, n_signals)
    timeline = completed.transpose(0, 2, 1).reshape(n_frames * hop, -1)
    out = np.zeros((n_samples, timeline.shape[1]), dtype=SAMPLE_DTYPE)
    n_valid = max(0, min(n_samples - (hop - 1), timeline.shape[0]))
    out[hop - 1 : hop - 1 + n_valid] = timeline[:n_valid]
    return out.reshape((n_samples, *lead_shape))
