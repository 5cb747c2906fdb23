"""Pack training songs small enough to carry to a lent GPU machine: Ogg Vorbis stems.

A GPU machine lent for minutes receives at most 64 MiB with the repository, has no ffmpeg to
decode MUSDB18's ``.stem.mp4`` files and no FluidSynth to render MIDI songs. So the songs are
decoded (and rendered) here and written as folders of Ogg Vorbis stems, which libsndfile (the
``soundfile`` wheel) reads at 44.1 kHz without resampling. Vorbis rather than Opus: Opus codes
at 48 kHz only. The layout is MUSDB18-HQ's (``train/<song>/<stem>.ogg``), so ``--musdb`` reads
it as it is; the validation songs keep their coded mixture (the scores' input), the training
songs leave it out, since training mixes its excerpts from the stems. MIDI songs go into a
``midi/`` folder of songs for ``folders``.

Lossy on purpose: Vorbis at ``compression_level`` 0.6 keeps a stem within 16-26 dB of the
decoded one (waveform SNR; the ear hears little of it), which is far above the 3-5 dB a
separator reaches; the scores are still taken here on MUSDB18's own files. The packed audio
is MUSDB18's and inherits its licence: never commit it.

    python -m livestems.models.data.pack --musdb ../shared/data/musdb18-7 --midi-songs 40 \\
        --out .gpu/data
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from ...realtime.errors import UserError
from .datasets import MUSDB_VALID_TRACKS, SAMPLE_RATE, Track, musdb_tracks

DEFAULT_COMPRESSION = 0.6


def write_song(track: Track, folder: Path, with_mixture: bool, compression: float) -> int:
    """``track``'s stems (and mixture) as ``folder/<stem>.ogg``; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(track.stems)
    if with_mixture:
        arrays["mixture"] = track.mixture
    written = 0
    for name, audio in arrays.items():
        path = folder / f"{name}.ogg"
        # Vorbis codes a clipped sample as the loudest it can; MUSDB's sums stay inside anyway
        clipped = np.clip(audio, -1.0, 1.0)
        sf.write(
            path,
            clipped,
            track.sample_rate,
            format="OGG",
            subtype="VORBIS",
            compression_level=compression,
        )
        written += path.stat().st_size
    return written


def pack(
    out: Path,
    musdb: str | None,
    midi_songs: int,
    duration_s: float,
    compression: float = DEFAULT_COMPRESSION,
) -> int:
    """Write the packed songs under ``out``; returns the bytes written."""
    written = 0
    if musdb is not None:
        valid = set(MUSDB_VALID_TRACKS)
        for split in ("train", "valid"):
            for ref in musdb_tracks(musdb, split):
                song = out / "train" / ref.name
                written += write_song(ref.load(), song, ref.name in valid, compression)
    if midi_songs > 0:
        from ..synth.midi import midi_tracks

        for track in midi_tracks(midi_songs, 0, duration_s):
            written += write_song(track, out / "midi" / track.name, False, compression)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.data.pack", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--musdb", help="a MUSDB18 folder (the one that holds train/)")
    parser.add_argument("--midi-songs", type=int, default=0, help="songs rendered from MIDI")
    parser.add_argument("--duration", type=float, default=10.0, help="each MIDI song's seconds")
    parser.add_argument(
        "--compression",
        type=float,
        default=DEFAULT_COMPRESSION,
        help="Vorbis compression level, 0 (best) to 1 (smallest)",
    )
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if not 0.0 <= args.compression <= 1.0:
            raise UserError(f"--compression must be in [0, 1], got {args.compression}.")
        if args.musdb is None and args.midi_songs <= 0:
            raise UserError("Nothing to pack: give --musdb PATH or --midi-songs N.")
        written = pack(args.out, args.musdb, args.midi_songs, args.duration, args.compression)
    except UserError as error:
        print(f"livestems: {error}", file=sys.stderr)
        return 1
    print(f"{written / 2**20:.1f} MiB of Vorbis stems under {args.out} ({SAMPLE_RATE} Hz).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
