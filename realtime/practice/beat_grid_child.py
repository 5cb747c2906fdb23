"""The process a beat grid is analysed in (``-m livestems.realtime.practice.beat_grid_child``).

Thread contract:

- Nothing here runs in the engine's process: ``beat_grid.start_analysis`` starts this module
  as a **process of its own** (the loader's side of the exchange is in ``beat_grid``).
- ``main`` (the child's main thread) reads the request from standard input, lowers its own
  priority, analyses, and writes one JSON line to standard output. It ends once the process
  that started it is gone: killed by the kernel on Linux (``_die_with_parent``), else by a
  daemon thread's poll (``_exit_when_orphaned``).

Why a process: the analysis is librosa's beat tracker and chroma, whose numba kernels hold the
GIL for hundreds of milliseconds at a time (and, compiled for the first time, for about 30 s).
On a thread beside the engine's worker that starved the worker: with the window's engine in
its own process, a song whose grid was not cached gave 78 under-runs in 40 s (623 when numba
compiled too), against 3 with the grid cached. A process shares no GIL, and its raised nice
value lets the scheduler put the audio first on a machine with few cores.

Request: one line of JSON (``frames``, ``channels``, ``sample_rate``), then the samples as
native float32, frame after frame. Answer: one line of JSON, ``{"grid": <BeatGrid.to_json()>}``
or ``{"error": "<one sentence>"}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

# librosa itself is imported by ``analyse``'s first call, after the samples are read: the
# loader's write never waits on librosa's start-up.
from .beat_grid import analyse

#: Added to the child's nice value: the analysis waits for the audio, never the other way round.
NICE_INCREMENT = 10
#: How often the child checks that the process that started it still runs.
ORPHAN_POLL_S = 0.5
#: prctl's option for the signal a process gets when its parent ends (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _read_exactly(stream: object, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise EOFError(f"the song's samples ended after {got} of {size} bytes")
        got += n
    return buffer


def _exit_when_orphaned(parent: int) -> None:
    # The loader's process ended (quit, or killed) while a long song was analysed: nobody
    # waits for the answer, so stop spending the machine's cores on it.
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL_S)
    os._exit(1)


def _die_with_parent(parent: int) -> None:
    # On Linux the kernel kills this process when the thread that started it ends: at once,
    # even while a numba kernel holds the GIL that ``_exit_when_orphaned`` would need to run.
    # (That thread is the loader's, which waits for the answer.) Elsewhere the poll does it.
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:  # the parent was gone before the request took hold
            os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def compile_kernels() -> float:
    """Analyse a few seconds of clicks, so that librosa's numba kernels are compiled and
    kept in numba's cache on disk; returns the seconds it took. ``setup.sh`` runs it once
    (``--compile``): else the first song of a new install waits about 30 s for its grid."""
    rate = 22050
    audio = np.zeros(8 * rate, dtype=np.float32)
    for start in range(rate // 4, audio.size - 512, rate // 2):  # 120 BPM
        audio[start : start + 512] = np.hanning(512).astype(np.float32)
    begun = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clicks have no pitch to tune the key's chroma to
        analyse(audio, rate)
    return time.perf_counter() - begun


def main() -> int:
    if sys.argv[1:] == ["--compile"]:
        print(f"beat tracking: librosa's kernels ready in {compile_kernels():.1f} s")
        return 0
    _die_with_parent(os.getppid())
    try:
        os.nice(NICE_INCREMENT)
    except OSError:
        pass  # some systems refuse; the GIL, the main reason for the process, is still apart
    stdin = sys.stdin.buffer
    try:
        header = json.loads(stdin.readline())
        frames, channels = int(header["frames"]), int(header["channels"])
        raw = _read_exactly(stdin, frames * channels * 4)
        audio = np.frombuffer(raw, dtype=np.float32).reshape(frames, channels)
        reply = {"grid": analyse(audio, int(header["sample_rate"])).to_json()}
    except Exception as error:  # noqa: BLE001 - any failure is one sentence for the loader
        reply = {"error": " ".join(str(error).split()) or type(error).__name__}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
