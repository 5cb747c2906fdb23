"""Stereo features computed in the graph: the mid and side magnitudes of a stereo spectrum.

Left and right magnitudes alone cannot tell a centred source (side near zero) from a wide one
of equal level on both sides: that difference lies in the phases. A network with complex masks
is given the spectrum's real and imaginary parts, so it can compute |L + R| / 2 and |L - R| / 2
itself, frame by frame (causal, no state), and the front end and the engine stay unchanged.
Families append them after their other input channels, so that a model without them grows them
with their first weights at zero (``MaskNet.input_growth``).
"""

from __future__ import annotations

import torch

from ..families.config import ConfigError, SeparatorConfig


def check_stereo_features(config: SeparatorConfig) -> None:
    """Refuses stereo features where they cannot be computed, in one sentence."""
    if config.n_channels != 2 or config.n_mask_parts != 2:
        raise ConfigError(
            "stereo_features needs two channels and mask_domain complex: mid and side come "
            "from the phases, which only complex masks give the network."
        )


def mid_side_magnitudes(left: torch.Tensor, right: torch.Tensor, dim: int) -> torch.Tensor:
    """Mid and side magnitudes, stacked along ``dim`` (mid first).

    Args:
        left, right: one channel's real and imaginary parts each [shape=(..., 2)].
        dim: where the new axis of two (mid, side) goes, counted in the result without the
            trailing (real, imaginary) axis.
    """
    mid_side = torch.stack([left + right, left - right], dim=dim) * 0.5
    return mid_side.square().sum(-1).sqrt()
