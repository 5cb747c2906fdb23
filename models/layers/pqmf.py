"""The PQMF bank in torch: the differentiable twin of ``realtime/dsp/pqmf.py``, for training.

The filters come from ``design_pqmf`` (numpy), so the bank a model is trained with is the one
the runtime streams; the tests assert that the two give the same numbers to float32 precision
and follow the same time axis: band sample ``m`` is the analysis filter's output at input
sample ``m * K`` (causal, zeros before sample 0), synthesis zero-stuffs and filters, and
analysis then synthesis returns the input delayed by exactly ``delay_samples`` samples.

Band signals are laid out band-major along the channel axis, channel ``k * n_channels + c`` for
band ``k`` of audio channel ``c``, as the ``cws`` family stacks them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as functional
from torch import nn

from ...realtime.dsp.pqmf import PqmfDesign, design_pqmf


class Pqmf(nn.Module):
    """Analysis and synthesis with a K-band PQMF bank, causal and differentiable.

    The filters are float64 buffers (derived from the design, so not saved in state dicts) and
    are cast to the input's dtype at each call: the bank runs in float32 for training and in
    float64 for exact causality checks.

    Args:
        n_bands: K, one of 2, 4 or 8.
        taps_per_band: filter order per band (``design_pqmf``).
        kaiser_beta: the prototype window's shape (``design_pqmf``).
    """

    analysis_filters: torch.Tensor
    synthesis_filters: torch.Tensor

    def __init__(self, n_bands: int, taps_per_band: int = 16, kaiser_beta: float = 8.0) -> None:
        super().__init__()
        self.design: PqmfDesign = design_pqmf(n_bands, taps_per_band, kaiser_beta)
        # conv1d correlates, so the analysis filters are reversed to convolve:
        # [shape=(n_bands, 1, order + 1)], one output channel per band.
        analysis = np.ascontiguousarray(self.design.analysis[:, ::-1])
        self.register_buffer(
            "analysis_filters", torch.from_numpy(analysis).unsqueeze(1), persistent=False
        )
        # conv_transpose1d scatters each input sample times the filter as it is:
        # [shape=(n_bands, 1, order + 1)], one input channel per band.
        synthesis = np.array(self.design.synthesis)
        self.register_buffer(
            "synthesis_filters", torch.from_numpy(synthesis).unsqueeze(1), persistent=False
        )

    @property
    def n_bands(self) -> int:
        return self.design.n_bands

    @property
    def delay_samples(self) -> int:
        """Delay of analysis then synthesis, in full-band samples."""
        return self.design.delay_samples

    def extra_repr(self) -> str:
        return f"n_bands={self.n_bands}, order={self.design.order}"

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Split into K decimated bands.

        Args:
            x: [shape=(batch, n_channels, n_samples)]

        Returns:
            [shape=(batch, n_bands * n_channels, n_samples // K)], band-major; only whole
            blocks of K samples are analysed.
        """
        batch, n_channels, n_samples = x.shape
        n_bands, order = self.n_bands, self.design.order
        n_sub = n_samples // n_bands
        if n_sub == 0:
            return x.new_zeros(batch, n_bands * n_channels, 0)
        # (batch, n_channels, n_samples) -> (batch * n_channels, 1, n_samples): one signal per row
        signals = x[..., : n_sub * n_bands].reshape(batch * n_channels, 1, n_sub * n_bands)
        # N zeros on the left only: output m sees input samples m*K - N .. m*K, never later.
        padded = functional.pad(signals, (order, 0))
        weight = self.analysis_filters.to(dtype=x.dtype, device=x.device)
        bands = functional.conv1d(padded, weight, stride=n_bands)
        # (batch * n_channels, n_bands, n_sub) -> (batch, n_bands, n_channels, n_sub): band-major
        bands = bands.reshape(batch, n_channels, n_bands, n_sub).transpose(1, 2)
        return bands.reshape(batch, n_bands * n_channels, n_sub)

    def synthesis(self, bands: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Rebuild the full band from K decimated bands.

        Args:
            bands: [shape=(batch, n_bands * n_channels, n_sub)], band-major.
            n_samples: output length; band samples beyond it are ignored, missing ones are
                zeros.

        Returns:
            [shape=(batch, n_channels, n_samples)]; after ``analysis`` it is the input delayed
            by ``delay_samples``.
        """
        batch, n_feature_channels, n_sub = bands.shape
        n_bands = self.n_bands
        n_channels = n_feature_channels // n_bands
        if n_sub == 0:
            return bands.new_zeros(batch, n_channels, n_samples)
        # (batch, n_bands * n_channels, n_sub) -> (batch * n_channels, n_bands, n_sub)
        per_signal = bands.reshape(batch, n_bands, n_channels, n_sub).transpose(1, 2)
        per_signal = per_signal.reshape(batch * n_channels, n_bands, n_sub)
        weight = self.synthesis_filters.to(dtype=bands.dtype, device=bands.device)
        # Output t sums band samples m with m*K <= t: causal with no padding at all.
        signals = functional.conv_transpose1d(per_signal, weight, stride=n_bands)
        length = signals.shape[-1]
        if length >= n_samples:
            signals = signals[..., :n_samples]
        else:
            signals = functional.pad(signals, (0, n_samples - length))
        # (batch * n_channels, 1, n_samples) -> (batch, n_channels, n_samples)
        return signals.reshape(batch, n_channels, n_samples)
