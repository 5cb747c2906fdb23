"""Fuzzing what a user hands in (issue 15): random bytes, random cuts and flipped bytes of real
audio files, and random values in a model file's metadata. The property: it loads, or it is
refused with one sentence (a ``UserError``, one line); never any other exception.

Bounded for CI (``LIVESTEMS_FUZZ_EXAMPLES``, default 25 examples per test); by hand, a longer
run: ``LIVESTEMS_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/realtime/test_fuzz.py``.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from livestems.realtime.commands.cli import main
from livestems.realtime.io.audio_file import audio_info, load_audio
from livestems.realtime.runtime.catalog import find_model_file
from livestems.realtime.runtime.model_metadata import METADATA_KEY, ModelMetadata
from tests.helpers.fuzz import EXAMPLES, FUZZ, VALUES, one_sentence

RATE = 44100
SUFFIXES = ["wav", "flac", "ogg", "mp3"]


def _encoded(suffix: str) -> bytes:
    """A short, real file of the format: a tone and noise, 0.2 s stereo."""
    t = np.arange(RATE // 5)[:, None] / RATE
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).random((t.size, 2))
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), RATE, format=suffix.upper())
    return buffer.getvalue()


VALID = {
    suffix: _encoded(suffix) for suffix in SUFFIXES if suffix.upper() in sf.available_formats()
}


def _load(path: Path) -> None:
    try:
        info = audio_info(path)
        audio = load_audio(path, RATE)
    except BaseException as error:  # noqa: BLE001 -- the property covers every exception
        one_sentence(error)
        return
    assert info.sample_rate > 0 and audio.ndim == 2 and audio.shape[1] == 2
    assert np.isfinite(audio).all()


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_load_or_are_refused_in_one_sentence(
    tmp_path: Path, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"random.{suffix}"
    path.write_bytes(data)
    _load(path)


@FUZZ
@given(
    suffix=st.sampled_from(sorted(VALID)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
)
def test_damaged_real_files_load_or_are_refused_in_one_sentence(
    tmp_path: Path, suffix: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(VALID[suffix])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    path = tmp_path / f"damaged.{suffix}"
    path.write_bytes(bytes(data[: max(1, int(cut * len(data)))]))
    _load(path)


@settings(FUZZ, max_examples=max(3, EXAMPLES // 5))
@given(suffix=st.sampled_from(sorted(VALID)), cut=st.floats(0.05, 0.95))
def test_separate_exits_1_with_one_line_for_a_damaged_file(
    tmp_path_factory: pytest.TempPathFactory, suffix: str, cut: float
) -> None:
    if not find_model_file(None).is_file():
        pytest.skip("this checkout has no bundled model")
    folder = tmp_path_factory.mktemp("separate")
    path = folder / f"cut.{suffix}"
    path.write_bytes(VALID[suffix][: int(cut * len(VALID[suffix]))])
    errors = io.StringIO()
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stderr(errors), redirect_stdout(io.StringIO()):
        status = main(["separate", str(path), "-o", str(folder / "out"), "--model", "lstm-ultra"])
    lines = errors.getvalue().strip().splitlines()
    assert (status, len(lines)) in ((0, 0), (1, 1)), errors.getvalue()


# ------------------------------------------------------------------------------- metadata


def _bundled_metadata() -> dict[str, Any]:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(find_model_file("lstm-ultra")))
    text = next(prop.value for prop in model.metadata_props if prop.key == METADATA_KEY)
    values: dict[str, Any] = json.loads(text)
    return values


def _paths(values: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(values, dict):
        for key, value in values.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(values, list):
        for index, value in enumerate(values):
            found += _paths(value, (*prefix, index))
    return found


@pytest.fixture(scope="module")
def bundled_metadata() -> dict[str, Any]:
    if not find_model_file(None).is_file():
        pytest.skip("this checkout has no bundled model")
    return _bundled_metadata()


@FUZZ
@given(data=st.data())
def test_random_metadata_values_load_or_are_refused_in_one_sentence(
    bundled_metadata: dict[str, Any], data: st.DataObject
) -> None:
    values = copy.deepcopy(bundled_metadata)
    paths = _paths(values)
    # Numbers and names the runtime computes with are drawn more often than nested detail.
    fields = [path for path in paths if len(path) == 1 or path[0] in ("preset", "golden")]
    for index in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(fields if index == 0 else paths))
        parent = values
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this path
    try:
        metadata = ModelMetadata.from_json(json.dumps(values), "fuzzed.onnx")
    except BaseException as error:  # noqa: BLE001
        one_sentence(error)
        return
    # What the listing and the runner compute from it must not fail either.
    assert metadata.latency_ms >= 0 and metadata.stems
    metadata.expected_inputs()
    metadata.expected_outputs()


@FUZZ
@given(text=st.text(max_size=200) | VALUES.map(json.dumps))
def test_random_metadata_text_is_refused_in_one_sentence(text: str) -> None:
    try:
        ModelMetadata.from_json(text, "fuzzed.onnx")
    except BaseException as error:  # noqa: BLE001
        one_sentence(error)
