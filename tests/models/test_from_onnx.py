"""A torch model rebuilt from an exported ONNX file: the weights it was exported with, and the
bundled model's masks from torch equal to onnxruntime's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.families.checkpoint import CheckpointError  # noqa: E402
from livestems.models.families.cws import CwsConfig  # noqa: E402
from livestems.models.families.from_onnx import separator_from_onnx  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.realtime.runtime.onnx_model import OnnxHopModel  # noqa: E402
from tests.helpers.networks import randomized  # noqa: E402

# the lstm-live bundled until session 16, kept as its continuation's init: an export whose
# batch norms are BatchNormalization nodes, the kind that can be read back
BUNDLED = (
    Path(__file__).resolve().parents[2] / "models/recipes/long-runs/lstm-live-frozen/init.onnx"
)


@pytest.mark.parametrize("float16", [False, True], ids=["float32", "float16"])
def test_the_weights_exported_are_the_weights_rebuilt(tmp_path: Path, float16: bool) -> None:
    # three LSTM layers: each layer's W, R and B found in the graph's order
    separator = randomized(LstmConfig(preset="live", hidden_size=12, n_layers=3), seed=5)
    # the norms exported as BatchNormalization nodes, as the bundled model's were
    separator.net.legacy_norm = True
    export_onnx(separator, tmp_path / "model.onnx", float16=float16)
    rebuilt = separator_from_onnx(tmp_path / "model.onnx")
    assert rebuilt.config == separator.config
    original = separator.state_dict()
    for key, value in rebuilt.state_dict().items():
        tolerance = 2e-3 * float(original[key].abs().max()) if float16 else 0.0
        torch.testing.assert_close(value, original[key], atol=tolerance, rtol=0, msg=key)


def test_the_bundled_model_rebuilt_in_torch_answers_as_onnxruntime_does() -> None:
    separator = separator_from_onnx(BUNDLED)
    rng = np.random.default_rng(3)
    shape = (40, separator.front_end.n_feature_channels, separator.front_end.n_bins)
    features = (rng.random(shape, dtype=np.float32) * 3).astype(np.float32)
    net = separator.net
    with torch.no_grad():
        masks = net(torch.from_numpy(features)[None], *net.initial_state(1))[0][0].numpy()
    np.testing.assert_allclose(
        masks, OnnxHopModel(BUNDLED).run_features(features), atol=1e-4, rtol=0
    )


def test_files_that_cannot_be_rebuilt_end_in_one_sentence(tmp_path: Path) -> None:
    cws = randomized(CwsConfig(preset="live", n_bands=2, channels=4, depth=1), seed=1)
    export_onnx(cws, tmp_path / "cws.onnx")
    folded = randomized(LstmConfig(preset="live", hidden_size=12, n_layers=1), seed=2)
    export_onnx(folded, tmp_path / "folded.onnx")
    (tmp_path / "noise.onnx").write_bytes(b"not a model")
    cases = {
        tmp_path / "cws.onnx": "it is a cws model, and only lstm exports can be read back",
        tmp_path / "folded.onnx": "its batch norms were folded into products and sums",
        tmp_path / "noise.onnx": "it is not an ONNX file",
        tmp_path / "absent.onnx": "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            separator_from_onnx(path)
