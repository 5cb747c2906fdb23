"""The scores table of README.md, from one command.

    python -m livestems.models.evaluation.scoreboard --musdb ../shared/data/musdb18-7 \\
        --umx runs/umx-offline/best.pt --readme README.md

scores, on the same tracks (MUSDB18's validation split by default) and with the same museval
BSSEval v4 aggregation as ``livestems eval`` (median over 1 s frames, then over tracks):

- every bundled model, and any other model file given with ``--model``, through the streaming
  path (the ONNX file as a user hears it), with its parameters and its compute per hop (p50 and
  p99 of the stream processor's hop on one core in onnxruntime, measured in the same run);
- the ideal ratio mask at each bundled model's preset and front end (the ceiling of a mask on
  that frame geometry);
- the offline Open-Unmix baseline (``umx`` family, a checkpoint of ``livestems train``), run
  in torch on the whole song at once, when ``--umx`` is given;
- the mixture as every stem's estimate (the floor).

It writes the table (Markdown), every figure (JSON), and with ``--readme`` replaces the block
between the ``scores:begin`` and ``scores:end`` markers in README.md, so that the README's
table is always this command's output. Tracks are scored in parallel processes (``--jobs``):
BSSEval v4 is the slow part.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ...realtime.benchmarks.bench import time_hops
from ...realtime.engine.processor import StreamProcessor
from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ...realtime.runtime.catalog import model_files
from ...realtime.runtime.onnx_model import OnnxHopModel
from ..data.datasets import TrackRef, cache_dir, musdb_tracks
from .evaluate import (
    Estimator,
    EvalResult,
    TrackScores,
    evaluate_estimators,
    format_db,
    mixture_estimator,
    oracle_estimator,
    streaming_estimator,
    torch_estimator,
)

BEGIN, END = "<!-- scores:begin -->", "<!-- scores:end -->"
# Bump when TrackScores or the scoring changes: old cache entries are ignored. 2: references
# in float32 (no longer the decode cache's float16).
SCORES_FORMAT = 3
# Hops timed per model for the table's compute columns: about a second for a small model, and
# a p99 that rests on 20 hops.
TIMED_HOPS = 2000


@dataclass(frozen=True)
class System:
    """One row of the table: how to build its estimator in a worker process.

    Attributes:
        name: the row's label.
        kind: ``model`` (ONNX, streaming), ``oracle``, ``umx`` (torch checkpoint), ``mixture``.
        path: the model file or checkpoint.
        preset, n_bands: the oracle's geometry.
        latency: what a listener waits for this system's output, for the table.
    """

    name: str
    kind: str
    latency: str
    path: str | None = None
    preset: str = "live"
    n_bands: int = 1

    def estimator(self) -> Estimator:
        if self.kind == "model":
            assert self.path is not None
            return streaming_estimator(self.path, provider="cpu")
        if self.kind == "oracle":
            return oracle_estimator(self.preset, self.n_bands)
        if self.kind == "umx":
            from ..families.checkpoint import load_checkpoint

            assert self.path is not None
            module, _ = load_checkpoint(self.path)
            return torch_estimator(module.eval())
        return mixture_estimator()


@dataclass(frozen=True)
class Compute:
    """A model file's size and its cost per hop, for the table.

    Attributes:
        parameters: the weights in the file.
        hop_p50_ms, hop_p99_ms: the stream processor's time for one hop (front end, model,
            synthesis), median and 99th percentile over ``TIMED_HOPS`` hops, onnxruntime on one
            core.
        hop_ms: the hop's duration, the budget those are a share of.
    """

    parameters: int
    hop_p50_ms: float
    hop_p99_ms: float
    hop_ms: float


def measure_compute(path: str | os.PathLike[str], n_hops: int = TIMED_HOPS) -> Compute:
    """Parameters and per-hop compute of a model file, as ``livestems bench`` times a hop."""
    model = OnnxHopModel(path, provider="cpu", cpu_threads=1)
    meta = model.metadata
    processor = StreamProcessor.for_model(model)
    processor.prepare(meta.sample_rate, meta.preset.hop)
    p50, p99 = np.percentile(time_hops(processor, n_hops), [50, 99])
    return Compute(
        meta.parameters, float(p50), float(p99), 1000 * meta.preset.hop / meta.sample_rate
    )


def systems_for(umx_checkpoint: str | None, models: Sequence[str] = ()) -> list[System]:
    """The table's rows: the bundled models and ``models`` (other model files), each followed
    by the ideal ratio mask at its geometry the first time that geometry comes, then the
    offline baseline and the mixture."""
    systems = []
    files = [(path, "bundled") for origin, path in model_files() if origin == "bundled"]
    files += [(Path(path), "not bundled") for path in models]
    for path, where in files:
        model = OnnxHopModel(path, provider="cpu")
        meta = model.metadata
        latency_ms = 1000 * meta.latency_samples / meta.sample_rate
        bands = f", K={meta.n_bands}" if meta.n_bands > 1 else ""
        systems.append(
            System(f"`{path.stem}` ({where})", "model", f"{latency_ms:.1f} ms", str(path))
        )
        oracle_name = f"ideal ratio mask, `{meta.preset.name}` preset{bands}"
        if all(s.name != oracle_name for s in systems):
            systems.append(
                System(
                    oracle_name,
                    "oracle",
                    f"{latency_ms:.1f} ms",
                    preset=meta.preset.name,
                    n_bands=meta.n_bands,
                )
            )
    if umx_checkpoint is not None:
        systems.append(
            System("Open-Unmix, offline (`umx`, same data and budget)", "umx", "whole song",
                   umx_checkpoint)
        )  # fmt: skip
    systems.append(System("mixture as every stem", "mixture", "0 ms"))
    return systems


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_entry(system: System, ref: TrackRef) -> Path:
    """Where one system's scores on one track are kept: keyed by what determines them (the
    model file's bytes, or the oracle's geometry), the track file and museval's version."""
    what = _file_digest(system.path) if system.path else f"{system.kind}|{system.preset}"
    stat = ref.path.stat()
    key = (
        f"{what}|{system.n_bands}|{ref.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|"
        f"{metadata.version('museval')}|{SCORES_FORMAT}"
    )
    return cache_dir() / "scores" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.pickle"


