"""The ``bsrnn`` family and complex masks exported: onnxruntime equals torch frame by frame and
as a sequence, the golden pair holds, and the stream processor with the exported model gives the
offline render's samples in blocks of 1, 65, a hop and 4096 samples, and torch's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from livestems.export.onnx_export import export_onnx, random_features  # noqa: E402
from livestems.models.families.config import SeparatorConfig  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from livestems.realtime.runtime.model_metadata import METADATA_KEY, ModelFileError  # noqa: E402
from livestems.realtime.runtime.onnx_model import OnnxHopModel  # noqa: E402
from tests.helpers.band_split_configs import (  # noqa: E402
    band_split_and_complex_configs,
    config_name,
)
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402
from tests.helpers.processing import run_blocks  # noqa: E402

CONFIGS = band_split_and_complex_configs()
# An export takes seconds (tracing, then the parity check; torch's LSTM builds its kernels for
# every new shape): three configurations run always, the others with the slow tests.
QUICK = {
    "bsrnn-live-softmax-magnitude-coarse-w8x2",
    "bsrnn-live-softmax-complex-coarse-w8x2",
    "lstm-live-softmax-complex",
}
PARAMS = [
    pytest.param(c, id=config_name(c), marks=() if config_name(c) in QUICK else pytest.mark.slow)
    for c in CONFIGS
]


class _Exported:
    """Each configuration exported once per module: (separator, path)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.models: dict[str, tuple[SeparatorNet, Path]] = {}

    def __call__(self, config: SeparatorConfig) -> tuple[SeparatorNet, Path]:
        name = config_name(config)
        if name not in self.models:
            separator = randomized(config, seed=11)
            # Move every weight a little: a complex mask's imaginary head starts at zero.
            generator = torch.Generator().manual_seed(12)
            with torch.no_grad():
                for parameter in separator.net.parameters():
                    parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
            path = self.folder / f"{name}.onnx"
            metadata = export_onnx(separator, path)
            assert metadata.mask_domain == config.mask_domain
            self.models[name] = (separator, path)
        return self.models[name]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> _Exported:
    return _Exported(tmp_path_factory.mktemp("band-split"))


@pytest.mark.slow
@pytest.mark.parametrize("config", PARAMS)
def test_onnxruntime_frame_by_frame_matches_torch(config: SeparatorConfig, exported) -> None:
    separator, path = exported(config)
    model = OnnxHopModel(path, provider="cpu")
    assert model.metadata.mask_domain == config.mask_domain
    model.verify_golden()
    features = random_features(separator, 20, seed=13)
    net = separator.net
    with torch.no_grad():
        expected = net(torch.from_numpy(features), *net.initial_state(1))[0][0].numpy()
    for _ in range(2):  # and again after reset()
        stepped = np.concatenate([model.run_features(features[0, i : i + 1]) for i in range(20)])
        np.testing.assert_allclose(stepped, expected, atol=1e-4, rtol=0)
        model.reset()
    np.testing.assert_allclose(model.run_features(features[0]), stepped, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("config", PARAMS)
def test_the_processor_streams_the_offline_render_in_any_blocking(
    config: SeparatorConfig, exported
) -> None:
    separator, path = exported(config)
    model = OnnxHopModel(path, provider="cpu")
    preset = model.metadata.preset
    processor = StreamProcessor.for_model(model)
    processor.prepare(preset.sample_rate, 4096)
    assert processor.latency_samples == model.metadata.latency_samples
    spectrum = np.ones((model.metadata.n_feature_channels, model.metadata.n_bins), np.complex64)
    expected_dtype = np.complex64 if config.mask_domain == "complex" else np.float32
    model.reset()
    assert model.step(spectrum).dtype == expected_dtype
    # A multiple of the hop, as in test_onnx_export (the subband path's torch twin analyses
    # whole K-sample blocks only).
    n_samples = preset.n_fft + 12 * preset.hop
    mix = music_like_tensor(n_samples, seed=14)[0, : config.n_channels].numpy().T.copy()
    model.reset()
    offline = render_offline(model, preset, mix, model.front_end())
    for size in (1, 65, preset.hop, 4096):
        processor.reset()
        streamed = run_blocks(processor, mix, [size])
        np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0, err_msg=f"blocks {size}")
    with torch.no_grad():
        in_torch = separator(torch.from_numpy(mix.T.copy())[None])[0].numpy()
    # (n_stems, n_channels, n_samples) -> (n_stems, n_samples, n_channels)
    np.testing.assert_allclose(offline, in_torch.transpose(0, 2, 1), atol=1e-4, rtol=0)


def _rewrite_metadata(source: Path, target: Path, change) -> Path:
    model = onnx.load(str(source))
    entry = next(e for e in model.metadata_props if e.key == METADATA_KEY)
    values = json.loads(entry.value)
    change(values)
    entry.value = json.dumps(values)
    onnx.save(model, str(target))
    return target


def test_a_complex_model_whose_metadata_lost_the_key_is_refused_in_one_sentence(
    exported, tmp_path: Path
) -> None:
    _, path = exported(next(c for c in CONFIGS if c.mask_domain == "complex"))
    target = _rewrite_metadata(path, tmp_path / "lost.onnx", lambda v: v.pop("mask_domain"))
    with pytest.raises(ModelFileError, match=r"says input 'features' has shape") as caught:
        OnnxHopModel(target)
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_bad_mask_domain_in_a_file_is_refused_in_one_sentence(exported, tmp_path: Path) -> None:
    _, path = exported(CONFIGS[0])

    def change(values: dict) -> None:
        values["mask_domain"] = "polar"

    target = _rewrite_metadata(path, tmp_path / "polar.onnx", change)
    with pytest.raises(ModelFileError) as caught:
        OnnxHopModel(target)
    assert str(caught.value) == (
        f"Cannot use model \"{target}\": its livestems metadata gives mask_domain 'polar', "
        "not 'magnitude' or 'complex'."
    )
