"""Front ends: how the stream processor turns hops of audio into the spectra a model sees, and
stem spectra back into hops of audio (the torch twins are in ``models/layers/front_end.py``).

Thread contract: a front end (``StftFrontEnd``, ``SubbandFrontEnd``) is frozen configuration,
safe to share between threads; its windows and filters are computed once and cached. The
streaming objects it makes (``streaming_analysis()``, ``streaming_synthesis()``) belong to one
thread, the one that owns the processor (the engine's worker, or whoever renders offline), and
take no lock. Every array they touch per hop is allocated when they are made, in the processor's
``prepare()``; ``analyze``/``synthesize`` write into those buffers and return views of them,
valid until the next call. The audio callback never calls into this module.

Two paths, one interface, mirroring the torch front ends of ``models/layers/front_end.py``:

- ``StftFrontEnd``: the preset's STFT on the full band (the ``lstm`` family). Spectra are
  ``[shape=(n_channels, n_bins)]``.
- ``SubbandFrontEnd``: a PQMF bank (``pqmf.py``) splits the audio into K decimated bands, and each
  band's STFT uses ``preset.subband(K)`` (hop, window and synthesis lengths divided by K), so a
  subband frame still spans one full-band hop and the model takes one step per hop. The bands
  are stacked as feature channels, band-major (``k * n_channels + c``): spectra are
  ``[shape=(K * n_channels, n_bins_sub)]`` (the ``cws`` family). Synthesis runs the subband
  iSTFT per stem, then the PQMF synthesis rebuilds each stem at the full rate.

Timeline. Each path states ``frame_lead``: how many samples before the end of its full-band
hop a frame's input is complete. For the STFT it is 0: frame ``m`` needs input samples up to
``(m + 1) * hop - 1``. For the subband path it is ``K - 1``: band sample ``j`` is the analysis
filters' output at input sample ``j * K`` (``pqmf.py``), so frame ``m``, whose newest band
sample is ``(m + 1) * hop / K - 1``, needs input samples up to ``(m + 1) * hop - K`` only. The
processor hands ``analyze`` hops that end exactly there (its first hop is short by
``frame_lead`` samples), so a subband frame is not held back K - 1 samples for input it does
not use, and the streaming path equals the torch front end, whose delay is the PQMF's plus K
times the subband preset's. Each ``synthesize`` returns the ``hop`` samples that the frame
completes; in the processor's output they come ``hop - 1 - frame_lead`` samples after the frame.
``latency_samples`` is the delay of the whole path in full-band samples;
``tests/realtime/test_subband_processor.py`` measures it with an impulse.

The offline methods ``analyze``/``synthesize`` of a path transform a whole signal on that same
timeline: equal to the streaming objects bit for bit for the STFT, and to float32 rounding
(about 1e-7 relative) for the subband path, whose streaming and offline filter banks sum in a
different order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from .pqmf import (
    PqmfDesign,
    StreamingPqmfAnalysis,
    StreamingPqmfSynthesis,
    design_pqmf,
    pqmf_analyze,
    pqmf_synthesize,
)
from .presets import SpectralPreset
from .stft import SAMPLE_DTYPE, StreamingIstft, StreamingStft, istft, stft


class HopAnalysis(Protocol):
    def reset(self) -> None:
        """Forget all history, as if no sample had been seen."""

    def analyze(self, hop_samples: np.ndarray) -> np.ndarray:
        """[shape=(hop, n_channels), float32] -> [shape=(n_feature_channels, n_bins),
        complex64], a view valid until the next call."""
        ...


class HopSynthesis(Protocol):
    def reset(self) -> None:
        """Forget all overlap-add and filter history."""

    def synthesize(self, stem_spectra: np.ndarray) -> np.ndarray:
        """[shape=(n_stems, n_feature_channels, n_bins), complex64] -> [shape=(hop, n_stems,
        n_channels), float32], a view valid until the next call."""
        ...


class FrontEnd(Protocol):
    """What the processor needs of a front end: its geometry, its delay, streaming objects and
    the offline transform they equal."""

    @property
    def preset(self) -> SpectralPreset:
        """The full-band frame geometry; its ``hop`` is the samples per model step."""
        ...

    @property
    def n_channels(self) -> int: ...

    @property
    def n_feature_channels(self) -> int: ...

    @property
    def n_bins(self) -> int: ...

    @property
    def latency_samples(self) -> int: ...

    @property
    def frame_lead(self) -> int: ...

    def streaming_analysis(self) -> HopAnalysis: ...

    def streaming_synthesis(self, n_stems: int) -> HopSynthesis: ...

    def analyze(self, signal: np.ndarray) -> np.ndarray:
        """[shape=(n_samples, n_channels), float32] -> [shape=(n_frames, n_feature_channels,
        n_bins), complex64]: the frames the streaming analysis gives for that signal."""
        ...

    def synthesize(self, stem_spectra: np.ndarray, n_samples: int) -> np.ndarray:
        """[shape=(n_frames, n_stems, n_feature_channels, n_bins), complex64] ->
        [shape=(n_samples, n_stems, n_channels), float32], as the processor outputs it."""
        ...


@dataclass(frozen=True)
class StftFrontEnd:
    """The preset's STFT on the full band.

    Args:
        preset: the frame geometry.
        n_channels: audio channels (2: stereo).
    """

    preset: SpectralPreset
    n_channels: int = 2

    @property
    def n_feature_channels(self) -> int:
        return self.n_channels

    @property
    def n_bins(self) -> int:
        return self.preset.n_bins

    @property
    def latency_samples(self) -> int:
        return self.preset.latency_samples

    @property
    def frame_lead(self) -> int:
        return 0

    def streaming_analysis(self) -> StreamingStft:
        return StreamingStft(self.preset, self.n_channels)

    def streaming_synthesis(self, n_stems: int) -> StreamingIstft:
        return StreamingIstft(self.preset, (n_stems, self.n_channels))

    def analyze(self, signal: np.ndarray) -> np.ndarray:
        return stft(signal, self.preset)

    def synthesize(self, stem_spectra: np.ndarray, n_samples: int) -> np.ndarray:
        return istft(stem_spectra, self.preset, n_samples)


@dataclass(frozen=True)
class SubbandFrontEnd:
    """A PQMF bank of K bands, each band's STFT stacked as feature channels, band-major.

    Args:
        preset: the full-band frame geometry; each band uses ``preset.subband(n_bands)``.
        n_channels: audio channels (2: stereo).
        n_bands: K, one of 2, 4 or 8; must divide the preset's hop and window lengths.
        taps_per_band, kaiser_beta: the bank's design (``design_pqmf``).
    """

    preset: SpectralPreset
    n_channels: int = 2
    n_bands: int = 4
    taps_per_band: int = 16
    kaiser_beta: float = 8.0

    def __post_init__(self) -> None:
        # Fail at construction, in one sentence, rather than in prepare().
        _ = self.design, self.subband_preset

    @cached_property
    def design(self) -> PqmfDesign:
        return design_pqmf(self.n_bands, self.taps_per_band, self.kaiser_beta)

    @cached_property
    def subband_preset(self) -> SpectralPreset:
        return self.preset.subband(self.n_bands)

    @property
    def n_feature_channels(self) -> int:
        return self.n_bands * self.n_channels

    @property
    def n_bins(self) -> int:
        return self.subband_preset.n_bins

    @property
    def latency_samples(self) -> int:
        return self.design.delay_samples + self.n_bands * self.subband_preset.latency_samples

    @property
    def frame_lead(self) -> int:
        return self.n_bands - 1

    def streaming_analysis(self) -> StreamingSubbandAnalysis:
        return StreamingSubbandAnalysis(self)

    def streaming_synthesis(self, n_stems: int) -> StreamingSubbandSynthesis:
        return StreamingSubbandSynthesis(self, n_stems)

    def analyze(self, signal: np.ndarray) -> np.ndarray:
        n_samples, n_channels = signal.shape
        # Band sample j needs input up to j * K only: K - 1 trailing zeros let the offline
        # bank give every band sample the stream has by the signal's end, and change none.
        padded = np.zeros((n_samples + self.frame_lead, n_channels), dtype=SAMPLE_DTYPE)
        padded[:n_samples] = signal
        bands = pqmf_analyze(padded, self.design)
        # (n_sub, n_bands, n_channels) -> (n_sub, n_bands * n_channels): band-major channels
        return stft(bands.reshape(bands.shape[0], -1), self.subband_preset)

    def synthesize(self, stem_spectra: np.ndarray, n_samples: int) -> np.ndarray:
        n_bands, n_channels = self.n_bands, self.n_channels
        n_stems = stem_spectra.shape[1]
        n_sub = -(-n_samples // n_bands)
        # The subband iSTFT puts hop / K - 1 band samples of silence first, which the bank
        # turns into the processor's hop - K samples of output pre-fill.
        bands = istft(stem_spectra, self.subband_preset, n_sub)
        # (n_sub, n_stems, n_bands * n_channels) -> (n_sub, n_bands, n_stems * n_channels):
        # each stem's channels become signals of one bank
        bands = bands.reshape(n_sub, n_stems, n_bands, n_channels).transpose(0, 2, 1, 3)
        signals = pqmf_synthesize(bands.reshape(n_sub, n_bands, -1), self.design, n_samples)
        # (n_samples, n_stems * n_channels) -> (n_samples, n_stems, n_channels)
        return signals.reshape(n_samples, n_stems, n_channels)


class StreamingSubbandAnalysis:
    """PQMF analysis and the subband STFT, one full-band hop at a time.

    The hops it gets end ``K - 1`` samples before the full-band hop grid (the processor's
    ``frame_lead``), so the band samples a frame needs are the filters' outputs at the *last*
    sample of each block of K: ``StreamingPqmfAnalysis`` at phase ``K - 1``.
    """

    def __init__(self, path: SubbandFrontEnd) -> None:
        self.path = path
        n_bands, hop = path.n_bands, path.preset.hop
        self._bank = StreamingPqmfAnalysis(path.design, path.n_channels, hop, phase=n_bands - 1)
        self._stft = StreamingStft(path.subband_preset, path.n_feature_channels)

    def reset(self) -> None:
        self._bank.reset()
        self._stft.reset()

    def analyze(self, hop_samples: np.ndarray) -> np.ndarray:
        bands = self._bank.process(hop_samples)
        # (n_sub, n_bands, n_channels) -> (n_sub, n_bands * n_channels): band-major channels
        return self._stft.analyze(bands.reshape(bands.shape[0], -1))


class StreamingSubbandSynthesis:
    """The subband iSTFT per stem, then PQMF synthesis, one frame (one full-band hop) at a time.

    One synthesis bank runs every stem's channels side by side, as ``n_stems * n_channels``
    signals.
    """

    def __init__(self, path: SubbandFrontEnd, n_stems: int) -> None:
        self.path = path
        self.n_stems = n_stems
        hop, n_bands, n_channels = path.preset.hop, path.n_bands, path.n_channels
        self._istft = StreamingIstft(path.subband_preset, (n_stems, path.n_feature_channels))
        self._bands = np.zeros((hop // n_bands, n_bands, n_stems, n_channels), SAMPLE_DTYPE)
        self._pqmf = StreamingPqmfSynthesis(path.design, n_stems * n_channels, max_block=hop)

    def reset(self) -> None:
        self._istft.reset()
        self._pqmf.reset()

    def synthesize(self, stem_spectra: np.ndarray) -> np.ndarray:
        n_bands, n_channels = self.path.n_bands, self.path.n_channels
        band_hop = self._istft.synthesize(stem_spectra)
        n_sub = band_hop.shape[0]
        # (n_sub, n_stems, n_bands * n_channels) -> (n_sub, n_bands, n_stems, n_channels)
        by_stem = band_hop.reshape(n_sub, self.n_stems, n_bands, n_channels)
        np.copyto(self._bands, by_stem.transpose(0, 2, 1, 3))
        signals = self._pqmf.process(self._bands.reshape(n_sub, n_bands, -1))
        # (hop, n_stems * n_channels) -> (hop, n_stems, n_channels)
        return signals.reshape(signals.shape[0], self.n_stems, n_channels)
