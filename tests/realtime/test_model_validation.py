"""A model file's metadata is checked field by field (issue 15, case 5): numbers out of range,
stem names that are paths or repeats, wrong types: each one sentence, never a traceback, and
neither ``livestems models`` nor the window falls over a bad file. The files are the bundled
model with its metadata changed (the ``onnx`` package, from the train extra, rewrites them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from livestems.realtime.commands.cli import main
from livestems.realtime.runtime.model_metadata import METADATA_KEY, ModelFileError, ModelMetadata
from tests.helpers.model_files import BAD_FIELDS, BUNDLED, write_model

pytestmark = pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled model in this checkout")


def _metadata() -> dict[str, Any]:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(BUNDLED))
    text = next(prop.value for prop in model.metadata_props if prop.key == METADATA_KEY)
    values: dict[str, Any] = json.loads(text)
    return values


@pytest.mark.parametrize("change", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_metadata_is_one_sentence(change: Callable[[dict[str, Any]], None]) -> None:
    values = _metadata()
    change(values)
    with pytest.raises(ModelFileError) as refused:
        ModelMetadata.from_json(json.dumps(values), "bad.onnx")
    message = str(refused.value)
    assert message.startswith('Cannot use model "bad.onnx": ') and message.endswith(".")
    assert "\n" not in message


def test_the_bundled_metadata_passes() -> None:
    assert ModelMetadata.from_json(json.dumps(_metadata())).stems == (
        "vocals",
        "drums",
        "bass",
        "other",
    )


def test_stem_names_that_are_paths_never_write_outside_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_model(tmp_path / "escape.onnx", BAD_FIELDS["stem ../../x"])
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((4410, 2), np.float32), 44100)
    assert main(["separate", str(song), "-o", str(tmp_path / "a/b"), "--model", str(model)]) == 1
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "a").exists()
    assert "'../../x'" in capsys.readouterr().err


def test_models_lists_a_bad_file_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_model(tmp_path / "no-rate.onnx", BAD_FIELDS["sample rate 0"])
    write_model(tmp_path / "no-bands.onnx", BAD_FIELDS["no bands"])
    monkeypatch.setenv("LIVESTEMS_MODELS", str(tmp_path))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("lstm-live.onnx" in line and "unusable" not in line for line in lines)
    for name in ("no-rate.onnx", "no-bands.onnx"):
        (line,) = [line for line in lines if name in line]
        assert "unusable: Cannot use model" in line
