"""The committed tiny model (``tests/data/tiny-lstm.onnx``, random weights, written by
``tests/helpers/make_tiny_model.py``): its metadata passes every check, and the stream
processor running it outputs the committed golden stems. A real model file through the whole
runtime path, with no torch: these tests never import it, and one proves it in a fresh
interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livestems.realtime.runtime.model_metadata import ModelMetadata
from livestems.realtime.runtime.onnx_model import OnnxHopModel
from tests.helpers.tiny_model import GOLDEN, MODEL, TOLERANCE, processor_stems

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as files:
        return {name: files[name] for name in files.files}


def test_the_tiny_model_is_small_and_its_metadata_passes_its_checks() -> None:
    assert MODEL.stat().st_size < 1_000_000
    # Loading checks the metadata field by field and against the graph's inputs and outputs.
    model = OnnxHopModel(MODEL, provider="cpu")
    metadata = model.metadata
    assert isinstance(metadata, ModelMetadata)
    assert (metadata.family, metadata.preset.name) == ("lstm", "live")
    assert metadata.stems == ("vocals", "drums", "bass", "other")
    assert metadata.config["hidden_size"] == 8
    assert ModelMetadata.from_json(metadata.to_json(), MODEL) == metadata
    model.verify_golden()


def test_the_processor_outputs_the_golden_stems(golden: dict[str, np.ndarray]) -> None:
    signal, expected = golden["input"], golden["stems"]
    block_sizes = tuple(int(size) for size in golden["block_sizes"])
    stems = processor_stems(MODEL, signal, block_sizes)
    assert stems.shape == expected.shape == (4, *signal.shape)
    # Not a vacuous comparison: past the latency, the stems carry the input.
    assert np.abs(expected).max() > 0.05
    np.testing.assert_allclose(stems, expected, atol=TOLERANCE, rtol=0)


def test_the_golden_comparison_needs_no_torch() -> None:
    """In a fresh interpreter (this one may hold torch from other test modules): load the
    model, run the processor, compare, and torch was never imported."""
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from tests.helpers.tiny_model import GOLDEN, MODEL, TOLERANCE, processor_stems\n"
        "from livestems.realtime.runtime.onnx_model import OnnxHopModel\n"
        "OnnxHopModel(MODEL, provider='cpu').verify_golden()\n"
        "with np.load(GOLDEN) as golden:\n"
        "    sizes = tuple(int(size) for size in golden['block_sizes'])\n"
        "    stems = processor_stems(MODEL, golden['input'], sizes)\n"
        "    np.testing.assert_allclose(stems, golden['stems'], atol=TOLERANCE, rtol=0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
