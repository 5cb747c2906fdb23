"""ONNX export and the onnxruntime runner: parity with torch, and refusal of bad model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from livestems.export.onnx_export import ExportError, export_onnx  # noqa: E402
from livestems.models.families.checkpoint import save_checkpoint  # noqa: E402
from livestems.models.families.config import SeparatorConfig  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.commands.cli import main  # noqa: E402
from livestems.realtime.errors import UserError  # noqa: E402
from livestems.realtime.runtime.model_metadata import METADATA_KEY, ModelFileError  # noqa: E402
from livestems.realtime.runtime.onnx_model import CUDA, OnnxHopModel, available_providers  # noqa: E402
from tests.helpers.networks import config_id, randomized, small_configs  # noqa: E402


def _features(separator: SeparatorNet, n_frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n_frames, separator.front_end.n_feature_channels, separator.front_end.n_bins)
    return (rng.random(shape, dtype=np.float32) * 3).astype(np.float32)


def _torch_sequence(separator: SeparatorNet, features: np.ndarray) -> np.ndarray:
    net = separator.net
    with torch.no_grad():
        return net(torch.from_numpy(features)[None], *net.initial_state(1))[0][0].numpy()


@pytest.mark.slow
@pytest.mark.parametrize("config", small_configs(), ids=config_id)
def test_onnxruntime_frame_by_frame_matches_torch(config: SeparatorConfig, tmp_path: Path) -> None:
    separator = randomized(config, seed=11)
    path = tmp_path / "model.onnx"
    metadata = export_onnx(separator, path)
    assert metadata.latency_samples == separator.latency_samples
    model = OnnxHopModel(path, provider="cpu")
    model.verify_golden()
    features = _features(separator, 30, seed=12)
    expected = _torch_sequence(separator, features)
    for _ in range(2):  # and again after reset()
        stepped = np.concatenate([model.run_features(features[i : i + 1]) for i in range(30)])
        np.testing.assert_allclose(stepped, expected, atol=1e-4, rtol=0)
        model.reset()
    whole = model.run_features(features)
    np.testing.assert_allclose(whole, stepped, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("config", small_configs()[:2], ids=config_id)
def test_float16_weights_halve_the_file_and_stay_close(config, tmp_path: Path) -> None:
    separator = randomized(config, seed=13)
    export_onnx(separator, tmp_path / "f32.onnx")
    metadata = export_onnx(separator, tmp_path / "f16.onnx", float16=True)
    assert metadata.precision == "float16 weights"
    size32, size16 = (tmp_path / "f32.onnx").stat().st_size, (tmp_path / "f16.onnx").stat().st_size
    assert size16 < 0.6 * size32
    features = _features(separator, 10, seed=14)
    masks = OnnxHopModel(tmp_path / "f16.onnx").run_features(features)
    np.testing.assert_allclose(masks, _torch_sequence(separator, features), atol=1e-2, rtol=0)


def test_export_refuses_a_file_that_disagrees_with_torch(tmp_path: Path) -> None:
    separator = randomized(small_configs()[0])
    path = tmp_path / "model.onnx"
    with pytest.raises(
        ExportError, match=r"onnxruntime disagrees with torch by .* \(tolerance 0\)"
    ):
        export_onnx(separator, path, tolerance=0.0)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def good_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "good.onnx"
    export_onnx(randomized(small_configs()[0]), path)
    return path


def _with_metadata(good: Path, target: Path, change) -> Path:
    model = onnx.load(str(good))
    entry = next(e for e in model.metadata_props if e.key == METADATA_KEY)
    values = json.loads(entry.value)
    result = change(values)
    if result is None:
        model.metadata_props.remove(entry)
    else:
        entry.value = result if isinstance(result, str) else json.dumps(result)
    onnx.save(model, str(target))
    return target


def _lie_about_state(values: dict) -> dict:
    values["state"][0]["shape"][-1] += 1
    return values


def _lie_about_bins(values: dict) -> dict:
    values["n_bins"] = 513
    return values


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not onnx", "is not a valid ONNX model or it is truncated"),
        ("truncated", "is not a valid ONNX model or it is truncated"),
        ("empty", "is not a valid ONNX model or it is truncated"),
        ("missing", "no such file"),
        ("no metadata", "has no livestems metadata"),
        ("newer", "metadata format 2, newer than this livestems reads"),
        (
            "state shape",
            r"says input 'lstm_h' has shape \[2, 1, 25\], but the graph has \[2, 1, 24\]",
        ),
        ("bins", "declared as 2 x 513, but its front end gives 2 x 2049"),
        ("not json", "is not valid JSON"),
        ("incomplete", "is incomplete"),
    ],
)
def test_bad_model_files_end_in_one_sentence(
    case: str, message: str, good_model: Path, tmp_path: Path
) -> None:
    target = tmp_path / f"{case.replace(' ', '_')}.onnx"
    if case == "not onnx":
        target.write_text("this is a text file, not a model\n")
    elif case == "truncated":
        target.write_bytes(good_model.read_bytes()[: good_model.stat().st_size // 2])
    elif case == "empty":
        target.write_bytes(b"")
    elif case == "no metadata":
        _with_metadata(good_model, target, lambda values: None)
    elif case == "newer":
        _with_metadata(good_model, target, lambda values: {**values, "format_version": 2})
    elif case == "state shape":
        _with_metadata(good_model, target, _lie_about_state)
    elif case == "bins":
        _with_metadata(good_model, target, _lie_about_bins)
    elif case == "not json":
        _with_metadata(good_model, target, lambda values: "{not json")
    elif case == "incomplete":
        _with_metadata(
            good_model, target, lambda values: {**values, "stems": None} | {"n_bins": None}
        )
    with pytest.raises(ModelFileError, match=message) as caught:
        OnnxHopModel(target)
    text = str(caught.value)
    assert str(target) in text and "\n" not in text


def test_a_tampered_golden_output_is_detected(good_model: Path, tmp_path: Path) -> None:
    def tamper(values: dict) -> dict:
        values["golden"]["output_sums"][0] *= 1.1
        return values

    model = OnnxHopModel(_with_metadata(good_model, tmp_path / "tampered.onnx", tamper))
    with pytest.raises(ModelFileError, match="does not reproduce its golden output"):
        model.verify_golden()


def test_providers_asked_for_by_name(good_model: Path) -> None:
    assert OnnxHopModel(good_model, provider="cpu").provider == "CPUExecutionProvider"
    with pytest.raises(UserError, match="Unknown execution provider 'tpu'"):
        OnnxHopModel(good_model, provider="tpu")
    if CUDA not in available_providers():
        with pytest.raises(UserError, match="CUDA was asked for, but this onnxruntime has no CUDA"):
            OnnxHopModel(good_model, provider="cuda")
        assert OnnxHopModel(good_model, provider="auto").provider == "CPUExecutionProvider"


@pytest.mark.skipif(CUDA not in available_providers(), reason="onnxruntime has no CUDA provider")
def test_cuda_with_io_binding_matches_cpu(good_model: Path) -> None:
    cpu, cuda = OnnxHopModel(good_model, "cpu"), OnnxHopModel(good_model, "cuda")
    assert cuda.provider == CUDA
    # The model's own frame shape: a fixed (2, 1025) went stale when the fixture's preset
    # changed, and only the first run on a GPU (session 13, an H200) found it.
    shape = (20, *cpu.metadata.frame_shape)
    features = np.random.default_rng(3).random(shape, dtype=np.float32)
    stepped_cpu = np.concatenate([cpu.run_features(features[i : i + 1]) for i in range(20)])
    stepped_cuda = np.concatenate([cuda.run_features(features[i : i + 1]) for i in range(20)])
    np.testing.assert_allclose(stepped_cuda, stepped_cpu, atol=1e-4, rtol=0)
    cuda.reset()
    np.testing.assert_allclose(cuda.run_features(features[:1]), stepped_cpu[:1], atol=1e-4)


def test_export_and_models_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    separator = randomized(small_configs()[0], seed=21)
    checkpoint = tmp_path / "trained.ckpt"
    save_checkpoint(checkpoint, separator, training_data="unit test", licence="MIT")
    output = tmp_path / "exported.onnx"
    assert main(["export", str(checkpoint), "-o", str(output)]) == 0
    assert "onnxruntime matches torch" in capsys.readouterr().out
    assert main(["models", str(output)]) == 0
    card = capsys.readouterr().out
    for expected in (
        "lstm",
        "vocals, drums, bass, other",
        "4094 samples = 92.83 ms",
        "unit test",
        "MIT",
    ):
        assert expected in card
    assert main(["export", "-o", str(output)]) == 1
    assert "Give either a checkpoint or --random" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [c for c in small_configs() if c.preset in ("live", "ultra")],
    ids=config_id,
)
def test_onnx_model_through_the_stream_processor_equals_torch(config, tmp_path: Path) -> None:
    from livestems.realtime.engine.processor import StreamProcessor

    separator = randomized(config, seed=31)
    export_onnx(separator, tmp_path / "model.onnx")
    model = OnnxHopModel(tmp_path / "model.onnx")
    meta = model.metadata
    processor = StreamProcessor.for_model(model)
    processor.prepare(meta.sample_rate, 1024)
    assert processor.latency_samples == meta.latency_samples
    rng = np.random.default_rng(32)
    # K samples short of a hop boundary would differ at the very end (torch analyses whole
    # K-sample blocks only), so the length is a multiple of the hop.
    signal = rng.uniform(-0.5, 0.5, (40 * meta.preset.hop, 2)).astype(np.float32)
    pieces, start = [], 0
    while start < signal.shape[0]:
        size = int(rng.integers(1, 700))
        pieces.append(processor.process(signal[start : start + size]).copy())
        start += size
    streamed = np.concatenate(pieces, axis=1)
    with torch.no_grad():
        in_torch = separator(torch.from_numpy(signal.T.copy())[None])[0].numpy()
    # (n_stems, n_channels, n_samples) -> (n_stems, n_samples, n_channels)
    np.testing.assert_allclose(streamed, in_torch.transpose(0, 2, 1), atol=1e-4, rtol=0)
