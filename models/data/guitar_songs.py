"""Songs with the guitar known: Frets on Fire song packs as training songs, the guitar part a
true stem and the rest split by a teacher.

MUSDB18-7's train split is all the real multitrack audio there is here, 80 songs of 7 s, and
the networks learn those songs rather than music (README, "Distillation"). A teacher's stems of
the same songs add no audio. Frets on Fire's song packs, which Debian ships under free licences
(``fretsonfire-songs-muldjord``: CC BY-SA 3.0; ``fretsonfire-songs-sectoid``: MIT-style), are
new real recordings, 27 minutes in eight songs, and each comes in two parts: ``guitar.ogg``,
the lead guitar the player plays, and ``song.ogg``, the rest of the band. So each song's stems
are half known: the teacher (the bundled default; session 21's runs had ``ensemble-live``)
separates ``song.ogg`` as it would a mix, through the stream processor with its latency cut,
and the true guitar joins its ``other``. The stems sum to the whole song (the teacher's
softmax masks sum to what it heard).

Each song is cut into segments (7 s, as MUSDB18-7's previews, every second one kept), each
written as a song folder that a training config's ``folders`` reads: a sampler draws songs
alike, so a whole song as one folder would be drawn as often as one preview.

``--guitar-only`` leaves the band part and the teacher out: ``other`` is the guitar alone and
the rest silent, so that the real guitar enters training only as the ``other`` of cross-song
remixes, beside MUSDB18's vocals, drums and bass, with no teacher's error in any target.

    apt-get download fretsonfire-songs-muldjord fretsonfire-songs-sectoid
    for f in fretsonfire-songs-*.deb; do dpkg-deb -x "$f" fof; done
    python -m livestems.models.data.guitar_songs \\
        --songs fof/usr/share/games/fretsonfire/data/songs --out runs/guitar-songs

The audio is the packs' own, through a model: it inherits their licences (CC BY-SA asks for
credit and the same licence), so it is made where it is used, never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...realtime.errors import UserError
from ...realtime.io.audio_file import AudioFileError, load_audio, save_audio_atomic
from ...realtime.runtime.catalog import resolve_model
from ...realtime.runtime.onnx_model import OnnxHopModel
from ...realtime.runtime.separation import separate_signal
from .datasets import SAMPLE_RATE, STEMS
from .teacher_stems import check_teacher_claim, claim_for_teacher

#: The part the player plays, and the rest of the band (Frets on Fire's file names).
GUITAR_FILE = "guitar.ogg"
BAND_FILE = "song.ogg"
#: The stem the guitar belongs to (MUSDB18's ``other``: everything but vocals, drums and bass).
GUITAR_STEM = "other"
#: What ``teacher.json`` names (and holds as the digest) when the band part is left out.
NO_TEACHER = "no teacher: the guitar alone"


@dataclass(frozen=True)
class GuitarSong:
    """One Frets on Fire song folder: ``song.ogg`` and ``guitar.ogg``."""

    name: str
    folder: Path


def find_guitar_songs(
    root: str | Path, report: Callable[[str], None] | None = None
) -> list[GuitarSong]:
    """Every folder under ``root`` that holds both parts, named ``<pack>-<song>``.

    A folder with the guitar alone is skipped and named through ``report``: it is not one of
    Frets on Fire's songs as this module reads them.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder (Frets on Fire's songs folder, or a pack in it).")
    songs = []
    for guitar in sorted(root.rglob(GUITAR_FILE)):
        folder = guitar.parent
        relative = folder.relative_to(root).parts or (folder.name,)
        name = "-".join(part.lower().replace(" ", "_") for part in relative)
        if not (folder / BAND_FILE).exists():
            if report is not None:
                report(f"skipped {name}: {folder} has {GUITAR_FILE} but no {BAND_FILE}.")
            continue
        songs.append(GuitarSong(name, folder))
    if not songs:
        raise UserError(
            f"{root} holds no Frets on Fire song (a folder with {BAND_FILE} and {GUITAR_FILE})."
        )
    return songs


def segment_starts(n_samples: int, segment: int, every: int) -> list[int]:
    """The first sample of each segment kept: whole segments only, every ``every``-th."""
    return list(range(0, n_samples - segment + 1, segment))[::every]


