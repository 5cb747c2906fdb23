"""The torch STFT twin equals the numpy transform of realtime/ to float32 precision."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.layers.stft import TorchStft  # noqa: E402
from livestems.realtime.dsp import stft as numpy_stft  # noqa: E402
from livestems.realtime.dsp.presets import PRESETS, SpectralPreset  # noqa: E402

TWINNED = [*PRESETS.values(), PRESETS["live"].subband(4), PRESETS["ultra"].subband(8)]


@pytest.mark.parametrize("preset", TWINNED, ids=lambda preset: preset.name)
def test_analysis_and_synthesis_equal_numpy(preset: SpectralPreset) -> None:
    rng = np.random.default_rng(0)
    signal = rng.uniform(-1, 1, (3 * preset.n_fft + 37, 2)).astype(np.float32)
    twin = TorchStft(preset)
    # (n_samples, n_channels) -> (1, n_channels, n_samples): torch's waveform layout
    waveform = torch.from_numpy(signal.T.copy())[None]

    expected = numpy_stft.stft(signal, preset)
    spectra = twin.stft(waveform)[0].numpy()
    assert spectra.shape == expected.shape and spectra.dtype == np.complex64
    # float32 FFTs of different libraries: equal to float32 rounding of the largest bin
    np.testing.assert_allclose(spectra, expected, rtol=0, atol=1e-6 * np.abs(expected).max())

    stems = np.stack([expected, 0.5 * expected], axis=1)  # (n_frames, 2 stems, channels, bins)
    expected_out = numpy_stft.istft(stems, preset, signal.shape[0])  # (n, stems, channels)
    out = twin.istft(torch.from_numpy(stems)[None], signal.shape[0])[0].numpy()
    # (stems, channels, n) -> (n, stems, channels)
    np.testing.assert_allclose(out.transpose(2, 0, 1), expected_out, rtol=0, atol=1e-5)


@pytest.mark.parametrize("preset", PRESETS.values(), ids=lambda preset: preset.name)
def test_twin_round_trip_in_float64_is_exact_to_1e_12(preset: SpectralPreset) -> None:
    twin = TorchStft(preset)
    x = torch.randn(2, 2, 4 * preset.n_fft, dtype=torch.float64)
    y = twin.istft(twin.stft(x), x.shape[-1])
    assert y.dtype == torch.float64
    delay, n_complete = preset.latency_samples, (x.shape[-1] // preset.hop) * preset.hop
    torch.testing.assert_close(
        y[..., delay:n_complete], x[..., : n_complete - delay], atol=1e-12, rtol=0
    )


def test_twin_is_differentiable() -> None:
    preset = PRESETS["ultra"]
    twin = TorchStft(preset)
    x = torch.randn(1, 2, 2 * preset.n_fft, requires_grad=True)
    twin.istft(twin.stft(x).abs().unsqueeze(2).to(torch.complex64), x.shape[-1]).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