def _score_part(
    job: tuple[list[System], list[TrackRef], bool],
) -> dict[str, list[TrackScores]]:
    systems, refs, use_cache = job
    estimators: dict[str, Estimator] = {}
    scores: dict[str, list[TrackScores]] = {system.name: [] for system in systems}
    for ref in refs:
        missing = []
        for system in systems:
            entry = _cache_entry(system, ref)
            if use_cache and entry.exists():
                with open(entry, "rb") as file:
                    scores[system.name].append(pickle.load(file))
            else:
                missing.append(system)
        if not missing:
            continue
        for system in missing:
            if system.name not in estimators:
                estimators[system.name] = system.estimator()
        results = evaluate_estimators({s.name: estimators[s.name] for s in missing}, [ref])
        for system in missing:
            track_scores = results[system.name].tracks[0]
            scores[system.name].append(track_scores)
            with atomic_write(_cache_entry(system, ref)) as file:
                pickle.dump(track_scores, file)
    return scores


def score(
    systems: Sequence[System], refs: Sequence[TrackRef], jobs: int, use_cache: bool = True
) -> dict[str, EvalResult]:
    """Every system on every track, the tracks split over ``jobs`` processes. Scores already
    computed for the same model bytes (or oracle geometry) and track are read back from the
    cache, so re-running after one model changed scores only that model."""
    parts = [list(refs[index::jobs]) for index in range(jobs) if refs[index::jobs]]
    work = [(list(systems), part, use_cache) for part in parts]
    if len(work) == 1:
        merged = [_score_part(work[0])]
    else:
        with multiprocessing.get_context("fork").Pool(len(work)) as pool:
            merged = pool.map(_score_part, work)
    order = {ref.name: index for index, ref in enumerate(refs)}
    results = {}
    for system in systems:
        tracks = [t for part in merged for t in part[system.name]]
        tracks.sort(key=lambda t: order[t.name])
        stems = tracks[0].stems
        results[system.name] = EvalResult(stems, tuple(tracks))
    return results


def markdown(
    results: dict[str, EvalResult],
    systems: Sequence[System],
    caption: str,
    compute: dict[str, Compute] | None = None,
) -> str:
    """The table; with ``compute``, two more columns for the rows it has (models): parameters,
    and p50 / p99 per hop with the p99's share of the hop."""
    stems = next(iter(results.values())).stems
    header = (
        "| system | latency | "
        + " | ".join(f"{stem} SDR" for stem in stems)
        + " | **mean SDR** | mean SI-SDR |"
    )
    rule = "|---|---:|" + "---:|" * (len(stems) + 2)
    if compute is not None:
        header += " parameters | per hop p50 / p99 |"
        rule += "---:|---:|"
    lines = [header, rule]
    for system in systems:
        result = results[system.name]
        cells = [format_db(result.aggregate(stem, "SDR")) for stem in stems]
        line = (
            f"| {system.name} | {system.latency} | {' | '.join(cells)} | "
            f"**{format_db(result.mean_over_stems('SDR'))}** | "
            f"{format_db(result.mean_over_stems('SI-SDR'))} |"
        )
        if compute is not None:
            cost = compute.get(system.name)
            if cost is None:
                line += " | |"
            else:
                share = cost.hop_p99_ms / cost.hop_ms
                line += (
                    f" {cost.parameters:,} | {cost.hop_p50_ms:.2f} / {cost.hop_p99_ms:.2f} ms "
                    f"({share:.2f} of the hop) |"
                )
        lines.append(line)
    return caption + "\n\n" + "\n".join(lines) + "\n"


