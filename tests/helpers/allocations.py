"""Allocation measurement for code that must not allocate on the audio path."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np

NUMPY_DOMAIN = np.lib.tracemalloc_domain


def measure_allocations(
    step: Callable[[], None], n_iterations: int, warm_up: int = 100, attempts: int = 3
) -> tuple[int, int, int]:
    """Run ``step`` ``n_iterations`` times under tracemalloc, after ``warm_up`` calls untraced
    and as many traced (first calls fill caches; 0 when the caller warmed up already).

    tracemalloc counts every thread's allocations, and a thread left running by an earlier
    test (a JACK client, a GUI timer, a training helper) can allocate inside the window: the
    loop is measured ``attempts`` times and each figure is the smallest seen. An allocation on
    the measured path happens in every attempt, so it still shows; another thread's rarely
    lands in all of them.

    Returns:
        numpy data blocks allocated during the loop and still alive after it (a leak or a
        cache growing in numpy's tracemalloc domain), net traced growth in bytes, and the
        peak of traced memory above the start of the loop in bytes. Snapshots only show
        blocks that are still alive, so the peak is what catches a temporary array that is
        allocated and freed within one call (``block.copy()``, ``np.concatenate``).
    """
    for _ in range(warm_up):
        step()
    figures = [_measure_once(step, n_iterations, warm_up) for _ in range(max(1, attempts))]
    numpy_blocks, growth, transient = (min(values) for values in zip(*figures, strict=True))
    return numpy_blocks, growth, transient


def _measure_once(
    step: Callable[[], None], n_iterations: int, warm_up: int
) -> tuple[int, int, int]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        for _ in range(warm_up):
            step()
        tracemalloc.clear_traces()
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(n_iterations):
            step()
        end, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    numpy_blocks = snapshot.filter_traces([tracemalloc.DomainFilter(True, NUMPY_DOMAIN)]).traces
    return len(numpy_blocks), end - start, peak - start
