"""The torch twin of ``realtime/dsp/stft.py``: the same windows, framing and timeline,
differentiable.

Training computes losses on these spectra, and the models see exactly the frames the real-time
engine will give them: frame ``m`` covers input samples ``[(m + 1) * hop - n_fft, (m + 1) * hop)``
(zeros before the start), and synthesis puts ``hop - 1`` zeros first so that an identity
transform delays by ``preset.latency_samples``. ``tests/models/test_stft_twin.py`` asserts both
directions equal the numpy transform to float32 precision.

Layouts follow torch audio habits for waveforms and ``realtime`` for spectra: waveforms are
``[shape=(batch, n_channels, n_samples)]``, spectra ``[shape=(batch, n_frames, n_channels,
n_bins)]``. Windows follow the input's dtype, so a model run in float64 stays float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from ...realtime.dsp.presets import SpectralPreset


class TorchStft(nn.Module):
    """Analysis and synthesis for one preset.

    Args:
        preset: the frame geometry, from ``livestems.realtime.dsp.presets``.
    """

    analysis_window: torch.Tensor
    synthesis_window: torch.Tensor

    def __init__(self, preset: SpectralPreset) -> None:
        super().__init__()
        self.preset = preset
        self.synthesis_start = preset.synthesis_start
        # Derived from the preset, so not saved with the weights.
        self.register_buffer(
            "analysis_window", torch.from_numpy(preset.analysis_window.copy()), persistent=False
        )
        self.register_buffer(
            "synthesis_window",
            torch.from_numpy(preset.synthesis_window[self.synthesis_start :].copy()),
            persistent=False,
        )

    def stft(self, signal: torch.Tensor) -> torch.Tensor:
        """[shape=(batch, n_channels, n_samples)] -> [shape=(batch, n_frames, n_channels,
        n_bins)], complex, with ``n_frames = n_samples // hop``."""
        n_fft, hop = self.preset.n_fft, self.preset.hop
        n_frames = signal.shape[-1] // hop
        padded = functional.pad(signal[..., : n_frames * hop], (n_fft - hop, 0))
        # (batch, n_channels, n_samples) -> (batch, n_channels, n_frames, n_fft)
        frames = padded.unfold(-1, n_fft, hop)
        window = self.analysis_window.to(signal.dtype)
        spectra = torch.fft.rfft(frames * window, dim=-1)
        # (batch, n_channels, n_frames, n_bins) -> (batch, n_frames, n_channels, n_bins)
        return spectra.transpose(1, 2)

    def istft(self, spectra: torch.Tensor, n_samples: int) -> torch.Tensor:
        """[shape=(batch, n_frames, *lead, n_bins)] -> [shape=(batch, *lead, n_samples)], on the
        streaming timeline (identity delays by ``preset.latency_samples``)."""
        n_fft, hop = self.preset.n_fft, self.preset.hop
        n_frames = spectra.shape[1]
        support = n_fft - self.synthesis_start
        n_parts = -(-support // hop)
        frames = torch.fft.irfft(spectra, n=n_fft, dim=-1)[..., self.synthesis_start :]
        weighted = frames * self.synthesis_window.to(frames.dtype)
        weighted = functional.pad(weighted, (0, n_parts * hop - support))
        # (batch, n_frames, *lead, n_parts * hop) -> (batch, n_frames, *lead, n_parts, hop)
        parts = weighted.unflatten(-1, (n_parts, hop))
        completed = torch.zeros_like(parts[..., 0, :])
        for part in range(min(n_parts, n_frames) - 1, -1, -1):
            # frame m's part p completes hop m + p: shift it p frames later
            shifted = parts[:, : n_frames - part, ..., part, :]
            completed = completed + functional.pad(shifted.movedim(1, -2), (0, 0, part, 0)).movedim(
                -2, 1
            )
        # (batch, n_frames, *lead, hop) -> (batch, *lead, n_frames * hop)
        timeline = completed.movedim(1, -2).flatten(-2)
        timeline = functional.pad(timeline, (hop - 1, 0))
        if timeline.shape[-1] >= n_samples:
            return timeline[..., :n_samples]
        return functional.pad(timeline, (0, n_samples - timeline.shape[-1]))
