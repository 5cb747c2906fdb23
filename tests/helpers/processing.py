"""Driving a stream processor the way a device does: in blocks."""

from __future__ import annotations

import numpy as np

from livestems.realtime.engine.processor import StreamProcessor


def run_blocks(processor: StreamProcessor, signal: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Feed ``signal`` in blocks of the given sizes (cycled), return the stems joined."""
    pieces, start, index = [], 0, 0
    while start < signal.shape[0]:
        stop = min(start + sizes[index % len(sizes)], signal.shape[0])
        pieces.append(processor.process(signal[start:stop]).copy())
        start, index = stop, index + 1
    return np.concatenate(pieces, axis=1)
