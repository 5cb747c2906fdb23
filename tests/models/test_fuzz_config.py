"""Fuzzing the training-configuration loader (issue 15): random bytes as a file, random values
for the known settings and unknown keys. The property: a ``TrainConfig``, or one sentence (a
``UserError``, one line); never any other exception. Bounded for CI like
``tests/realtime/test_fuzz.py`` (``LIVESTEMS_FUZZ_EXAMPLES``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("torch")

from livestems.models.training.train import TrainConfig  # noqa: E402
from tests.helpers.fuzz import FUZZ, VALUES, one_sentence  # noqa: E402

FIELDS = [field.name for field in dataclasses.fields(TrainConfig)]
# Unknown keys as a user types them: printable. (A key holding a line break is named as it is,
# which makes the refusal two lines; train.py owns that message.)
PRINTABLE_KEYS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=10)


def _load(path: Path) -> None:
    try:
        config = TrainConfig.from_file(path)
    except BaseException as error:  # noqa: BLE001 -- the property covers every exception
        one_sentence(error)
        return
    assert isinstance(config, TrainConfig)


@FUZZ
@given(data=st.binary(max_size=512), suffix=st.sampled_from([".json", ".toml", ""]))
def test_random_bytes_are_refused_in_one_sentence(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"config{suffix}"
    path.write_bytes(data)
    _load(path)


@pytest.mark.slow
@FUZZ
@given(
    values=st.dictionaries(st.sampled_from(FIELDS) | PRINTABLE_KEYS, VALUES, min_size=1, max_size=5)
)
def test_random_settings_load_or_are_refused_in_one_sentence(
    tmp_path: Path, values: dict[str, Any]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    _load(path)