def write_guitar_songs(
    model: OnnxHopModel | None,
    songs: Sequence[GuitarSong],
    out_dir: str | Path,
    *,
    segment_s: float = 7.0,
    every: int = 2,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Each song's segments as ``out_dir/<song>-<k>/<stem>.wav`` (float32); returns them.

    With ``model`` None the band part is left out: ``other`` is the guitar alone and the other
    stems are silent, songs whose only use is as a source of ``other`` in cross-song remixes
    (the sampler draws each stem of a remix from a song where it is loud, and a whole excerpt
    from a song where every stem is), so every target is a true one.

    A song whose segments are all written already is kept as it is (a stopped run goes on);
    ``out_dir/teacher.json`` names the teacher, as for ``teacher_stems`` (``NO_TEACHER`` for
    the guitar alone), so that one folder never mixes two. A part that cannot be decoded is
    skipped and named through ``report``; the other songs are still written.
    """
    if model is not None:
        meta = model.metadata
        if meta.sample_rate != SAMPLE_RATE or tuple(meta.stems) != tuple(STEMS):
            raise UserError(
                f"The teacher {model.path} gives {', '.join(meta.stems)} at "
                f"{meta.sample_rate} Hz; training needs {', '.join(STEMS)} at {SAMPLE_RATE} Hz."
            )
    if segment_s <= 0 or every < 1:
        raise UserError("--segment-s must be above 0 and --every at least 1.")
    out_dir = Path(out_dir)
    if model is None:
        teacher, digest = NO_TEACHER, NO_TEACHER
    else:
        teacher, digest = model.path.name, hashlib.sha256(model.path.read_bytes()).hexdigest()
    claimed = check_teacher_claim(out_dir, digest)
    segment = round(segment_s * SAMPLE_RATE)
    written: list[Path] = []
    for song in songs:
        try:
            guitar = load_audio(song.folder / GUITAR_FILE, SAMPLE_RATE)
            band = None if model is None else load_audio(song.folder / BAND_FILE, SAMPLE_RATE)
        except AudioFileError as error:
            if report is not None:
                report(f"skipped {song.name}: {error}")
            continue
        # the two parts are cut from one session: the shorter sets the song's length
        n_samples = len(guitar) if band is None else min(len(band), len(guitar))
        starts = segment_starts(n_samples, segment, every)
        if not starts:
            if report is not None:
                report(f"skipped {song.name}: shorter than one segment ({segment_s:g} s).")
            continue
        folders = [out_dir / f"{song.name}-{k:03d}" for k in range(len(starts))]
        written.extend(folders)
        if all((f / f"{s}.wav").exists() for f in folders for s in STEMS):
            continue
        if not claimed:  # only now, so that a refusal leaves no folder behind
            claim_for_teacher(out_dir, teacher, digest)
            claimed = True
        if model is None or band is None:
            stems = np.zeros((len(STEMS), n_samples, 2), np.float32)
        else:
            # the whole band part at once, so that every segment's teacher had its past
            # [shape=(n_stems, n_samples, 2)]
            stems = separate_signal(model, np.ascontiguousarray(band[:n_samples]))
        stems[STEMS.index(GUITAR_STEM)] += guitar[:n_samples]
        for folder, start in zip(folders, starts, strict=True):
            folder.mkdir(parents=True, exist_ok=True)
            for index, stem in enumerate(STEMS):
                save_audio_atomic(
                    folder / f"{stem}.wav", stems[index, start : start + segment], SAMPLE_RATE
                )
        if report is not None:
            report(f"{song.name}: {len(folders)} segments")
    return written


def _report(line: str) -> None:
    """The command's report of each song written or skipped, as it goes."""
    print(f"  {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.data.guitar_songs",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--songs", required=True, type=Path, help="Frets on Fire's songs folder, or a pack in it"
    )
    parser.add_argument("--out", required=True, type=Path, help="the folder of songs to write")
    parser.add_argument(
        "--model", help="the teacher: a model file or name (default: the bundled default)"
    )
    parser.add_argument(
        "--guitar-only",
        action="store_true",
        help="leave the band out: other is the guitar, the rest silent (for remixes; no teacher)",
    )
    parser.add_argument("--segment-s", type=float, default=7.0, help="seconds per segment")
    parser.add_argument("--every", type=int, default=2, help="keep every N-th segment")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime's CPU threads")
    args = parser.parse_args(argv)
    try:
        if args.guitar_only and args.model is not None:  # before any song is read
            raise UserError("--guitar-only uses no teacher: leave out --model.")
        songs = find_guitar_songs(args.songs, _report)
        model = (
            None
            if args.guitar_only
            else resolve_model(args.model, provider="cpu", cpu_threads=args.threads)
        )
        folders = write_guitar_songs(
            model,
            songs,
            args.out,
            segment_s=args.segment_s,
            every=args.every,
            report=_report,
        )
    except UserError as error:
        print(f"livestems: {error}", file=sys.stderr)
        return 1
    print(
        f"{len(folders)} training songs cut from {len(songs)} Frets on Fire songs "
        f"({NO_TEACHER if model is None else model.path.name}) under {args.out}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
