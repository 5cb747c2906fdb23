"""Complex masks: how they are made from logits (summing to 1 + 0j where normalised), what the
metadata says about them (a file without the key has magnitude masks, a bad value is one
sentence), the torch hop model through the processor, and the training loss's magnitude term.

The family contract (causality, sequence == step, normalised sums) of complex configurations is
in ``test_bsrnn.py``, the export and the processor with onnxruntime in
``tests/export/test_bsrnn_onnx.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.data.spectral_data import SpectralBatch  # noqa: E402
from livestems.models.families.bsrnn import BsrnnConfig  # noqa: E402
from livestems.models.families.hop_model import TorchHopModel  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.models.layers.masks import activate_complex_masks, activate_masks  # noqa: E402
from livestems.models.training.train import TrainConfig, loss_value  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from livestems.realtime.runtime.catalog import find_model_file  # noqa: E402
from livestems.realtime.runtime.model_metadata import (  # noqa: E402
    METADATA_KEY,
    ModelFileError,
    ModelMetadata,
)
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402
from tests.helpers.processing import run_blocks  # noqa: E402


@pytest.mark.parametrize("kind", ["softmax", "ratio", "sigmoid"])
def test_complex_masks_from_logits(kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    real, imaginary = torch.randn(2, 3, 4, 2, 7, generator=generator) * 3
    masks = torch.view_as_complex(activate_complex_masks(real, imaginary, kind, stem_dim=1))
    # The real part is the magnitude mask of the kind, whatever the imaginary logits.
    torch.testing.assert_close(masks.real, activate_masks(real, kind, stem_dim=1))
    assert masks.imag.abs().max() < (2 if kind != "sigmoid" else 1)
    if kind == "sigmoid":
        torch.testing.assert_close(masks.imag, torch.tanh(imaginary))
    else:
        # Normalised: the masks of the stems sum to 1 + 0j, so the stems sum to the mix.
        total = masks.sum(dim=1)
        torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)
    # Imaginary logits of zero give the magnitude mask itself: training starts there.
    at_zero = activate_complex_masks(real, torch.zeros_like(real), kind, stem_dim=1)
    torch.testing.assert_close(at_zero[..., 0], activate_masks(real, kind, stem_dim=1))
    assert torch.count_nonzero(at_zero[..., 1]) == 0


@pytest.mark.parametrize(
    "config",
    [
        LstmConfig(hidden_size=8, mask_domain="complex"),
        BsrnnConfig(width=8, n_blocks=1, bands="coarse", mask_domain="complex"),
    ],
    ids=lambda c: c.family,
)
def test_a_new_complex_network_starts_from_its_magnitude_masks(config) -> None:
    torch.manual_seed(1)
    model = SeparatorNet(config).eval()
    spectra = torch.randn(1, 5, 2, config.spectral_preset.n_bins, dtype=torch.complex64)
    with torch.no_grad():
        masks = model.masks(spectra)
    assert masks.dtype == torch.complex64
    assert torch.count_nonzero(masks.imag) == 0 and masks.real.abs().max() > 0


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["live", "ultra"])
def test_the_torch_hop_model_with_complex_masks_through_the_processor(preset: str) -> None:
    config = LstmConfig(preset=preset, hidden_size=16, mask_domain="complex", mask="ratio")
    separator = randomized(config, seed=8)
    spectral = config.spectral_preset
    signal = music_like_tensor(4 * spectral.n_fft + 51, seed=9)[0].numpy().T.copy()  # (n, 2)

    hop_model = TorchHopModel(separator)
    offline = render_offline(hop_model, spectral, signal)
    processor = StreamProcessor(hop_model, spectral)
    processor.prepare(spectral.sample_rate, 4096)
    assert hop_model.step(np.ones((2, spectral.n_bins), np.complex64)).dtype == np.complex64
    for size in (1, 65, spectral.hop, 4096):
        processor.reset()
        np.testing.assert_allclose(run_blocks(processor, signal, [size]), offline, atol=1e-5)
    with torch.no_grad():
        in_torch = separator(torch.from_numpy(signal.T.copy())[None])[0].numpy()
    # (n_stems, n_channels, n_samples) -> (n_stems, n_samples, n_channels)
    np.testing.assert_allclose(offline, in_torch.transpose(0, 2, 1), atol=1e-4, rtol=0)


def test_the_magnitude_loss_judges_a_complex_mask_by_its_magnitude() -> None:
    config = TrainConfig(
        family="lstm", model={"hidden_size": 8, "mask_domain": "complex"}, synthetic_songs=1
    )
    model = randomized(LstmConfig(hidden_size=8, mask_domain="complex"), seed=3)
    generator = torch.Generator().manual_seed(4)
    shape = (2, 6, 4, 2, model.front_end.n_bins)  # (batch, frames, stems, channels, bins)
    targets = torch.randn(shape, dtype=torch.complex64, generator=generator)
    batch = SpectralBatch(targets.sum(dim=2), targets)
    with torch.no_grad():
        masks = model.masks(batch.mixture)
        estimates = masks.abs() * batch.mixture.abs()[:, :, None]
        expected = torch.mean(torch.abs(estimates - targets.abs()))
        loss = loss_value(model, batch, config, training=False)
    assert masks.is_complex()
    torch.testing.assert_close(loss, expected)


# -- the metadata --------------------------------------------------------------------------------


def _metadata_values(mask_domain: str | None) -> dict:
    """The metadata of the bundled model (written before complex masks), with ``mask_domain``
    set (``None``: absent)."""
    onnx = pytest.importorskip("onnx")
    bundled = find_model_file("lstm-ultra")
    if not bundled.is_file():
        pytest.skip("no bundled model in this checkout")
    model = onnx.load(str(bundled))
    values = json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))
    values.pop("mask_domain", None)
    if mask_domain is not None:
        values["mask_domain"] = mask_domain
    return values


def test_a_file_without_the_key_has_magnitude_masks() -> None:
    metadata = ModelMetadata.from_json(json.dumps(_metadata_values(None)))
    assert metadata.mask_domain == "magnitude" and not metadata.complex_masks
    assert metadata.frame_shape == (metadata.n_feature_channels, metadata.n_bins)


def test_complex_masks_add_a_trailing_axis_to_features_and_masks() -> None:
    metadata = ModelMetadata.from_json(json.dumps(_metadata_values("complex")))
    channels, bins, n_stems = metadata.n_feature_channels, metadata.n_bins, len(metadata.stems)
    assert metadata.expected_inputs()["features"] == (1, None, channels, bins, 2)
    assert metadata.expected_outputs()["masks"] == (1, None, n_stems, channels, bins, 2)
    assert json.loads(metadata.to_json())["mask_domain"] == "complex"


@pytest.mark.parametrize("value", ["phase", "", 2, None, ["complex"]])
def test_a_bad_mask_domain_is_one_sentence(value) -> None:
    values = _metadata_values("complex")
    values["mask_domain"] = value
    with pytest.raises(ModelFileError) as refused:
        ModelMetadata.from_json(json.dumps(values), "bad.onnx")
    message = str(refused.value)
    assert message.startswith('Cannot use model "bad.onnx": its livestems metadata gives ')
    assert "mask_domain" in message and "'magnitude' or 'complex'" in message
    assert message.endswith(".") and "\n" not in message