def carry_rows(
    previous: Path, refs: Sequence[TrackRef], kinds: Sequence[str]
) -> list[tuple[System, EvalResult]]:
    """Rows of ``kinds`` from an earlier run's JSON, when it scored the same tracks with the
    same museval; one sentence otherwise."""
    try:
        payload = json.loads(previous.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot read the previous scores {previous}: {error}.") from None
    if payload.get("tracks") != [ref.name for ref in refs]:
        raise UserError(f"{previous} scored other tracks: its rows cannot be carried over.")
    if payload.get("museval_version") != metadata.version("museval"):
        raise UserError(f"{previous} was scored with another museval: rerun its systems.")
    rows = []
    for name, values in payload["systems"].items():
        if values["kind"] in kinds:
            system = System(name, values["kind"], values["latency"])
            rows.append((system, EvalResult.from_dict(values)))
    return rows


def replace_block(readme: Path, block: str) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise UserError(f"{readme} has no {BEGIN} ... {END} block to put the table in.")
    new = pattern.sub(lambda _: f"{BEGIN}\n{block}{END}", text)
    with atomic_write(readme) as file:
        file.write(new.encode())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livestems.models.evaluation.scoreboard")
    parser.add_argument("--musdb", default=os.environ.get("LIVESTEMS_MUSDB"))
    parser.add_argument("--split", default="valid")
    parser.add_argument("--tracks", type=int, help="only the split's first N tracks")
    parser.add_argument("--umx", help="a checkpoint of the offline Open-Unmix baseline")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="a model file that is not bundled, scored beside the bundled ones (repeatable)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-cache", action="store_true", help="score everything again")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--readme", help="replace the scores block of this README")
    parser.add_argument(
        "--previous",
        help="an earlier run's --json: without --umx, its Open-Unmix row is carried over "
        "(scored on the same tracks with the same museval; the caption says so)",
    )
    args = parser.parse_args(argv)
    try:
        if not args.musdb:
            raise UserError("Give --musdb PATH (or set LIVESTEMS_MUSDB): the data to score on.")
        refs = musdb_tracks(args.musdb, args.split)[: args.tracks or None]
        systems = systems_for(args.umx, args.model)
        started = time.perf_counter()
        results = score(systems, refs, max(1, args.jobs), use_cache=not args.no_cache)
        wall = time.perf_counter() - started
        # Timed after the scoring, whose worker processes would share the cores.
        load = os.getloadavg()[0]
        compute = {s.name: measure_compute(s.path) for s in systems if s.kind == "model" and s.path}
        carried = []
        if args.previous and not args.umx:
            carried = carry_rows(Path(args.previous), refs, kinds=("umx",))
            for system, result in carried:
                systems.insert(len(systems) - 1, system)  # before the mixture, as scored
                results[system.name] = result
        caption = (
            f"MUSDB18-7 `{args.split}` split ({len(refs)} tracks of 6.8 s, never trained on), "
            f"museval {metadata.version('museval')} BSSEval v4: SDR in dB, median over 1 s frames, "
            "then median over tracks; mean = average of the four stems. Produced by "
            "`python -m livestems.models.evaluation.scoreboard --musdb ../shared/data/musdb18-7 "
            + "".join(f"--model {path} " for path in args.model)
            + "--umx runs/umx-offline/best.pt --readme README.md`, the baseline trained first by "
            "`livestems train --config models/recipes/umx-offline.json --out runs/umx-offline`. "
            f"Per hop: the stream processor's compute for one hop (front end, model, synthesis) "
            f"in onnxruntime on one core, {TIMED_HOPS:,} hops, measured after the scoring at a "
            f"load average of {load:.1f} on this machine's {os.cpu_count()} cores."
        )
        if carried:
            caption += (
                f" The {', '.join(s.name for s, _ in carried)} row is carried from "
                f"`{args.previous}` (the same tracks, museval {metadata.version('museval')}), "
                "since its checkpoint is not at hand."
            )
        table = markdown(results, systems, caption, compute)
    except UserError as error:
        print(f"scoreboard: {error}", file=sys.stderr)
        return 1
    print(table)
    print(f"({wall:.0f} s)")
    if args.markdown:
        with atomic_write(args.markdown) as file:
            file.write(table.encode())
    if args.json:
        payload: dict[str, Any] = {
            "split": args.split,
            "tracks": [ref.name for ref in refs],
            "museval_version": metadata.version("museval"),
            "systems": {
                s.name: {
                    "kind": s.kind,
                    "latency": s.latency,
                    **results[s.name].to_dict(),
                    **({"compute": asdict(compute[s.name])} if s.name in compute else {}),
                }
                for s in systems
            },
            "wall_s": wall,
        }
        with atomic_write(args.json) as file:
            file.write(json.dumps(payload, indent=1).encode())
    if args.readme:
        replace_block(Path(args.readme), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
