"""The ``hybrid`` family exported: the graph's second output (``waveform``, the waveform
branch's hops) and metadata ``waveform_hop``; onnxruntime equals torch frame by frame and as a
sequence, the golden pair holds, and the stream processor adds the waveform hops after synthesis
so that blocks of 1, 65, a hop and 4096 samples give the offline render's samples and torch's.
Files without a waveform branch are written and read as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from livestems.export.onnx_export import export_onnx, random_features  # noqa: E402
from livestems.models.families.hop_model import TorchHopModel  # noqa: E402
from livestems.models.families.hybrid import HybridConfig  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.models.layers.streaming import split_outputs  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from livestems.realtime.runtime.model_metadata import METADATA_KEY, ModelFileError  # noqa: E402
from livestems.realtime.runtime.onnx_model import OnnxHopModel  # noqa: E402
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402
from tests.helpers.processing import run_blocks  # noqa: E402

TINY = {
    "hidden_size": 12,
    "n_layers": 1,
    "bandwidth_hz": 6000,
    "wave_channels": 8,
    "tcn_blocks": 2,
    "wave_hidden": 8,
}
CONFIG = HybridConfig(preset="live", **TINY)


def _moved(separator: SeparatorNet, seed: int) -> SeparatorNet:
    """Every weight moved a little: the imaginary head starts at zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in separator.net.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return separator


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SeparatorNet, Path]:
    separator = _moved(randomized(CONFIG, seed=11), seed=12)
    path = tmp_path_factory.mktemp("hybrid") / "hybrid.onnx"
    metadata = export_onnx(separator, path)
    assert metadata.waveform_hop and metadata.mask_domain == "complex"
    assert metadata.latency_samples == CONFIG.spectral_preset.latency_samples
    return separator, path


def test_onnxruntime_frame_by_frame_matches_torch(exported) -> None:
    separator, path = exported
    model = OnnxHopModel(path, provider="cpu")
    assert model.waveform_hop
    model.verify_golden()
    features = random_features(separator, 20, seed=13)
    net = separator.net
    with torch.no_grad():
        masks, hops, _ = split_outputs(net, net(torch.from_numpy(features), *net.initial_state(1)))
    hop = CONFIG.spectral_preset.hop
    expected_hops = hops[0].numpy().reshape(20, hop, -1)
    for _ in range(2):  # and again after reset()
        stepped, stepped_hops = [], []
        for i in range(20):
            stepped.append(model.run_features(features[0, i : i + 1]))
            assert model.last_waveform is not None
            stepped_hops.append(model.last_waveform.copy())
        np.testing.assert_allclose(np.concatenate(stepped), masks[0].numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(np.concatenate(stepped_hops), expected_hops, atol=1e-4, rtol=0)
        model.reset()
    np.testing.assert_allclose(model.run_features(features[0]), np.concatenate(stepped), atol=1e-4)
    np.testing.assert_allclose(model.last_waveform, expected_hops, atol=1e-4, rtol=0)


def test_the_processor_streams_the_offline_render_in_any_blocking(exported) -> None:
    separator, path = exported
    model = OnnxHopModel(path, provider="cpu")
    preset = model.metadata.preset
    processor = StreamProcessor.for_model(model)
    processor.prepare(preset.sample_rate, 4096)
    assert processor.latency_samples == model.metadata.latency_samples
    n_samples = preset.n_fft + 12 * preset.hop + 77
    mix = music_like_tensor(n_samples, seed=14)[0].numpy().T.copy()
    model.reset()
    offline = render_offline(model, preset, mix, model.front_end())
    for size in (1, 65, preset.hop, 4096):
        processor.reset()
        streamed = run_blocks(processor, mix, [size])
        np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0, err_msg=f"blocks {size}")
    processor.reset()
    np.testing.assert_allclose(processor.process_sequence(mix), offline, atol=1e-5, rtol=0)
    with torch.no_grad():
        in_torch = separator(torch.from_numpy(mix.T.copy())[None])[0].numpy()
    # (n_stems, n_channels, n_samples) -> (n_stems, n_samples, n_channels)
    np.testing.assert_allclose(offline, in_torch.transpose(0, 2, 1), atol=1e-4, rtol=0)
    # The stems sum to the mix, delayed by the latency (softmax masks, centred waveform hops).
    delayed = np.concatenate([np.zeros((processor.latency_samples, 2), np.float32), mix])
    np.testing.assert_allclose(offline.sum(axis=0), delayed[:n_samples], atol=1e-4, rtol=0)


def test_the_torch_hop_model_streams_as_the_file_does(exported) -> None:
    separator, path = exported
    hop_model = TorchHopModel(separator)
    processor = StreamProcessor.for_model(hop_model)
    preset = CONFIG.spectral_preset
    processor.prepare(preset.sample_rate, 4096)
    mix = music_like_tensor(preset.n_fft + 6 * preset.hop, seed=15)[0].numpy().T.copy()
    in_torch = run_blocks(processor, mix, [65])
    model = OnnxHopModel(path, provider="cpu")
    in_file = render_offline(model, preset, mix, model.front_end())
    np.testing.assert_allclose(in_torch, in_file, atol=1e-4, rtol=0)


def _rewrite_metadata(source: Path, target: Path, change) -> Path:
    model = onnx.load(str(source))
    entry = next(e for e in model.metadata_props if e.key == METADATA_KEY)
    values = json.loads(entry.value)
    change(values)
    entry.value = json.dumps(values)
    onnx.save(model, str(target))
    return target


def test_a_hybrid_file_whose_metadata_lost_the_key_is_refused_in_one_sentence(
    exported, tmp_path: Path
) -> None:
    _, path = exported
    target = _rewrite_metadata(path, tmp_path / "lost.onnx", lambda v: v.pop("waveform_hop"))
    with pytest.raises(ModelFileError, match=r"undeclared: \['waveform'\]") as caught:
        OnnxHopModel(target)
    assert "\n" not in str(caught.value)


def test_a_bad_waveform_hop_value_is_refused_in_one_sentence(exported, tmp_path: Path) -> None:
    _, path = exported

    def change(values: dict) -> None:
        values["waveform_hop"] = "yes"

    target = _rewrite_metadata(path, tmp_path / "yes.onnx", change)
    with pytest.raises(ModelFileError, match=r"waveform_hop 'yes', not true or false") as caught:
        OnnxHopModel(target)
    assert "\n" not in str(caught.value)


def test_a_file_without_a_waveform_branch_has_no_key_and_no_output(tmp_path: Path) -> None:
    config = LstmConfig(preset="live", hidden_size=8, n_layers=1, bandwidth_hz=4000)
    path = tmp_path / "lstm.onnx"
    metadata = export_onnx(randomized(config, seed=3), path)
    assert not metadata.waveform_hop
    entry = next(e for e in onnx.load(str(path)).metadata_props if e.key == METADATA_KEY)
    assert "waveform_hop" not in json.loads(entry.value)
    model = OnnxHopModel(path, provider="cpu")
    assert [o.name for o in model.session.get_outputs()][0] == "masks"
    assert "waveform" not in {o.name for o in model.session.get_outputs()}
    assert not model.waveform_hop and model.last_waveform is None
