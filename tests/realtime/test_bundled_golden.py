"""Every bundled model reproduces its golden output (the masks for a seeded input, recorded at
export): within tolerance on any machine, and the digest says whether to the bit
(``OnnxHopModel.verify_golden``). A wrong digest is read, not ignored."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from livestems.realtime.runtime.catalog import BUNDLED_DIR
from livestems.realtime.runtime.model_metadata import ModelFileError, golden_features
from livestems.realtime.runtime.onnx_model import OnnxHopModel

BUNDLED = sorted(BUNDLED_DIR.glob("*.onnx"))


def test_the_six_bundled_models_are_here() -> None:
    if not BUNDLED:
        pytest.skip("this checkout has no bundled model")
    names = {
        "lstm-live.onnx",
        "lstm-ultra.onnx",
        "cws-live.onnx",
        "bsrnn-live.onnx",
        "ensemble-live.onnx",
        "ensemble-studio.onnx",
    }
    assert names <= {path.name for path in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.stem)
def test_a_bundled_model_reproduces_its_golden_output(path) -> None:
    model = OnnxHopModel(path, provider="cpu")
    exact = model.verify_golden()
    # The sums matched (else it raised); to the bit only where this machine computes as the
    # exporting one did, which is no failure elsewhere.
    assert isinstance(exact, bool)


def test_a_digest_that_differs_is_read_and_an_error_only_when_exact() -> None:
    if not BUNDLED:
        pytest.skip("this checkout has no bundled model")
    model = OnnxHopModel(BUNDLED[0], provider="cpu")
    golden = dataclasses.replace(model.metadata.golden, output_sha256="0" * 64)
    model.metadata = dataclasses.replace(model.metadata, golden=golden)
    assert model.verify_golden() is False
    with pytest.raises(ModelFileError, match="not bit for bit") as refused:
        model.verify_golden(exact=True)
    text = str(refused.value)
    assert str(BUNDLED[0]) in text and "\n" not in text and text.endswith(".")


def test_a_digest_that_matches_makes_the_check_exact() -> None:
    """Whatever this machine computes: the digest of its own answer is accepted as exact, so
    the check hashes the same bytes the exporter did (masks of every frame, float32)."""
    if not BUNDLED:
        pytest.skip("this checkout has no bundled model")
    model = OnnxHopModel(BUNDLED[0], provider="cpu")
    golden, metadata = model.metadata.golden, model.metadata
    shape = (1, golden.n_frames, metadata.n_feature_channels, metadata.n_bins)
    masks = model.run_features(golden_features(golden.seed, shape[1:]))[None]
    assert masks.dtype == np.float32 and masks.flags.c_contiguous
    digest = hashlib.sha256(masks.tobytes()).hexdigest()
    model.metadata = dataclasses.replace(
        metadata, golden=dataclasses.replace(golden, output_sha256=digest)
    )
    assert model.verify_golden(exact=True) is True
