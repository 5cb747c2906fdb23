"""Teacher stems: a trained separator's estimates of the training songs' stems, written as a
folder of songs that a training config's ``folders`` reads (knowledge distillation by targets).

A network trained on the true stems of 80 songs of 7 s learns what those references hold that
no network of its kind can predict from the mix, and overfits it (``cws-live`` reads 4.00 dB on
training songs, 3.68 on validation ones). A stronger separator's estimates of the same songs are
targets a separator can reach: trained on both, a student sees each song twice, once with the
references and once with what the teacher (the bundled default, the best model here;
session 17's runs had ``ensemble-live``'s)
makes of it. The teacher runs through the stream processor, as in use, with its latency cut,
so stem sample ``t`` is mixture sample ``t``; its stems of a mix with softmax masks sum to that
mix (the spectral path mixes the excerpts from the stems).

Only the train split is written: a teacher's stems of the validation songs would carry their
references into training. The audio is MUSDB18's, through a model: it inherits MUSDB18's
licence, so never commit it.

    python -m livestems.models.data.teacher_stems --musdb ../shared/data/musdb18-7 \\
        --out runs/teacher-stems
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ...realtime.io.audio_file import save_audio_atomic
from ...realtime.runtime.catalog import resolve_model
from ...realtime.runtime.onnx_model import OnnxHopModel
from ...realtime.runtime.separation import separate_signal
from .datasets import SAMPLE_RATE, STEMS, TrackRef, musdb_tracks, stem_folder_tracks

#: The file in the output folder that names the teacher.
TEACHER_RECORD = "teacher.json"


def write_teacher_stems(
    model: OnnxHopModel,
    refs: Sequence[TrackRef],
    out_dir: str | Path,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Each song's stems as ``model`` separates its mixture, written as
    ``out_dir/<song>/<stem>.wav`` (float32); returns the song folders.

    A song folder that already holds every stem is kept as it is (a stopped run goes on where it
    was); the files are written whole or not at all (``save_audio_atomic``).
    ``out_dir/teacher.json`` names the model (file name and SHA-256): a folder of another
    model's stems is refused, not topped up with this one's.
    """
    meta = model.metadata
    if meta.sample_rate != SAMPLE_RATE:
        raise UserError(
            f"The teacher {model.path} runs at {meta.sample_rate} Hz; training songs are at "
            f"{SAMPLE_RATE} Hz: choose a model of the training rate."
        )
    if tuple(meta.stems) != tuple(STEMS):
        raise UserError(
            f"The teacher {model.path} gives the stems {', '.join(meta.stems)}; training "
            f"needs {', '.join(STEMS)}."
        )
    out_dir = Path(out_dir)
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    claimed = check_teacher_claim(out_dir, digest)
    folders = []
    for ref in refs:
        folder = out_dir / ref.name
        folders.append(folder)
        if all((folder / f"{stem}.wav").exists() for stem in STEMS):
            continue
        track = ref.load()
        if not claimed:  # only now, so that a refusal above leaves no folder behind
            claim_for_teacher(out_dir, model.path.name, digest)
            claimed = True
        # [shape=(n_stems, n_samples, n_channels)], aligned to the mixture
        stems = separate_signal(model, np.ascontiguousarray(track.mixture, dtype=np.float32))
        folder.mkdir(parents=True, exist_ok=True)
        for stem, audio in zip(STEMS, stems, strict=True):
            save_audio_atomic(folder / f"{stem}.wav", audio, SAMPLE_RATE)
        if report is not None:
            report(ref.name)
    return folders


def check_teacher_claim(out_dir: Path, digest: str) -> bool:
    """Whether ``out_dir`` is this teacher's already; a folder of another's is refused."""
    record = out_dir / TEACHER_RECORD
    if not record.exists():
        return False
    try:
        held = json.loads(record.read_text())
        same = held["sha256"] == digest
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{record} cannot be read: delete {out_dir} and run again.") from None
    if not same:
        raise UserError(
            f"{out_dir} holds the stems of another teacher ({held.get('model')}): choose "
            "another --out, or delete it to start again."
        )
    return True


def claim_for_teacher(out_dir: Path, model_name: str, digest: str) -> None:
    """Write ``teacher.json``, which names the model whose stems the folder holds."""
    record = {"model": model_name, "sha256": digest}
    try:
        with atomic_write(out_dir / TEACHER_RECORD) as file:
            file.write(json.dumps(record).encode() + b"\n")
    except OSError as error:
        raise UserError(f"Cannot write {out_dir / TEACHER_RECORD}: {error.strerror}.") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.data.teacher_stems",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--model", help="the teacher: a model file or name (default: the bundled default)"
    )
    parser.add_argument("--musdb", help="a MUSDB18 folder: its train split (never the valid one)")
    parser.add_argument(
        "--folder", action="append", default=[], help="a folder of songs (repeatable)"
    )
    parser.add_argument("--out", required=True, type=Path, help="the folder of songs to write")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime's CPU threads")
    args = parser.parse_args(argv)
    try:
        if args.musdb is None and not args.folder:
            raise UserError("No songs: give --musdb PATH or --folder PATH.")
        refs = list(musdb_tracks(args.musdb, "train")) if args.musdb else []
        for folder in args.folder:
            refs.extend(stem_folder_tracks(folder))
        names = [ref.name for ref in refs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UserError(
                f"Two songs are named {repeated[0]!r}: each song's stems go in a folder of its "
                "name, so names must differ."
            )
        model = resolve_model(args.model, provider="cpu", cpu_threads=args.threads)
        folders = write_teacher_stems(
            model, refs, args.out, lambda name: print(f"  {name}", flush=True)
        )
    except UserError as error:
        print(f"livestems: {error}", file=sys.stderr)
        return 1
    print(f"{len(folders)} songs' teacher stems ({model.path.name}) under {args.out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
