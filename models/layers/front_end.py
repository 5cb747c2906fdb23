"""Spectral front ends: waveform to the spectra a network sees, and stem spectra back.

Two kinds, one interface, so that a family only states which one it uses:

- ``StftFrontEnd``: the preset's STFT on the full band (the ``lstm`` family).
- ``SubbandFrontEnd``: a PQMF bank splits the signal into K decimated bands, and each band's
  STFT (the preset's geometry divided by K) is stacked as channels (the ``cws`` family). A
  subband frame still spans one full-band hop, so the network takes one step per hop either way.

Spectra are ``[shape=(batch, n_frames, n_feature_channels, n_bins)]``, complex; for the subband
front end the feature channels are band-major (``k * n_channels + c``). ``latency_samples`` is
the delay of the whole analysis-synthesis path, in full-band samples; the tests measure it with
an impulse.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...realtime.dsp.presets import SpectralPreset
from .pqmf import Pqmf
from .stft import TorchStft


class StftFrontEnd(nn.Module):
    def __init__(self, preset: SpectralPreset, n_channels: int) -> None:
        super().__init__()
        self.preset = preset
        self.n_channels = n_channels
        self.n_feature_channels = n_channels
        self.n_bins = preset.n_bins
        self.hop = preset.hop
        self.latency_samples = preset.latency_samples
        self.transform = TorchStft(preset)

    def analyze(self, waveform: torch.Tensor) -> torch.Tensor:
        """[shape=(batch, n_channels, n_samples)] -> [shape=(batch, n_frames, n_channels,
        n_bins)]"""
        return self.transform.stft(waveform)

    def synthesize(self, stem_spectra: torch.Tensor, n_samples: int) -> torch.Tensor:
        """[shape=(batch, n_frames, n_stems, n_channels, n_bins)] -> [shape=(batch, n_stems,
        n_channels, n_samples)]"""
        return self.transform.istft(stem_spectra, n_samples)

    def bin_frequencies(self) -> np.ndarray:
        """[shape=(n_feature_channels, n_bins)]: the frequency in Hz each bin stands for."""
        bins = np.arange(self.n_bins) * self.preset.sample_rate / self.preset.n_fft
        return np.tile(bins, (self.n_feature_channels, 1))


class SubbandFrontEnd(nn.Module):
    def __init__(self, preset: SpectralPreset, n_channels: int, n_bands: int) -> None:
        super().__init__()
        self.preset = preset
        self.n_channels = n_channels
        self.n_bands = n_bands
        self.subband_preset = preset.subband(n_bands)
        self.n_feature_channels = n_bands * n_channels
        self.n_bins = self.subband_preset.n_bins
        self.hop = preset.hop
        self.pqmf = Pqmf(n_bands)
        self.transform = TorchStft(self.subband_preset)
        self.latency_samples = self.pqmf.delay_samples + n_bands * (
            self.subband_preset.latency_samples
        )

    def analyze(self, waveform: torch.Tensor) -> torch.Tensor:
        """[shape=(batch, n_channels, n_samples)] -> [shape=(batch, n_frames, n_bands *
        n_channels, n_bins)]"""
        return self.transform.stft(self.pqmf.analysis(waveform))

    def synthesize(self, stem_spectra: torch.Tensor, n_samples: int) -> torch.Tensor:
        """[shape=(batch, n_frames, n_stems, n_bands * n_channels, n_bins)] -> [shape=(batch,
        n_stems, n_channels, n_samples)]"""
        batch, _, n_stems = stem_spectra.shape[:3]
        n_subband_samples = -(-n_samples // self.n_bands)
        bands = self.transform.istft(stem_spectra, n_subband_samples)
        # (batch, n_stems, bands x channels, time) -> (batch * n_stems, bands x channels, time)
        signals = self.pqmf.synthesis(bands.flatten(0, 1), n_subband_samples * self.n_bands)
        # (batch * n_stems, n_channels, time) -> (batch, n_stems, n_channels, time)
        return signals.unflatten(0, (batch, n_stems))[..., :n_samples]

    def bin_frequencies(self) -> np.ndarray:
        """[shape=(n_feature_channels, n_bins)]: the full-band frequency in Hz each subband bin
        stands for. Band k covers k to k + 1 times a band's width; decimation mirrors the odd
        bands, so their bins count down from the band's top."""
        band_width = self.preset.sample_rate / (2 * self.n_bands)
        local = np.arange(self.n_bins) * self.subband_preset.sample_rate / self.subband_preset.n_fft
        rows = []
        for band in range(self.n_bands):
            frequencies = band * band_width + (band_width - local if band % 2 else local)
            rows += [np.clip(frequencies, 0.0, None)] * self.n_channels
        return np.stack(rows)


FrontEnd = StftFrontEnd | SubbandFrontEnd
