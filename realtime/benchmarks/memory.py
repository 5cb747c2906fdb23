"""Peak memory of ``livestems separate`` against the song's length: it must not grow with it.

Thread contract: main thread only; it writes test songs block by block and runs ``livestems
separate`` in a child process per song, reading the child's peak resident memory from the
kernel (``wait4``), so that this process's own memory never counts.

    .venv/bin/python -m livestems.realtime.benchmarks.memory --minutes 1 10 60

The songs are noise and tones at 44.1 kHz stereo, written as 16-bit wav (a minute is 10 MB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import arguments
from ..dsp.presets import SAMPLE_RATE
from ..io.generated_song import write_generated_song
from ..runtime.catalog import DEFAULT_MODEL

RATE = SAMPLE_RATE  # the generated song's: the bundled model's own


def peak_rss_mb(command: list[str]) -> tuple[float, float, int]:
    """Run ``command``; (peak resident memory in MB, wall seconds, exit status)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, child.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=arguments.seconds(), nargs="+", default=[1.0, 10.0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model file or name")
    parser.add_argument("--threads", type=arguments.threads, default=1)
    args = parser.parse_args(argv)
    livestems = str(Path(sys.executable).parent / "livestems")
    print("| song | peak RSS | wall | exit |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:
            song = Path(folder) / f"song-{minutes:g}min.wav"
            write_generated_song(song, 60.0 * minutes)
            command = [livestems, "separate", str(song), "-o", str(Path(folder) / "out")]
            command += ["--model", args.model, "--threads", str(args.threads)]
            rss, wall, status = peak_rss_mb(command)
            print(f"| {minutes:g} min | {rss:.0f} MB | {wall:.0f} s | {status} |", flush=True)
            song.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
