"""The torch PQMF bank: the numpy bank's numbers and time axis, causal, differentiable."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the models need the 'train' extra (torch)")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from livestems.models.layers.pqmf import Pqmf  # noqa: E402
from livestems.realtime.dsp.pqmf import pqmf_analyze, pqmf_synthesize  # noqa: E402
from tests.helpers.signals import MIN_SNR_DB, music_like, snr_db, white_noise  # noqa: E402


@pytest.fixture(params=[2, 4, 8], ids=lambda n_bands: f"K{n_bands}")
def pqmf(request: pytest.FixtureRequest) -> Pqmf:
    return Pqmf(request.param)


def to_numpy_layout(bands: torch.Tensor, n_bands: int) -> np.ndarray:
    """(batch, n_bands * n_channels, n_sub) -> (batch, n_sub, n_bands, n_channels)."""
    batch, n_feature_channels, n_sub = bands.shape
    split = bands.reshape(batch, n_bands, n_feature_channels // n_bands, n_sub)
    return split.permute(0, 3, 1, 2).numpy()


def test_analysis_equals_numpy_band_major(pqmf: Pqmf) -> None:
    n_bands = pqmf.n_bands
    signal = np.stack([white_noise(4000 + n_bands - 1, 2, seed=s) for s in (10, 11)])
    # (batch, n_samples, n_channels) -> (batch, n_channels, n_samples)
    bands = pqmf.analysis(torch.from_numpy(signal).transpose(1, 2))
    assert bands.shape == (2, n_bands * 2, (4000 + n_bands - 1) // n_bands)
    assert bands.dtype == torch.float32
    for item, expected in zip(to_numpy_layout(bands, n_bands), signal, strict=True):
        reference = pqmf_analyze(expected, pqmf.design)
        np.testing.assert_allclose(item, reference, rtol=0, atol=1e-5 * np.abs(reference).max())
    # Band-major: feature channel k * n_channels + c is band k of channel c.
    single = pqmf.analysis(torch.from_numpy(signal[:, :, 1:]).transpose(1, 2))
    torch.testing.assert_close(bands[:, 1::2], single, rtol=0, atol=1e-6)


def test_synthesis_equals_numpy(pqmf: Pqmf) -> None:
    n_bands = pqmf.n_bands
    rng = np.random.default_rng(12)
    bands = rng.standard_normal((2, 500, n_bands, 2)).astype(np.float32)
    # (batch, n_sub, n_bands, n_channels) -> (batch, n_bands * n_channels, n_sub)
    feature = torch.from_numpy(bands).permute(0, 2, 3, 1).reshape(2, n_bands * 2, 500)
    for n_samples in (500 * n_bands, 500 * n_bands + pqmf.delay_samples + 3, 37):
        output = pqmf.synthesis(feature, n_samples)
        assert output.shape == (2, 2, n_samples) and output.dtype == torch.float32
        for item, expected in zip(output.numpy(), bands, strict=True):
            reference = pqmf_synthesize(expected, pqmf.design, n_samples).T
            np.testing.assert_allclose(item, reference, rtol=0, atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reconstruction_at_the_delay(pqmf: Pqmf, dtype: torch.dtype) -> None:
    signal = music_like(seed=13, seconds=0.5)
    x = torch.from_numpy(signal.T.copy()).unsqueeze(0).to(dtype)
    output = pqmf.synthesis(pqmf.analysis(x), x.shape[-1])
    assert output.dtype == dtype
    delay = pqmf.delay_samples
    estimate = output[0, :, delay:].double().numpy()
    assert snr_db(signal[:-delay].T, estimate) >= MIN_SNR_DB
    impulse = torch.zeros(1, 1, 2048, dtype=dtype)
    impulse[..., 700] = 1.0
    response = pqmf.synthesis(pqmf.analysis(impulse), 2048)
    assert int(response.abs().argmax()) == 700 + delay


def test_causal_bit_for_bit_in_float64(pqmf: Pqmf) -> None:
    n_bands = pqmf.n_bands
    x = torch.from_numpy(white_noise(2048, 2, seed=14).T.copy()).unsqueeze(0).double()
    bands = pqmf.analysis(x)
    output = pqmf.synthesis(bands, 2048)
    for t in (600, 601, 600 + n_bands - 1):
        perturbed = x.clone()
        perturbed[..., t:] += torch.randn_like(perturbed[..., t:])
        perturbed_bands = pqmf.analysis(perturbed)
        first_late = -(-t // n_bands)  # the first m with m * K >= t
        assert torch.equal(perturbed_bands[..., :first_late], bands[..., :first_late])
        # ... and no later than necessary: the very next band sample sees sample t.
        assert not torch.equal(perturbed_bands[..., first_late], bands[..., first_late])
        # The output changes from the first changed band sample's time on, never before t.
        perturbed_output = pqmf.synthesis(perturbed_bands, 2048)
        first_changed = first_late * n_bands
        assert torch.equal(perturbed_output[..., :first_changed], output[..., :first_changed])
        assert not torch.equal(perturbed_output[..., first_changed], output[..., first_changed])
    # Synthesis alone: band samples from m on reach the output from m * K on.
    m = 150
    perturbed_bands = bands.clone()
    perturbed_bands[..., m:] += 1.0
    perturbed_output = pqmf.synthesis(perturbed_bands, 2048)
    assert torch.equal(perturbed_output[..., : m * n_bands], output[..., : m * n_bands])
    assert not torch.equal(perturbed_output[..., m * n_bands], output[..., m * n_bands])


def test_gradients_flow_through_both_banks() -> None:
    pqmf = Pqmf(2, taps_per_band=2)
    x = torch.randn(1, 1, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda signal: pqmf.synthesis(pqmf.analysis(signal), 24), x)


def test_filters_follow_the_input_and_are_not_saved() -> None:
    pqmf = Pqmf(4)
    assert pqmf.delay_samples == 64 and pqmf.n_bands == 4
    assert pqmf.state_dict() == {}
    assert pqmf.analysis_filters.dtype == torch.float64
    half = pqmf.analysis(torch.zeros(1, 2, 64, dtype=torch.float32))
    assert half.dtype == torch.float32 and half.shape == (1, 8, 16)
    # Too short for one whole block: empty bands, and silence back.
    empty = pqmf.analysis(torch.zeros(1, 2, 3))
    assert empty.shape == (1, 8, 0)
    assert torch.equal(pqmf.synthesis(empty, 5), torch.zeros(1, 2, 5))


def test_bad_n_bands_is_refused_in_one_sentence() -> None:
    with pytest.raises(
        ValueError, match=r"^n_bands must be 2, 4 or 8 \(a power of two\), got 3\.$"
    ):
        Pqmf(3)
