"""What averaging several models' stems would score: a measurement, not a shipped feature.

A blend of separators (the mean of their stems, each cut to line up with the references) often
scores above its best member, because their errors differ. This scores each model through the
stream processor, as ``livestems eval`` does, and each asked-for blend of them, on the same
tracks in one pass (each model runs once per track; a blend reuses its members' stems):

    python -m livestems.models.evaluation.blend cws=realtime/bundled/cws-live.onnx \
        bsrnn=realtime/bundled/bsrnn-live.onnx --blend cws+bsrnn --musdb PATH

Models of different front ends and latencies blend too: each member's stems are already cut to
the references' timeline. Live, a blend would need every member per hop and its outputs delayed
to the slowest member's latency; the README says what it measured and why none ships.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from ...realtime.errors import UserError
from ..data.datasets import Track, musdb_tracks
from .evaluate import Estimator, evaluate_estimators, streaming_estimator


def blend_estimators(
    members: Mapping[str, Estimator], blends: Sequence[Sequence[str]]
) -> dict[str, Estimator]:
    """The members and each blend (the mean of its members' stems), as estimators that run each
    member once per track.

    Args:
        members: name -> estimator.
        blends: each a sequence of two or more member names.

    Returns:
        name -> estimator: the members under their names, each blend as ``a+b(+...)``. Call them
        in that order for each track (as ``evaluate_estimators`` does): a blend reads the stems
        its members gave for the same track.
    """
    for blend in blends:
        unknown = [name for name in blend if name not in members]
        if unknown:
            raise UserError(
                f"The blend {'+'.join(blend)} names {', '.join(unknown)}, which is not a model "
                f"given: the models are {', '.join(members)}."
            )
        if len(set(blend)) < 2:
            raise UserError(f"The blend {'+'.join(blend)} needs two or more different models.")
    last: dict[str, tuple[str, Mapping[str, np.ndarray]]] = {}

    def member(name: str) -> Estimator:
        def estimate(track: Track) -> Mapping[str, np.ndarray]:
            stems = members[name](track)
            last[name] = (track.name, stems)
            return stems

        return estimate

    def blended(names: Sequence[str]) -> Estimator:
        def estimate(track: Track) -> Mapping[str, np.ndarray]:
            outputs = []
            for name in names:
                if name not in last or last[name][0] != track.name:
                    last[name] = (track.name, members[name](track))  # not scored on its own
                outputs.append(last[name][1])
            return {stem: np.mean([out[stem] for out in outputs], axis=0) for stem in outputs[0]}

        return estimate

    estimators: dict[str, Estimator] = {name: member(name) for name in members}
    for blend in blends:
        estimators["+".join(blend)] = blended(tuple(blend))
    return estimators


def _named_model(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=MODEL.onnx")
    return name, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.evaluation.blend",
        description="score models and blends of them (the mean of their stems) with BSSEval",
    )
    parser.add_argument("models", nargs="+", type=_named_model, help="NAME=MODEL.onnx")
    parser.add_argument("--blend", action="append", default=[], help="NAME+NAME[+...]")
    parser.add_argument("--musdb", default=os.environ.get("LIVESTEMS_MUSDB"))
    parser.add_argument("--split", default="valid")
    parser.add_argument("--tracks", type=int, help="only the split's first N tracks")
    args = parser.parse_args(argv)
    try:
        if not args.musdb:
            raise UserError("Give --musdb PATH (or set LIVESTEMS_MUSDB).")
        members = {name: streaming_estimator(path, "cpu") for name, path in args.models}
        estimators = blend_estimators(members, [text.split("+") for text in args.blend])
        tracks = musdb_tracks(args.musdb, args.split)[: args.tracks]
        results = evaluate_estimators(estimators, tracks)
    except UserError as error:
        print(f"livestems blend: {error}", file=sys.stderr)
        return 1
    stems = next(iter(results.values())).stems
    print(f"| system | {' | '.join(stems)} | mean |")
    print(f"|---|{'---:|' * (len(stems) + 1)}")
    for name, result in results.items():
        cells = " | ".join(f"{result.aggregate(stem, 'SDR'):.2f}" for stem in stems)
        print(f"| {name} | {cells} | {result.mean_over_stems('SDR'):.2f} |")
    print(
        f"\nSDR in dB (museval BSSEval v4, median over 1 s frames, then over the {len(tracks)} "
        f"tracks of the {args.split} split), every model through the stream processor."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
