"""The Markdown model card beside a bundled model: what it is, what it was trained on, what it
scores, what it costs, and the terms of its weights.

    python -m livestems.export.model_card realtime/bundled/lstm-live.onnx \\
        --recipe models/recipes/lstm-live.json --log models/recipes/lstm-live.log.jsonl \\
        --scores models/recipes/scores-valid.json

(``--pretrain-recipe`` and ``--pretrain-log`` where the recipe's ``init`` is a pre-training's
``best.pt``; repeated, earliest first, for a chain of runs.)

Everything in the card is read from files, never typed in: the ONNX file's own metadata (family,
configuration, preset, measured latency, parameters, precision, training data, licence), the
training recipe and its per-epoch log, and the scoreboard's JSON
(``models/evaluation/scoreboard.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..realtime.errors import UserError
from ..realtime.io.atomic_file import atomic_write
from ..realtime.runtime.onnx_model import OnnxHopModel

MUSDB_TERMS = (
    "The weights were trained on MUSDB18 (the 7-second previews of its train split), whose "
    "tracks carry Creative Commons BY-NC-SA licences for non-commercial research: the weights "
    "inherit those terms. Use them for non-commercial research and practice only, and credit "
    "MUSDB18 (Rafii et al., 2017, doi:10.5281/zenodo.1117372). livestems' code is MIT."
)


def _scores_section(scores: dict[str, Any], model_file: str) -> list[str]:
    systems = scores["systems"]
    mine = [name for name in systems if f"`{model_file}`" in name]
    if not mine:
        return []
    rows = [mine[0]] + [n for n in systems if systems[n]["kind"] in ("oracle", "umx", "mixture")]
    stems = list(systems[mine[0]]["stems"])
    lines = [
        "## Scores",
        "",
        f"MUSDB18-7 `{scores['split']}` split ({len(scores['tracks'])} tracks never trained on), "
        f"museval {scores['museval_version']} BSSEval v4, SDR in dB (median over 1 s frames, "
        "then over tracks); through the streaming path, as you hear it.",
        "",
        "| system | " + " | ".join(stems) + " | mean |",
        "|---|" + "---:|" * (len(stems) + 1),
    ]
    for name in rows:
        system = systems[name]
        cells = [system["stems"][stem]["SDR"] for stem in stems]
        mean = system["mean"]["SDR"]
        lines.append(
            f"| {name} | "
            + " | ".join("n/a" if v is None else f"{v:.2f}" for v in cells)
            + f" | {'n/a' if mean is None else f'{mean:.2f}'} |"
        )
    return [*lines, ""]


def _log_summary(log: Path, selected_by_sdr: bool) -> str:
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not records:
        return ""
    seconds = sum(r["seconds"] for r in records)
    if selected_by_sdr:
        best = records[-1]["best_epoch"]
        kept = (
            f"best validation SDR {records[-1]['best_valid_sdr']:.2f} dB (a plain SDR over 1 s "
            f"frames, aggregated as the scores) at epoch {best}"
        )
    else:
        record = min(records, key=lambda r: r["valid_loss"])
        kept = f"best validation loss {record['valid_loss']:.4f} at epoch {record['epoch']}"
    return (
        f"{len(records)} epochs ({records[-1]['step']} batches, {seconds / 3600:.1f} h on this "
        f"project's 2-core CPU, no GPU); {kept}"
    )


def _training_section(
    recipe: Path | None,
    log: Path | None,
    pretrain_recipes: Sequence[Path] = (),
    pretrain_logs: Sequence[Path] = (),
) -> list[str]:
    """How the weights were made: the recipe and its log, and where the recipe starts from
    another run's weights (its ``init``), the earlier runs' recipes and logs too, earliest
    first, each run's weights (its ``best.pt``, or its kept export where the ``init`` is an ONNX
    file) the next one's ``init``."""
    lines = ["## Training", ""]
    values: dict[str, Any] = json.loads(recipe.read_text()) if recipe is not None else {}
    init = values.get("init")
    if recipe is not None:
        # each step: its command and what the card says of it in parentheses
        steps: list[tuple[str, list[str]]] = [
            (f"`livestems train --config {recipe.as_posix()} --out RUN`", [])
        ]
        follower = init
        for earlier in reversed(pretrain_recipes):
            if not follower:
                break
            if Path(follower).suffix == ".onnx":
                # the next run started from a shipped export, rebuilt in torch (its run kept no
                # checkpoint); the file is kept, since exports made now fold the batch norms
                # and --init cannot read those back
                step = (
                    f"`livestems train --config {earlier.as_posix()} --out runs/{earlier.stem}`",
                    [f"its float16 export is kept as `{follower}`, the next run's `init`"],
                )
            else:
                out = Path(follower).parent.as_posix()
                step = (f"`livestems train --config {earlier.as_posix()} --out {out}`", [])
            steps.insert(0, step)
            follower = json.loads(earlier.read_text()).get("init")
        if len(steps) > 1 and steps[0][1]:
            steps[0][1].append("the pre-training")
        elif len(steps) > 1:
            steps[0][1].append("the pre-training; each run's `best.pt` is the next one's `init`")
        elif init:
            steps[0][1].append(f"it starts from the weights of `{init}`, its `init`")
        commands = [
            f"{command} ({'; '.join(notes)})" if notes else command for command, notes in steps
        ]
        lines += [
            f"Reproduce with {', then '.join(commands)}, then `livestems export RUN/best.pt "
            "--float16 -o MODEL.onnx`. The recipe:",
            "",
            "```json",
            recipe.read_text().strip(),
            "```",
            "",
        ]
    # The logs may be left out (main() refuses a count that differs otherwise).
    pairs = zip(pretrain_recipes, pretrain_logs, strict=False)
    for index, (earlier, earlier_log) in enumerate(pairs):
        by_sdr = json.loads(earlier.read_text()).get("select_by") == "sdr"
        summary = _log_summary(earlier_log, selected_by_sdr=by_sdr)
        if summary:
            lead = "Pre-trained" if index == 0 else f"Then trained by `{earlier.as_posix()}`"
            lines += [f"{lead} for {summary}; the log: `{earlier_log.as_posix()}`.", ""]
    if log is not None:
        summary = _log_summary(log, selected_by_sdr=values.get("select_by") == "sdr")
        if summary:
            lines += [
                f"Trained for {summary} (this file). The per-epoch log: `{log.as_posix()}`.",
                "",
            ]
    return lines


