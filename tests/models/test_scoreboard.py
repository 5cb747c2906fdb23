"""The README's scores table: systems scored over worker processes, the README block replaced,
and the model card written from files."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("museval")

from livestems.export.model_card import model_card_markdown  # noqa: E402
from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.data.datasets import cache_dir, stem_folder_tracks  # noqa: E402
from livestems.models.evaluation.scoreboard import (  # noqa: E402
    BEGIN,
    END,
    Compute,
    System,
    _cache_entry,
    carry_rows,
    markdown,
    measure_compute,
    replace_block,
    score,
    systems_for,
)
from livestems.models.families.ensemble import ensemble_config  # noqa: E402
from livestems.models.families.registry import get_family  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.errors import UserError  # noqa: E402
from tests.helpers.songs import tonal_song, write_song_folder  # noqa: E402


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIVESTEMS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield _score_songs(tmp_path_factory)


def _score_songs(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("songs")
    for index in range(2):
        write_song_folder(root, tonal_song(f"song{index}", index, seconds=2.0), False)
    systems = [
        System("ideal ratio mask, `live` preset", "oracle", "11.6 ms", preset="live"),
        System("mixture as every stem", "mixture", "0 ms"),
    ]
    refs = stem_folder_tracks(root)
    return systems, refs, score(systems, refs, jobs=2)


@pytest.mark.slow
def test_every_system_is_scored_on_every_track_in_order(scored) -> None:
    systems, refs, results = scored
    for system in systems:
        assert [t.name for t in results[system.name].tracks] == [r.name for r in refs]
    oracle, mixture = (results[s.name] for s in systems)
    for stem in oracle.stems:
        assert oracle.aggregate(stem, "SDR") > mixture.aggregate(stem, "SDR") + 3


@pytest.mark.slow
def test_scores_come_back_from_the_cache_until_the_model_changes(scored) -> None:
    systems, refs, results = scored
    entries = sorted((cache_dir() / "scores").iterdir())
    assert len(entries) == len(systems) * len(refs)
    # mark every cached entry: a second run that reads them back gives the mark, not a score
    for entry in entries:
        stored = pickle.loads(entry.read_bytes())
        marked = dataclasses.replace(stored, si_sdr={stem: 99.0 for stem in stored.si_sdr})
        entry.write_bytes(pickle.dumps(marked))
    again = score(systems, refs, jobs=1)
    for system in systems:
        assert again[system.name].mean_over_stems("SI-SDR") == 99.0
        assert again[system.name].mean_over_stems("SDR") == results[system.name].mean_over_stems(
            "SDR"
        )
    # a different oracle geometry is not the same system: it is scored, not read back
    ultra = System("ideal ratio mask, `ultra` preset", "oracle", "5.8 ms", preset="ultra")
    assert _cache_entry(ultra, refs[0]) not in entries


@pytest.mark.slow
def test_a_row_carried_from_an_earlier_json_keeps_its_figures(scored, tmp_path: Path) -> None:
    from importlib import metadata

    systems, refs, results = scored
    name = systems[0].name
    payload = {
        "split": "valid",
        "tracks": [ref.name for ref in refs],
        "museval_version": metadata.version("museval"),
        "systems": {name: {"kind": "umx", "latency": "whole song", **results[name].to_dict()}},
    }
    previous = tmp_path / "scores.json"
    previous.write_text(json.dumps(payload))
    [(system, carried)] = carry_rows(previous, refs, kinds=("umx",))
    assert system.name == name and system.latency == "whole song"
    for stem in carried.stems:
        for metric in ("SDR", "SIR", "SAR", "ISR", "SI-SDR"):
            assert carried.aggregate(stem, metric) == pytest.approx(
                results[name].aggregate(stem, metric), nan_ok=True
            )
    payload["tracks"] = payload["tracks"][:1]
    previous.write_text(json.dumps(payload))
    with pytest.raises(UserError, match="scored other tracks"):
        carry_rows(previous, refs, kinds=("umx",))


@pytest.mark.slow
def test_the_table_replaces_the_readme_block_and_nothing_else(scored, tmp_path: Path) -> None:
    systems, _, results = scored
    table = markdown(results, systems, "caption")
    rows = table.splitlines()
    assert rows[0] == "caption"
    assert rows[2].startswith("| system | latency | vocals SDR | drums SDR | bass SDR |")
    assert rows[4].startswith("| ideal ratio mask, `live` preset | 11.6 ms | ")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n")
    replace_block(readme, table)
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n" + BEGIN + "\ncaption\n")
    assert text.endswith(END + "\nafter\n") and "old table" not in text
    (tmp_path / "other.md").write_text("no markers")
    with pytest.raises(UserError, match="has no <!-- scores:begin --> ... <!-- scores:end -->"):
        replace_block(tmp_path / "other.md", table)


def _tiny_model_file(path: Path) -> tuple[SeparatorNet, Path]:
    """A tiny lstm at ultra exported to ``path`` with its provenance, for the cards."""
    separator = SeparatorNet(get_family("lstm").config("small", preset="ultra", hidden_size=8))
    export_onnx(separator, path, training_data="MUSDB18-7 train", licence="CC BY-NC-SA")
    return separator, path


def test_a_model_file_that_is_not_bundled_gets_its_row_its_size_and_its_cost_per_hop(
    tmp_path: Path,
) -> None:
    separator, model_path = _tiny_model_file(tmp_path / "tiny-ultra.onnx")
    systems = systems_for(None, [str(model_path)])
    names = [system.name for system in systems]
    row = names.index("`tiny-ultra` (not bundled)")
    assert systems[row].kind == "model" and systems[row].latency == "5.8 ms"
    # its geometry's ideal ratio mask once, whether a bundled model brought it first or not
    assert names.count("ideal ratio mask, `ultra` preset") == 1
    assert names[-1] == "mixture as every stem"
    cost = measure_compute(model_path, n_hops=200)
    assert cost.parameters == sum(p.numel() for p in separator.parameters())
    assert cost.hop_ms == pytest.approx(1000 * 128 / 44100)
    assert 0 < cost.hop_p50_ms <= cost.hop_p99_ms
    with pytest.raises(UserError, match="no such file"):
        systems_for(None, [str(tmp_path / "missing.onnx")])


def test_the_table_gives_parameters_and_cost_per_hop_for_models_only(scored) -> None:
    systems, _, results = scored
    model = System("`tiny` (not bundled)", "model", "5.8 ms", "tiny.onnx")
    results = {**results, model.name: results[systems[0].name]}
    compute = {model.name: Compute(1234, 0.125, 0.5, 2.9)}
    rows = markdown(results, [model, *systems], "caption", compute).splitlines()
    assert rows[2].endswith("| mean SI-SDR | parameters | per hop p50 / p99 |")
    assert rows[3].count("|") == rows[2].count("|")
    assert rows[4].startswith("| `tiny` (not bundled) | 5.8 ms | ")
    assert rows[4].endswith(" | 1,234 | 0.12 / 0.50 ms (0.17 of the hop) |")
    assert rows[5].endswith(" | | |") and rows[6].endswith(" | | |")
    # without compute figures, the table of before
    assert "parameters" not in markdown(results, systems, "caption").splitlines()[2]


def test_the_model_card_is_read_from_the_model_the_recipe_the_log_and_the_scores(
    tmp_path: Path,
) -> None:
    separator, model_path = _tiny_model_file(tmp_path / "tiny-ultra.onnx")
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"family": "lstm"}\n')
    log = tmp_path / "log.jsonl"
    log.write_text(
        "\n".join(
            json.dumps({"epoch": e, "step": 10 * (e + 1), "valid_loss": v, "seconds": 1800})
            for e, v in enumerate((0.5, 0.3, 0.4))
        )
    )
    sdr = {"SDR": 2.5}
    scores = {
        "split": "valid",
        "tracks": ["a", "b"],
        "museval_version": "0.4.1",
        "systems": {
            "`tiny-ultra` (bundled)": {
                "kind": "model",
                "stems": {s: sdr for s in separator.stems},
                "mean": sdr,
            },
            "mixture as every stem": {
                "kind": "mixture",
                "stems": {s: {"SDR": -3.0} for s in separator.stems},
                "mean": {"SDR": -3.0},
            },
        },
    }
    card = model_card_markdown(model_path, recipe, log, scores)
    assert card.startswith("# tiny-ultra\n")
    assert "| algorithmic latency | 254 samples = 5.76 ms" in card
    assert "| training data | MUSDB18-7 train |" in card
    assert "| `tiny-ultra` (bundled) | 2.50 | 2.50 | 2.50 | 2.50 | 2.50 |" in card
    assert "| mixture as every stem | -3.00 |" in card
    assert "Trained for 3 epochs (30 batches, 1.5 h" in card
    assert "best validation loss 0.3000 at epoch 1" in card
    assert "non-commercial" in card


def test_a_card_names_the_pre_training_and_the_sdr_selected_epoch(tmp_path: Path) -> None:
    _, model_path = _tiny_model_file(tmp_path / "tiny.onnx")
    pretrain = tmp_path / "pre.json"
    pretrain.write_text('{"family": "lstm"}\n')
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"init": "runs/pre/best.pt", "select_by": "sdr"}\n')
    pre_log, log = tmp_path / "pre.jsonl", tmp_path / "log.jsonl"
    pre_log.write_text(json.dumps({"epoch": 0, "step": 40, "valid_loss": 0.1, "seconds": 360}))
    log.write_text(
        "\n".join(
            json.dumps(
                {
                    "epoch": e,
                    "step": 40 * (e + 1),
                    "valid_loss": 0.3 - 0.01 * e,
                    "seconds": 3600,
                    "best_epoch": 0,
                    "best_valid_sdr": 3.25,
                }
            )
            for e in range(2)
        )
    )
    card = model_card_markdown(model_path, recipe, log, None, [pretrain], [pre_log])
    assert f"--config {pretrain.as_posix()} --out runs/pre`" in card
    assert "Pre-trained for 1 epochs (40 batches, 0.1 h" in card
    assert "Trained for 2 epochs (80 batches, 2.0 h" in card
    assert "best validation SDR 3.25 dB" in card and "at epoch 0 (this file)" in card
    # the lowest loss (epoch 1) is not what the file holds
    assert "best validation loss 0.2900" not in card
    # A chain: the pre-training, then a run from it, then the recipe from that run.
    middle = tmp_path / "middle.json"
    middle.write_text('{"init": "runs/pre/best.pt", "select_by": "sdr"}\n')
    recipe.write_text('{"init": "runs/middle/best.pt"}\n')
    card = model_card_markdown(model_path, recipe, log, None, [pretrain, middle], [pre_log, log])
    order = [
        f"--config {pretrain.as_posix()} --out runs/pre`",
        f"--config {middle.as_posix()} --out runs/middle`",
        f"--config {recipe.as_posix()} --out RUN`",
    ]
    assert all(part in card for part in order), card
    assert card.index(order[0]) < card.index(order[1]) < card.index(order[2])
    assert f"Then trained by `{middle.as_posix()}` for 2 epochs" in card
    # A run from a shipped export (lstm-live's continuation): the pre-training and the kept
    # export that is the init, then the recipe; not a run folder named after the ONNX file's.
    recipe.write_text('{"init": "models/kept/init.onnx"}\n')
    card = model_card_markdown(model_path, recipe, log, None, [pretrain], [pre_log])
    order = [
        f"--config {pretrain.as_posix()} --out runs/pre`",
        "its float16 export is kept as `models/kept/init.onnx`, the next run's `init`",
        f"--config {recipe.as_posix()} --out RUN`",
    ]
    assert all(part in card for part in order), card
    assert card.index(order[0]) < card.index(order[1]) < card.index(order[2])
    assert "--out models/kept" not in card


def test_an_ensemble_card_names_each_members_run_and_the_command_that_joins_them(
    tmp_path: Path,
) -> None:
    _, model_path = _tiny_model_file(tmp_path / "tiny.onnx")
    recipes, logs = [], []
    for index, (init, channels) in enumerate((("runs/a/best.pt", 8), (None, 12))):
        recipe = tmp_path / f"member{index}.json"
        values = {"family": "cws", "select_by": "sdr", "model": {"channels": channels}}
        recipe.write_text(json.dumps({**values, "init": init} if init else values))
        log = tmp_path / f"member{index}.jsonl"
        log.write_text(
            "\n".join(
                json.dumps(
                    {
                        "epoch": e,
                        "step": 40 * (e + 1),
                        "valid_sdr": s,
                        "best_valid_sdr": max(s, 3.0),
                        "best_epoch": 1,
                        "valid_loss": 0.1,
                        "seconds": 900,
                    }
                )
                for e, s in enumerate((2.9, 3.0 + index))
            )
        )
        recipes.append(recipe)
        logs.append(log)
    card = model_card_markdown(model_path, member_recipes=recipes, member_logs=logs)
    assert (
        f'- member 0 (`cws`, model settings {{"channels": 8}}): `livestems train --config '
        f"{recipes[0].as_posix()} --out RUN0`, starting from `runs/a/best.pt`; trained for 2 "
        "epochs (80 batches" in card
    )
    assert '- member 1 (`cws`, model settings {"channels": 12}): ' in card
    assert "best validation SDR 4.00 dB" in card
    assert (
        "`python -m livestems.models.families.ensemble RUN0/best.pt RUN1/best.pt -o ENSEMBLE.pt`"
        in card
    )
    assert "Reproduce with" not in card  # no single recipe: the members' runs say it
    # A weighted ensemble's card gives the weights its file holds, in the text and the command.
    lstm = get_family("lstm").config("small", preset="ultra", hidden_size=8)
    weighted_path = tmp_path / "weighted.onnx"
    export_onnx(SeparatorNet(ensemble_config([lstm, lstm], (1, 2))), weighted_path)
    weighted = model_card_markdown(weighted_path, member_recipes=recipes, member_logs=logs)
    assert "The weighted mean (1 : 2, in member order) of the masks" in weighted
    assert "ensemble RUN0/best.pt RUN1/best.pt --weights 1 2 -o ENSEMBLE.pt`" in weighted
