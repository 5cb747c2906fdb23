"""How fast the synthetic generator renders: songs per second and times real time.

    python -m livestems.models.synth.benchmark                 # 100 songs of 10 s, one per core
    python -m livestems.models.synth.benchmark --songs 20 --workers 1

Songs are rendered without the cache (a cached song measures the disk), by the same process pool
as ``render_songs``; the wall time includes starting the workers and loading the sound font in
each, as a training run pays them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from ...realtime.errors import UserError
from .procedural import render_songs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.synth.benchmark",
        description="Time the synthetic multitrack generator.",
    )
    parser.add_argument("--songs", type=int, default=100, help="how many songs (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds each (default 10)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_workers = args.workers or os.cpu_count() or 1
    seeds = range(args.first_seed, args.first_seed + args.songs)
    start = time.perf_counter()
    try:
        tracks = render_songs(seeds, args.duration, n_workers, use_cache=False)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    wall_s = time.perf_counter() - start
    audio_s = sum(t.n_samples / t.sample_rate for t in tracks)
    print(
        f"{len(tracks)} songs of {args.duration:g} s with {n_workers} worker(s) on "
        f"{os.cpu_count()} core(s): {wall_s:.1f} s wall, {len(tracks) / wall_s:.2f} songs/s, "
        f"{audio_s / wall_s:.1f}x real time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