def _members_section(
    member_recipes: Sequence[Path], member_logs: Sequence[Path], weights: Sequence[float] = ()
) -> list[str]:
    """How an ensemble's weights were made: each member's last run (its recipe, where that run
    started, its log), then the command that puts their ``best.pt`` files in one model, with
    the members' weights in the mean (``weights``; none: all alike)."""
    mean = "mean"
    weights_option = ""
    if weights:
        ratio = " : ".join(f"{weight:g}" for weight in weights)
        mean = f"weighted mean ({ratio}, in member order)"
        weights_option = " --weights " + " ".join(f"{weight:g}" for weight in weights)
    lines = [
        "## Training",
        "",
        f"The {mean} of the masks of these networks, each trained apart:",
        "",
    ]
    runs = []
    for index, (recipe, log) in enumerate(zip(member_recipes, member_logs, strict=True)):
        values = json.loads(recipe.read_text())
        run = f"RUN{index}"
        runs.append(f"{run}/best.pt")
        start = f", starting from `{values['init']}`" if values.get("init") else ""
        summary = _log_summary(log, selected_by_sdr=values.get("select_by") == "sdr")
        lines.append(
            f"- member {index} (`{values['family']}`, model settings "
            f"{json.dumps(values.get('model', {}), sort_keys=True)}): `livestems train --config "
            f"{recipe.as_posix()} --out {run}`{start}; trained for {summary}; the log: "
            f"`{log.as_posix()}`."
        )
    lines += [
        "",
        f"Then `python -m livestems.models.families.ensemble {' '.join(runs)}{weights_option} "
        "-o ENSEMBLE.pt` "
        "and `livestems export ENSEMBLE.pt --float16 -o MODEL.onnx`.",
        "",
    ]
    return lines


