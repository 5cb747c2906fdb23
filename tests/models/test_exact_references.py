"""Scores never depend on the decode cache: references are scored in float32, as decoded, on
the first run and on every later one (issue 15, case 10)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from livestems.models.data.datasets import SAMPLE_RATE, STEMS, load_musdb_stems, musdb_tracks

MUSDB = os.environ.get("LIVESTEMS_MUSDB")
pytestmark = pytest.mark.skipif(not MUSDB, reason="LIVESTEMS_MUSDB is not set")


def test_references_are_scored_as_decoded_on_a_cold_and_a_warm_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVESTEMS_CACHE", str(tmp_path / "cache"))
    ref = musdb_tracks(MUSDB, "valid")[0]
    decoded = load_musdb_stems(ref.path, SAMPLE_RATE)
    cold = ref.load_for_scoring()
    warm = ref.load_for_scoring()  # from the cache the first call wrote
    assert (tmp_path / "cache").is_dir()
    for track in (cold, warm):
        np.testing.assert_array_equal(track.mixture, decoded["mixture"])
        for stem in STEMS:
            assert track.stems[stem].dtype == np.float32
            np.testing.assert_array_equal(track.stems[stem], decoded[stem])
    # training still reads float16 values, half the memory: what scoring must not use
    training = ref.load()
    halves = decoded["vocals"].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(training.stems["vocals"], halves)
    assert not np.array_equal(halves, decoded["vocals"])
