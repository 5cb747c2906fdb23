"""The features computed in the graph from the phases (``layers/phase_features.py``)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from livestems.models.layers.phase_features import phase_deviation  # noqa: E402


def _parts(spectrum: torch.Tensor) -> torch.Tensor:
    """complex (batch, n_frames, channels, n_bins) -> (real, imaginary) last."""
    return torch.view_as_real(spectrum).contiguous()


def test_a_steady_partial_deviates_by_nothing_and_noise_by_about_one() -> None:
    n_frames, n_bins = 40, 16
    frames = torch.arange(n_frames, dtype=torch.float64)[:, None]
    # each bin its own steady advance (any frequency within the bin), level and start phase
    advance = torch.linspace(-3.0, 3.0, n_bins, dtype=torch.float64)
    level = torch.linspace(0.1, 2.0, n_bins, dtype=torch.float64)
    steady = level * torch.exp(1j * (advance * frames + 0.7))
    noise = torch.randn((n_frames, n_bins), dtype=torch.complex128)
    spectrum = torch.stack([steady, noise])[None]  # (1, n_frames, 2 channels, n_bins)
    past = torch.zeros((1, 2, 2, n_bins, 2), dtype=torch.float64)
    deviation, new_past = phase_deviation(_parts(spectrum.transpose(1, 2)), past)
    # no history before the first frames (zeros): nothing is predicted, so the deviation is
    # |X_t| / (|X_t| + |X_{t-1}|): 1, then 1/2 at a steady level
    expected = torch.tensor([[1.0], [0.5]], dtype=torch.float64).expand(2, n_bins)
    torch.testing.assert_close(deviation[0, :2, 0], expected, rtol=1e-5, atol=1e-5)
    assert deviation[0, 2:, 0].abs().max() < 1e-9
    assert 0.6 < deviation[0, 2:, 1].mean() < 1.4 and deviation.max() <= 2.0
    torch.testing.assert_close(new_past, _parts(spectrum.transpose(1, 2))[:, -2:])


def test_the_deviation_does_not_depend_on_level_or_phase_offset() -> None:
    spectrum = torch.randn((1, 12, 2, 8), dtype=torch.complex128)
    past = torch.zeros((1, 2, 2, 8, 2), dtype=torch.float64)
    deviation = phase_deviation(_parts(spectrum), past)[0]
    turned = spectrum * (3.0 * complex(math.cos(1.0), math.sin(1.0)))
    # equal to within rounding
    torch.testing.assert_close(
        phase_deviation(_parts(turned), past)[0], deviation, rtol=1e-4, atol=1e-5
    )
