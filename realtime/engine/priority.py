"""Real-time scheduling for the engine's worker thread, and locked memory for the process.

Thread contract: ``request_realtime_scheduling`` is called by the thread that wants the priority,
once, as it starts (the engine's worker); ``lock_memory`` by the thread that owns the engine,
after every buffer is allocated and before the stream starts. Neither is ever called from the
audio callback, and neither raises: each returns one phrase that says what was granted, which
the latency report prints (a refusal is normal for a user without ``CAP_SYS_NICE`` or an
``RLIMIT_RTPRIO`` above zero, and the engine runs as before).

Why: the worker must finish a hop before the callback needs it. Under ``SCHED_OTHER`` a busy
desktop (a browser, a compiler) delays it by milliseconds now and then; ``SCHED_FIFO`` runs it as
soon as it is woken. Locked memory keeps the engine's pages resident, so a block never waits
for a page to come back from swap. Only the pages mapped now are locked (``MCL_CURRENT``):
with ``MCL_FUTURE`` a later allocation beyond ``RLIMIT_MEMLOCK`` would fail.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

__all__ = ["DEFAULT_PRIORITY", "lock_memory", "request_realtime_scheduling", "unlock_memory"]

#: Below JACK's own threads (whose default is 80 at most), above everything else.
DEFAULT_PRIORITY = 70
_MCL_CURRENT = 1


def request_realtime_scheduling(priority: int | None = DEFAULT_PRIORITY) -> str:
    """Ask for ``SCHED_FIFO`` (then ``SCHED_RR``) at ``priority`` for the calling thread."""
    if priority is None:
        return "not asked for"
    if not hasattr(os, "sched_setscheduler"):
        return f"not available on {sys.platform}"
    reasons = []
    for name in ("SCHED_FIFO", "SCHED_RR"):
        try:
            os.sched_setscheduler(0, getattr(os, name), os.sched_param(priority))
        except OSError as error:
            reasons.append(error.strerror or str(error))
            continue
        return f"{name} {priority} granted"
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return (
        f"refused ({reasons[0]}; RLIMIT_RTPRIO is {soft}: add the user to a group with an rtprio "
        "limit, e.g. Debian's 'audio' group with jackd's limits)"
    )


def lock_memory() -> str:
    """Lock the pages the process has mapped now into RAM (``mlockall(MCL_CURRENT)``)."""
    if not sys.platform.startswith("linux"):
        return f"not locked (not available on {sys.platform})"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(_MCL_CURRENT) == 0:
        return f"locked ({_resident_mb():.0f} MB resident)"
    error = ctypes.get_errno()
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} kB"
    return f"not locked ({os.strerror(error)}; RLIMIT_MEMLOCK is {limit})"


def unlock_memory() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).munlockall()


def _resident_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")
