"""``livestems bench --model`` takes a file or a model's name, as every other command does."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestems.realtime.benchmarks.bench import find_models
from livestems.realtime.errors import UserError
from livestems.realtime.runtime.catalog import BUNDLED_DIR


def test_a_bundled_models_name_finds_its_file(tmp_path: Path) -> None:
    if not (BUNDLED_DIR / "cws-live.onnx").exists():
        pytest.skip("this checkout has no bundled model")
    assert find_models(["cws-live"], True, tmp_path) == [BUNDLED_DIR / "cws-live.onnx"]


def test_a_file_is_taken_as_it_is_and_an_unknown_name_is_one_sentence(tmp_path: Path) -> None:
    assert find_models(["some/where/model.onnx"], True, tmp_path) == [Path("some/where/model.onnx")]
    with pytest.raises(UserError, match="No model file or model named 'no-such-model'"):
        find_models(["no-such-model"], True, tmp_path)
