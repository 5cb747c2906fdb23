"""The committed training recipes: each one still loads, and the learning curve's rows differ
from the bundled recipe only in what the README says they do."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from livestems.models.training.train import TrainConfig  # noqa: E402

RECIPES = Path(__file__).resolve().parents[2] / "models" / "recipes"

# JSON files under models/recipes that are outputs beside the recipes, not recipes.
NOT_RECIPES = {
    "scores-valid.json",  # the scores of a scoreboard run
    "benchmarks/train-benchmark.json",  # the training benchmark's figures
    "gpu/runs-s13/bench.json",  # livestems bench on a lent GPU
}


def recipe_files() -> list[Path]:
    return sorted(
        path
        for path in RECIPES.rglob("*.json")
        if path.relative_to(RECIPES).as_posix() not in NOT_RECIPES
    )


def differing_keys(first: dict[str, Any], second: dict[str, Any]) -> set[str]:
    """The top-level settings on which two recipes (``TrainConfig.to_dict``) differ."""
    return {key for key in first.keys() | second.keys() if first.get(key) != second.get(key)}


def test_recipes_are_found() -> None:
    names = {path.relative_to(RECIPES).as_posix() for path in recipe_files()}
    assert {"lstm-live.json", "lstm-ultra.json", "long-runs/cws-live.json"} <= names
    assert len(names) > 50


@pytest.mark.parametrize(
    "recipe", recipe_files(), ids=lambda path: path.relative_to(RECIPES).as_posix()
)
def test_every_committed_recipe_loads(recipe: Path) -> None:
    # A key renamed or removed in TrainConfig would leave a README command that fails on its
    # first line; every recipe the README points at must still be a valid configuration.
    TrainConfig.from_file(recipe)


def test_learning_curve_rows_differ_from_the_bundled_recipe_only_in_songs_seed_and_selection() -> (
    None
):
    bundled = TrainConfig.from_file(RECIPES / "lstm-live.json").to_dict()
    rows = sorted((RECIPES / "learning-curve").glob("*.json"))
    assert len(rows) == 8
    seen = set()
    for row in rows:
        values = TrainConfig.from_file(row).to_dict()
        differing = differing_keys(bundled, values)
        assert differing <= {"train_tracks", "seed", "select_by"}, row.name
        assert values["select_by"] == "sdr"
        seen.add((values["train_tracks"], values["seed"]))
    assert seen == {(n, seed) for n in (10, 20, 40, 80) for seed in (42, 7)}


def test_cws_learning_curve_rows_are_the_cws_live_recipe_from_scratch_at_the_curves_budget() -> (
    None
):
    # The README sets the cws curve's slope beside the lstm curve's: that holds only if the
    # rows differ from each other in songs and seed alone, train for the lstm curve's 720
    # batches of 8, and are cws-live's own recipe started from random weights.
    cws_live = TrainConfig.from_file(RECIPES / "long-runs" / "cws-live.json").to_dict()
    lstm_row = TrainConfig.from_file(RECIPES / "learning-curve" / "lstm-live-songs80.json")
    rows = sorted((RECIPES / "learning-curve-cws").glob("*.json"))
    assert len(rows) == 10
    seen = set()
    for row in rows:
        values = TrainConfig.from_file(row).to_dict()
        assert differing_keys(cws_live, values) <= {"epochs", "init", "seed", "train_tracks"}
        assert values["init"] is None
        assert values["epochs"] * values["batches_per_epoch"] == (
            lstm_row.epochs * lstm_row.batches_per_epoch
        )
        assert values["batch_size"] == lstm_row.batch_size
        seen.add((values["train_tracks"], values["seed"]))
    # A third seed at the two ends, where a row weighs most on the slope.
    two_seeds = {(n, seed) for n in (10, 20, 40, 80) for seed in (42, 7)}
    assert seen == two_seeds | {(10, 3), (80, 3)}


def test_latency_rows_are_the_cws_curves_80_song_rows_at_another_preset() -> None:
    # The README prices latency by setting these rows beside the cws curve's 80-song rows at
    # `live`: that holds only if the preset is the one difference, seed for seed.
    rows = sorted((RECIPES / "latency-cws").glob("*.json"))
    assert len(rows) == 7
    seen = set()
    for row in rows:
        values = TrainConfig.from_file(row).to_dict()
        live_name = re.sub(r"^cws-(studio|stage|live-fine|ultra)-", "cws-live-", row.name)
        live = TrainConfig.from_file(RECIPES / "learning-curve-cws" / live_name).to_dict()
        assert differing_keys(live, values) == {"preset"}, row.name
        assert row.name.startswith(f"cws-{values['preset']}-")
        seen.add((values["preset"], values["seed"]))
    # Three seeds at `studio`, the preset the bundled `ensemble-studio` grew from (each row a
    # candidate member's start); two at `stage`, which asks how much of that survives a quarter
    # of the delay; one at `live-fine`, `live`'s delay behind `studio`'s analysis window; one at
    # `ultra`, the slowest to train.
    assert seen == {
        ("studio", 42),
        ("studio", 7),
        ("studio", 3),
        ("stage", 42),
        ("stage", 7),
        ("live-fine", 42),
        ("ultra", 42),
    }


def test_every_init_inside_the_repository_is_there() -> None:
    # Continuations start from weights kept beside their recipes; one that names a file which
    # was never committed cannot be reproduced from a clone. (An init under runs/ is the output
    # of an earlier step of the same README recipe, made by the reader.)
    root = RECIPES.parents[1]
    inits = {TrainConfig.from_file(path).init for path in recipe_files()} - {None, ""}
    kept = {init for init in inits if init.startswith("models/")}
    assert len(kept) >= 10
    assert [init for init in sorted(kept) if not (root / init).is_file()] == []


def test_midi_rows_are_learning_curve_rows_with_midi_songs_added_or_pretrained_on() -> None:
    # The README reads each MIDI row against the real-songs-only row of the same songs and seed:
    # that comparison holds only if the songs rendered from MIDI files are the one difference,
    # either beside the real songs (midi_songs) or before them (a pre-training run, as the
    # ablation's row 4, whose recipe it is but for the seed), or beside them lending only their
    # vocals and other (midi_stems).
    folder = RECIPES / "learning-curve-midi"
    pretrain_row = TrainConfig.from_file(RECIPES / "ablation" / "pretrain" / "4-midi.json")
    rows = sorted(folder.glob("*.json"))
    assert len(rows) == 8
    pretrained = 0
    for row in rows:
        values = TrainConfig.from_file(row).to_dict()
        twin_name = re.sub(r"-(after-)?midi\d+(-vocals-other)?", "", row.name)
        twin = TrainConfig.from_file(RECIPES / "learning-curve" / twin_name).to_dict()
        differing = differing_keys(twin, values)
        pretrain = folder / "pretrain" / row.name
        if pretrain.exists():
            pretrained += 1
            assert differing == set(), row.name
            first = TrainConfig.from_file(pretrain)
            assert first.seed == values["seed"]
            assert dataclasses.replace(first, seed=pretrain_row.seed) == pretrain_row
        elif "-vocals-other" in row.name:
            assert differing == {"midi_songs", "midi_stems"}, row.name
            assert values["midi_stems"] == ["vocals", "other"]
        else:
            assert differing == {"midi_songs"}, row.name
            assert values["midi_songs"] > 0
            assert values["synthetic_duration_s"] == 10.0
    assert pretrained == 2
