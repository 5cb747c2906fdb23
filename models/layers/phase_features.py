"""Features computed in the graph from the phases: the mid and side magnitudes of a stereo
spectrum, and each bin's deviation from a steady sinusoid.

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
from .masks import parts_magnitude


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
    return parts_magnitude(mid_side)


def phase_deviation(
    features: torch.Tensor, past: torch.Tensor, eps: float = 1e-12
) -> tuple[torch.Tensor, torch.Tensor]:
    """How far each bin strays from a steady sinusoid: |X_t - P_t| / (|X_t| + |X_{t-1}|).

    P_t continues the previous frame at its phase advance from the frame before, X_{t-1} *
    (u_{t-1} / u_{t-2}) with u the unit phasors (the complex-domain prediction of onset
    detection: Bello et al., 2004): near 0 for a steady partial, whatever its frequency within
    the bin; near 1 or above for noise, onsets and bins where sources beat. Magnitudes alone
    cannot say which (a steady partial and steady noise look alike frame by frame): that lies
    in the phases, which only complex masks give the network.

    Args:
        features: real and imaginary parts [shape=(batch, n_frames, channels, n_bins, 2)].
        past: the two frames before them, in the same layout [shape=(batch, 2, ...)] (zeros
            before the first frame).

    Returns:
        the deviation [shape=(batch, n_frames, channels, n_bins)], in [0, 2], and the new past.
    """
    extended = torch.cat([past, features], dim=1)
    # Slices counted from the ends, so that an exported graph keeps its time axis dynamic.
    now, last, before = extended[:, 2:], extended[:, 1:-1], extended[:, :-2]
    now_size, last_size = parts_magnitude(now), parts_magnitude(last)
    last_unit = last / (last_size.unsqueeze(-1) + eps)
    before_unit = before / (parts_magnitude(before).unsqueeze(-1) + eps)
    # the advance u_{t-1} * conj(u_{t-2}), then the prediction X_{t-1} times it
    advance = _multiply(last_unit, before_unit * before_unit.new_tensor([1.0, -1.0]))
    predicted = _multiply(last, advance)
    deviation = parts_magnitude(now - predicted) / (now_size + last_size + eps)
    return deviation, extended[:, -2:]


def _multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Complex products of (real, imaginary) pairs along the last axis."""
    real = a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1]
    imaginary = a[..., 0] * b[..., 1] + a[..., 1] * b[..., 0]
    return torch.stack([real, imaginary], dim=-1)
