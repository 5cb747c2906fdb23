"""The ablation table of README.md: each training recipe of a folder trained, exported and scored.

    python -m livestems.export.ablation --runs RUNS [--recipes models/recipes/ablation]
        [--musdb PATH] [--only NAME ...] [--readme README.md] [--block ablation]

Every ``*.json`` in ``--recipes`` is one row (``pretrain/NAME.json``, where there is one, is
trained first and starts the row's run): the same model, data, budget in batches and seed,
differing only in what the row is about. For each, in order: ``livestems train`` into
``RUNS/NAME`` (resumed where a run stopped, skipped when it is done), the export of its
``best.pt`` to ``RUNS/NAME.onnx``, and the score on the validation split through the streaming
path with museval BSSEval v4, as the scoreboard scores (and from its cache when the model file
has not changed). It prints the table, mean SDR per stem and the command that reproduces each
row, and with ``--readme`` writes it between the ``ablation:begin`` and ``ablation:end``
markers of README.md (``--block learning-curve``: between ``learning-curve:begin`` and
``learning-curve:end``, for the rows of ``models/recipes/learning-curve``, which differ only in
how many songs train).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..models.data.datasets import musdb_tracks
from ..models.evaluation.evaluate import format_db
from ..models.evaluation.scoreboard import System, score
from ..models.families.checkpoint import load_checkpoint
from ..models.training.train import TrainConfig
from ..realtime.errors import UserError
from .onnx_export import export_onnx


def markers(block: str) -> tuple[str, str]:
    """The comments that enclose a table of README.md."""
    return f"<!-- {block}:begin -->", f"<!-- {block}:end -->"


DEFAULT_RECIPES = Path(__file__).parents[1] / "models" / "recipes" / "ablation"


def train_run(config: TrainConfig, run: Path) -> None:
    """Train ``config`` into ``run`` in a process of its own (resumed, or skipped when done).

    Each run trains in a process of its own: training keeps its heap for reuse (see
    ``train.keep_freed_memory``), so rows run one after another in one process held the
    memory of all of them (13 GB by the second row).
    """
    command = [
        sys.executable,
        "-m",
        "livestems.models.training.command",
        "--out",
        str(run),
        "--no-progress",
    ]
    if (run / "last.pt").exists():
        loop = load_checkpoint(run / "last.pt")[1]["loop"]
        done = loop["epoch"] >= config.epochs or loop["stopped_early"]
        command = [] if done else [*command, "--resume"]
    else:
        run.parent.mkdir(parents=True, exist_ok=True)
        config_file = run.parent / f"{run.name}.config.json"
        config_file.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        command += ["--config", str(config_file)]
    if command and subprocess.run(command).returncode != 0:
        raise UserError(f"Training {run.name} failed (its output is above).")


def run_row(recipe: Path, runs: Path, musdb: str | None) -> Path:
    """Train (or finish) one row's run and export it; returns the model file.

    A row with a recipe of the same name under ``pretrain/`` (item 4: pre-training on songs
    rendered from MIDI) first trains that into ``RUNS/NAME.pretrain``, then starts the row's own
    run from its ``best.pt`` (``init``): the row's budget in batches is the fine-tuning's.
    """
    config = TrainConfig.from_file(recipe)
    if musdb:
        config = TrainConfig.from_dict({**config.to_dict(), "musdb": musdb})
    pretrain = recipe.parent / "pretrain" / recipe.name
    if pretrain.exists():
        first = runs / f"{recipe.stem}.pretrain"
        train_run(TrainConfig.from_file(pretrain), first)
        config = TrainConfig.from_dict({**config.to_dict(), "init": str(first / "best.pt")})
    run = runs / recipe.stem
    train_run(config, run)
    model_file = runs / f"{recipe.stem}.onnx"
    best = run / "best.pt"
    if not model_file.exists() or model_file.stat().st_mtime < best.stat().st_mtime:
        separator, _ = load_checkpoint(best)
        export_onnx(separator, model_file, training_data="MUSDB18-7 train split (ablation)")
    state = load_checkpoint(run / "last.pt")[1]["loop"]
    print(
        f"{recipe.stem}: {state['step']} batches, best validation loss "
        f"{state['best_valid_loss']:.5f}",
        flush=True,
    )
    return model_file


def replace_block(
    text: str, block: str, lines: list[str], names: set[str], recipes: str | os.PathLike[str]
) -> str:
    """``text`` with the table between ``block``'s markers replaced by ``lines``.

    Rows not run this time (``--only``) keep the line the README has for them, so that one new
    row does not mean retraining every other one, as long as their recipe still exists.
    """
    begin, end = markers(block)
    if begin not in text or end not in text:
        raise UserError(f"The README has no {begin} ... {end} block to write the table into.")
    kept = [
        line
        for line in text.split(begin, 1)[1].split(end, 1)[0].splitlines()
        if (name := line.split("|")[1].strip() if line.count("|") > 2 else "")
        and name not in names
        and (Path(recipes) / f"{name}.json").exists()
    ]
    rows = sorted([*lines[2:], *kept], key=lambda line: line.split("|")[1].strip())
    table = f"{begin}\n" + "\n".join([*lines[:2], *rows]) + f"\n{end}"
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: table, text, flags=re.S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livestems.export.ablation")
    parser.add_argument("--runs", required=True, help="a folder for the runs and model files")
    parser.add_argument("--recipes", default=str(DEFAULT_RECIPES))
    parser.add_argument("--musdb", default=os.environ.get("LIVESTEMS_MUSDB"))
    parser.add_argument(
        "--only", nargs="*", help="run only these rows (--readme keeps the others' lines)"
    )
    parser.add_argument("--readme", help="replace the ablation block of this README")
    parser.add_argument("--block", default="ablation", help="the README block's marker name")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="scoring processes")
    args = parser.parse_args(argv)
    try:
        recipes = sorted(Path(args.recipes).glob("*.json"))
        if not recipes:
            raise UserError(f"{args.recipes} holds no recipes (*.json).")
        if args.readme:  # found out now, not after hours of training
            replace_block(Path(args.readme).read_text(), args.block, [], set(), args.recipes)
        runs = Path(args.runs)
        models = {}
        for recipe in recipes:
            if args.only and recipe.stem not in args.only:
                if (runs / f"{recipe.stem}.onnx").exists():
                    models[recipe.stem] = runs / f"{recipe.stem}.onnx"
                continue
            models[recipe.stem] = run_row(recipe, runs, args.musdb)
        musdb = args.musdb or TrainConfig.from_file(recipes[0]).musdb
        if musdb is None:
            raise UserError("Give --musdb PATH (or set LIVESTEMS_MUSDB) to score the rows.")
        systems = [System(name, "model", "", str(path)) for name, path in models.items()]
        results = score(systems, musdb_tracks(musdb, "valid"), jobs=max(1, args.jobs))
    except UserError as error:
        print(f"ablation: {error}", file=sys.stderr)
        return 1
    stems = next(iter(results.values())).stems
    lines = [
        "| row | " + " | ".join(stems) + " | mean | command |",
        "|---|" + "---:|" * (len(stems) + 1) + "---|",
    ]
    for name, result in results.items():
        medians = [result.aggregate(stem, "SDR") for stem in stems]
        mean = result.mean_over_stems("SDR")
        recipe = Path(args.recipes) / f"{name}.json"
        command = (
            f"`livestems train --config {os.path.relpath(recipe)} --out RUN` + export + "
            "`livestems eval`"
        )
        pretrain = recipe.parent / "pretrain" / recipe.name
        if pretrain.exists():
            command = (
                f"`livestems train --config {os.path.relpath(pretrain)} --out PRE`, then "
                + command.replace("--out RUN`", "--init PRE/best.pt --out RUN`")
            )
        cells = " | ".join(format_db(m) for m in medians)
        lines.append(f"| {name} | {cells} | {format_db(mean)} | {command} |")
    table = "\n".join(lines)
    print(table)
    if args.readme:
        readme = Path(args.readme)
        text = replace_block(readme.read_text(), args.block, lines, set(results), args.recipes)
        readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