def model_card_markdown(
    model_path: Path,
    recipe: Path | None = None,
    log: Path | None = None,
    scores: dict[str, Any] | None = None,
    pretrain_recipes: Sequence[Path] = (),
    pretrain_logs: Sequence[Path] = (),
    member_recipes: Sequence[Path] = (),
    member_logs: Sequence[Path] = (),
) -> str:
    meta = OnnxHopModel(model_path, provider="cpu").metadata
    preset = meta.preset
    size_mb = model_path.stat().st_size / 1e6
    front_end = f"PQMF ({meta.n_bands} bands), then STFT" if meta.n_bands > 1 else "STFT"
    lines = [
        f"# {model_path.stem}",
        "",
        f"A causal `{meta.family}` separator (vocals, drums, bass, other) for livestems' "
        "real-time engine: every output sample depends on the past only.",
        "",
        "| | |",
        "|---|---|",
        f"| file | `{model_path.name}`, {size_mb:.1f} MB, {meta.precision} |",
        f"| family | `{meta.family}`: {json.dumps(meta.config, sort_keys=True)} |",
        f"| stems | {', '.join(meta.stems)} ({meta.mask} masks) |",
        f"| preset | `{preset.name}`: analysis window {preset.n_fft}, hop {preset.hop}, "
        f"synthesis window {preset.synthesis_length}, {meta.sample_rate} Hz, {front_end} |",
        f"| algorithmic latency | {meta.latency_samples} samples = {meta.latency_ms:.2f} ms "
        "(measured with an impulse through the streaming path) |",
        f"| parameters | {meta.parameters:,} |",
        f"| training data | {meta.training_data} |",
        f"| licence of the weights | {meta.licence} |",
        "",
    ]
    if scores is not None:
        lines += _scores_section(scores, model_path.stem)
    if member_recipes:
        lines += _members_section(member_recipes, member_logs, meta.config.get("weights", ()))
    else:
        lines += _training_section(recipe, log, pretrain_recipes, pretrain_logs)
    lines += ["## Terms", "", MUSDB_TERMS, ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livestems.export.model_card")
    parser.add_argument("model", help="the .onnx file; the card is written beside it (.md)")
    parser.add_argument("--recipe", help="the training configuration")
    parser.add_argument("--log", help="the training run's log.jsonl")
    parser.add_argument("--scores", help="the scoreboard's JSON")
    parser.add_argument(
        "--pretrain-recipe",
        action="append",
        default=[],
        help="the recipe of the run the recipe's init is (repeated for a chain, earliest first)",
    )
    parser.add_argument(
        "--pretrain-log", action="append", default=[], help="that run's log.jsonl (the same order)"
    )
    parser.add_argument(
        "--member-recipe",
        action="append",
        default=[],
        help="an ensemble's member: the recipe of its last run (repeated, in member order)",
    )
    parser.add_argument(
        "--member-log", action="append", default=[], help="that run's log.jsonl (the same order)"
    )
    args = parser.parse_args(argv)
    if len(args.member_log) != len(args.member_recipe):
        print("model_card: give one --member-log per --member-recipe.", file=sys.stderr)
        return 1
    if args.member_recipe and (args.recipe or args.pretrain_recipe):
        print(
            "model_card: an ensemble's card takes --member-recipe, not --recipe or "
            "--pretrain-recipe.",
            file=sys.stderr,
        )
        return 1
    if args.pretrain_log and len(args.pretrain_log) != len(args.pretrain_recipe):
        print("model_card: give one --pretrain-log per --pretrain-recipe.", file=sys.stderr)
        return 1
    try:
        model_path = Path(args.model)
        scores = json.loads(Path(args.scores).read_text()) if args.scores else None
        card = model_card_markdown(
            model_path,
            Path(args.recipe) if args.recipe else None,
            Path(args.log) if args.log else None,
            scores,
            [Path(path) for path in args.pretrain_recipe],
            [Path(path) for path in args.pretrain_log],
            [Path(path) for path in args.member_recipe],
            [Path(path) for path in args.member_log],
        )
    except (UserError, OSError, ValueError) as error:
        print(f"model_card: {error}", file=sys.stderr)
        return 1
    except KeyError as error:
        print(f"model_card: a log or recipe lacks the field {error}.", file=sys.stderr)
        return 1
    with atomic_write(model_path.with_suffix(".md")) as file:
        file.write(card.encode())
    print(f"wrote {model_path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
