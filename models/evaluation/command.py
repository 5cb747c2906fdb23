"""``livestems eval``: a model's scores on MUSDB18 through the streaming path, and the ceiling.

``livestems eval MODEL --musdb PATH --split valid`` runs the ONNX file through the stream
processor, as a user hears it, and scores its stems with museval's BSSEval v4 and SI-SDR
(``evaluate.py`` says how). ``--oracle`` adds the ideal ratio mask at the model's preset and
front end (the ceiling), ``--baseline mixture`` the mixture as every stem (the floor); either
works without a MODEL (``--preset``, ``--bands`` say which front end the oracle uses).

Prints a line per track on stderr, then a Markdown table per estimator on stdout; ``--json``
writes every figure (per track, per stem, per frame, aggregates) under ``results``, the first
estimator's aggregates (the model's, when there is one) also at the top as ``stems`` and
``mean``, with the model file's name and metadata digest, the preset, the split, the tracks
and museval's version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...realtime import arguments
from ...realtime.commands.command import Command, version
from ...realtime.dsp.presets import PRESETS
from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ...realtime.runtime.catalog import resolve_model
from ...realtime.runtime.model_metadata import METADATA_KEY
from ...realtime.runtime.onnx_model import OnnxHopModel
from ..data.datasets import SAMPLE_RATE, STEMS, musdb_tracks
from .evaluate import (
    Estimator,
    EvalResult,
    TrackScores,
    check_model_fits,
    evaluate_estimators,
    mixture_estimator,
    museval_version,
    oracle_estimator,
    streaming_estimator,
)

MUSDB_VARIABLE = "LIVESTEMS_MUSDB"
BASELINES = ("mixture",)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="an .onnx model file, or the name of one that 'livestems models' lists",
    )
    parser.add_argument(
        "--musdb",
        metavar="PATH",
        default=os.environ.get(MUSDB_VARIABLE),
        help=f"the MUSDB18 folder that holds train/ (default: ${MUSDB_VARIABLE})",
    )
    parser.add_argument("--split", default="valid", help="train, valid or test (default: valid)")
    parser.add_argument(
        "--tracks",
        type=arguments.whole_number(1, 10**6),
        metavar="N",
        help="score only the split's first N tracks",
    )
    parser.add_argument(
        "--seconds",
        type=arguments.seconds(),
        metavar="S",
        help="score only the first S seconds of each track (quick checks)",
    )
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="also score the ideal ratio mask at the same preset and front end (the ceiling)",
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        action="append",
        default=[],
        help="also score a baseline: mixture (the mix as every stem)",
    )
    parser.add_argument(
        "--preset",
        help=f"the oracle's preset without a MODEL ({', '.join(PRESETS)}; default: live)",
    )
    parser.add_argument(
        "--bands",
        type=int,
        default=None,
        metavar="K",
        help="the oracle's PQMF subbands without a MODEL (default: 1, the full-band STFT)",
    )
    arguments.add_provider_option(parser)
    parser.add_argument(
        "--threads", type=arguments.threads, default=1, help="onnxruntime CPU threads (default: 1)"
    )
    parser.add_argument("--json", metavar="OUT.json", help="write every figure as JSON")
    parser.add_argument("--markdown", metavar="OUT.md", help="write the tables as Markdown")


def _metadata_digest(model: OnnxHopModel) -> str:
    text = model.session.get_modelmeta().custom_metadata_map[METADATA_KEY]
    return hashlib.sha256(text.encode()).hexdigest()


def _check_arguments(args: argparse.Namespace) -> None:
    if args.model is None and not args.oracle and not args.baseline:
        raise UserError("Give a MODEL to score, or --oracle or --baseline mixture (or both).")
    if args.tracks is not None and args.tracks < 1:
        raise UserError(f"--tracks must be at least 1, got {args.tracks}.")
    if args.seconds is not None and not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UserError(f"--seconds must be a positive number, got {args.seconds}.")
    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}.")
    if args.preset is not None and args.preset not in PRESETS:
        raise UserError(f"Unknown preset {args.preset!r}: choose one of {', '.join(PRESETS)}.")
    if args.bands is not None and args.bands not in (1, 2, 4, 8):
        raise UserError(f"--bands must be 1, 2, 4 or 8, got {args.bands}.")
    if args.musdb is None:
        raise UserError(
            f"No MUSDB18 folder: give --musdb PATH or set {MUSDB_VARIABLE} to the folder that "
            "holds train/."
        )
    if not Path(args.musdb).is_dir():
        raise UserError(f'The MUSDB18 folder "{args.musdb}" does not exist.')


def _progress_line(
    index: int, n_tracks: int, name: str, on_track: Mapping[str, TrackScores]
) -> None:
    parts = []
    for estimator, scores in on_track.items():
        sdrs = [scores.median(stem, "SDR") for stem in scores.stems]
        finite = [value for value in sdrs if math.isfinite(value)]
        mean = f"{sum(finite) / len(finite):.2f}" if finite else "n/a"
        parts.append(f"{estimator} {mean} ({scores.wall_s:.1f} s)")
    seconds = next(iter(on_track.values())).n_samples / SAMPLE_RATE if on_track else 0.0
    print(
        f"[{index + 1}/{n_tracks}] {name} ({seconds:.1f} s): mean SDR " + ", ".join(parts),
        file=sys.stderr,
        flush=True,
    )


def _markdown(results: Mapping[str, EvalResult], titles: Mapping[str, str], header: str) -> str:
    sections = [header]
    for name, result in results.items():
        sections.append(f"### {titles[name]}\n\n{result.markdown_table()}")
    return "\n\n".join(sections) + "\n"


def _run(args: argparse.Namespace) -> int:
    _check_arguments(args)
    estimators: dict[str, Estimator] = {}
    titles: dict[str, str] = {}
    model_info: dict[str, Any] | None = None
    preset_name = args.preset or "live"
    n_bands = args.bands or 1
    if args.model is not None:
        model = resolve_model(args.model, args.provider, cpu_threads=args.threads)
        model.verify_golden()
        meta = model.metadata
        check_model_fits(model, STEMS, meta.sample_rate)
        if args.preset is not None and args.preset != meta.preset.name:
            raise UserError(
                f'Model "{model.path}" runs preset {meta.preset.name!r}: leave out --preset '
                "(the oracle is scored at the model's preset)."
            )
        if args.bands is not None and args.bands != meta.n_bands:
            raise UserError(
                f'Model "{model.path}" has {meta.n_bands} band(s): leave out --bands '
                "(the oracle uses the model's front end)."
            )
        preset_name, n_bands = meta.preset.name, meta.n_bands
        estimators["model"] = streaming_estimator(model)
        titles["model"] = (
            f"model {model.path.name} ({meta.family}, {preset_name}, streaming, {model.provider})"
        )
        model_info = {
            "file": model.path.name,
            "path": str(model.path),
            "metadata_sha256": _metadata_digest(model),
            "family": meta.family,
            "stems": list(meta.stems),
            "latency_samples": meta.latency_samples,
            "training_data": meta.training_data,
            "provider": model.provider,
        }
    front_end = "STFT" if n_bands == 1 else f"PQMF {n_bands} bands, then STFT"
    if args.oracle:
        estimators["oracle"] = oracle_estimator(preset_name, n_bands)
        titles["oracle"] = f"oracle: ideal ratio mask ({preset_name}, {front_end})"
    for baseline in dict.fromkeys(args.baseline):
        estimators[baseline] = mixture_estimator()
        titles[baseline] = "baseline: the mixture as every stem"

    refs = musdb_tracks(args.musdb, args.split)
    if args.tracks is not None:
        refs = refs[: args.tracks]
    started = time.perf_counter()
    results = evaluate_estimators(
        estimators, refs, max_seconds=args.seconds, progress=_progress_line
    )
    wall_s = time.perf_counter() - started

    names = [ref.name for ref in refs]
    span = f", first {args.seconds:g} s of each" if args.seconds else ""
    header = (
        f"MUSDB18 {args.split}, {len(names)} tracks{span}; preset {preset_name}. museval "
        f"{museval_version()} BSSEval v4 (1 s windows, median over frames, then over tracks), "
        "SI-SDR over whole tracks; frames excluded: silent windows, left out of the medians."
    )
    markdown = _markdown(results, titles, header)
    print(markdown, end="")
    print(f"Scored {len(names)} tracks in {wall_s:.1f} s.", file=sys.stderr)
    per_estimator = {
        name: {"title": titles[name], **result.to_dict()} for name, result in results.items()
    }
    # The headline at the top: the first estimator's aggregates (the model's, when there is
    # one); every estimator's, per track and per window, are under "results".
    headline = next(iter(per_estimator))
    report = {
        "livestems_version": version(),
        "museval_version": museval_version(),
        "metrics": "BSSEval v4 (museval.evaluate), median over frames then tracks; SI-SDR",
        "window_s": 1.0,
        "hop_s": 1.0,
        "musdb": str(args.musdb),
        "split": args.split,
        "tracks": names,
        "seconds_per_track": args.seconds,
        "preset": preset_name,
        "n_bands": n_bands,
        "model": model_info,
        "wall_s": round(wall_s, 3),
        "scored": headline,
        "stems": per_estimator[headline]["stems"],
        "mean": per_estimator[headline]["mean"],
        "results": per_estimator,
    }
    _write(args.json, json.dumps(report, indent=1) + "\n")
    _write(args.markdown, markdown)
    return 0


def _write(path: str | None, text: str) -> None:
    if path is None:
        return
    try:
        with atomic_write(path) as handle:
            handle.write(text.encode())
    except OSError as error:
        raise UserError(f'Cannot write "{path}" ({error.strerror or error}).') from error


COMMAND = Command(
    help="score a model on MUSDB18 through the streaming path (needs the 'train' extra)",
    configure=_configure,
    run=_run,
)
