"""A single-producer, single-consumer ring of float32 audio samples.

Thread contract: one ``AudioRingBuffer`` has exactly one producer thread and exactly one
consumer thread (they may be the same thread). Neither side ever blocks, takes a lock, logs
or allocates array memory: the samples live in one array allocated in ``__init__``, and every
call copies into or out of it with at most two ``np.copyto`` segments (one on each side of
the wrap-around).

- The **producer** owns ``write``, ``write_zeros`` and the write counter; it only reads the
  read counter.
- The **consumer** owns ``read_into``, ``peek_into``, ``skip`` and the read counter; it only
  reads the write counter.
- ``fill``, ``space``, ``samples_written`` and ``samples_read`` may be called from either side
  (or a telemetry thread). Seen from the consumer, ``fill`` is a lower bound (the producer may
  add more at any moment); seen from the producer, ``space`` is a lower bound.
- ``reset`` only while neither side runs (before a stream starts or after it has stopped).

Publication: both counters are monotonic Python ints (they never wrap; the slot of sample
``i`` is ``i % capacity``). A side copies the samples *first* and updates its own counter
*after*; in CPython each attribute store is atomic under the GIL, and the GIL hand-over orders
the copy before the store as seen from the other thread, so the counter store is the moment
the samples become visible (producer) or their slots become free again (consumer). A free-
threaded interpreter would need explicit memory barriers here.

Overflow and underflow are not errors: ``write`` copies what fits and ``read_into`` what is
there, each returning the count, and the caller decides what to do with the rest (count an
underrun, drop, wait). A wrong shape or dtype is a programming error and raises
``ValueError`` at the call, before anything is copied.
"""

from __future__ import annotations

import numpy as np

from ..dsp.stft import SAMPLE_DTYPE


class AudioRingBuffer:
    """A lock-free SPSC ring of ``capacity`` samples, each of ``n_channels`` float32 values.

    Args:
        capacity: samples the ring holds at most (fill + space == capacity, always).
        n_channels: channels per sample.
    """

    def __init__(self, capacity: int, n_channels: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 sample, got {capacity}")
        if n_channels < 1:
            raise ValueError(f"n_channels must be at least 1, got {n_channels}")
        self._capacity = int(capacity)
        self._n_channels = int(n_channels)
        # The only array memory the ring ever owns. [shape=(capacity, n_channels)]
        self._buffer = np.zeros((self._capacity, self._n_channels), dtype=SAMPLE_DTYPE)
        # Absolute sample counts since construction (or reset); written by one side each.
        self._write_count = 0
        self._read_count = 0

    # -- geometry and state, any thread ---------------------------------------------------

    @property
    def capacity(self) -> int:
        """Frames the ring holds at most."""
        return self._capacity

    @property
    def n_channels(self) -> int:
        """Channels per sample."""
        return self._n_channels

    @property
    def samples_written(self) -> int:
        """Frames written since construction or ``reset`` (the write counter)."""
        return self._write_count

    @property
    def samples_read(self) -> int:
        """Frames read or skipped since construction or ``reset`` (the read counter)."""
        return self._read_count

    def fill(self) -> int:
        """Frames readable now.

        Exact from the consumer's side (a lower bound while the producer runs); from a third
        thread a snapshot, clamped to ``[0, capacity]`` because the two counters are read at
        slightly different moments.
        """
        return min(max(self._write_count - self._read_count, 0), self._capacity)

    def space(self) -> int:
        """Frames writable now.

        Exact from the producer's side (a lower bound while the consumer runs); from a third
        thread a snapshot, clamped to ``[0, capacity]``.
        """
        return self._capacity - self.fill()

    # -- producer -------------------------------------------------------------------------

    def write(self, block: np.ndarray) -> int:
        """Copy as many samples of ``block`` as fit; return how many were copied.

        Never blocks and never raises on overflow: samples that do not fit are left to the
        caller (``block[returned:]``).

        Args:
            block: samples to append. [shape=(n_samples, n_channels), dtype=float32]
        """
        self._check_block(block, "block")
        write_count = self._write_count
        n_samples = min(block.shape[0], self._capacity - (write_count - self._read_count))
        if n_samples <= 0:
            return 0
        start = write_count % self._capacity
        n_first = min(n_samples, self._capacity - start)
        np.copyto(self._buffer[start : start + n_first], block[:n_first])
        if n_samples > n_first:
            # The rest wraps around to the start of the buffer.
            np.copyto(self._buffer[: n_samples - n_first], block[n_first:n_samples])
        # Publication: the samples become readable only now, after the copy.
        self._write_count = write_count + n_samples
        return n_samples

    def write_zeros(self, n_samples: int) -> int:
        """Append up to ``n_samples`` samples of silence; return how many were appended.

        Used to pre-fill a ring with exactly the latency it is meant to add, before the
        stream starts.
        """
        if n_samples < 0:
            raise ValueError(f"n_samples must not be negative, got {n_samples}")
        write_count = self._write_count
        n_samples = min(n_samples, self._capacity - (write_count - self._read_count))
        if n_samples <= 0:
            return 0
        start = write_count % self._capacity
        n_first = min(n_samples, self._capacity - start)
        self._buffer[start : start + n_first].fill(0.0)
        if n_samples > n_first:
            self._buffer[: n_samples - n_first].fill(0.0)
        self._write_count = write_count + n_samples
        return n_samples

    # -- consumer -------------------------------------------------------------------------

    def read_into(self, out: np.ndarray) -> int:
        """Move up to ``len(out)`` samples into ``out``; return how many were moved.

        Frames ``out[returned:]`` are left untouched (the caller decides: silence, the dry
        signal, an underrun count).

        Args:
            out: preallocated destination. [shape=(n_samples, n_channels), dtype=float32]
        """
        n_samples = self.peek_into(out)
        if n_samples > 0:
            # Release the slots only now, after the copy, so the producer cannot overwrite
            # samples that are still being read.
            self._read_count += n_samples
        return n_samples

    def peek_into(self, out: np.ndarray, offset: int = 0) -> int:
        """Copy up to ``len(out)`` samples, starting ``offset`` samples after the oldest
        readable one, into ``out`` without consuming them; return how many were copied.

        Args:
            out: preallocated destination. [shape=(n_samples, n_channels), dtype=float32]
            offset: readable samples to pass over before copying (0: the oldest one).
        """
        self._check_block(out, "out")
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        read_count = self._read_count
        n_samples = min(out.shape[0], self._write_count - read_count - offset)
        if n_samples <= 0:
            return 0
        start = (read_count + offset) % self._capacity
        n_first = min(n_samples, self._capacity - start)
        np.copyto(out[:n_first], self._buffer[start : start + n_first])
        if n_samples > n_first:
            np.copyto(out[n_first:n_samples], self._buffer[: n_samples - n_first])
        return n_samples

    def skip(self, n_samples: int) -> int:
        """Drop up to ``n_samples`` of the oldest readable samples; return how many were
        dropped."""
        if n_samples < 0:
            raise ValueError(f"n_samples must not be negative, got {n_samples}")
        read_count = self._read_count
        n_samples = min(n_samples, self._write_count - read_count)
        if n_samples <= 0:
            return 0
        self._read_count = read_count + n_samples
        return n_samples

    # -- neither side running -------------------------------------------------------------

    def reset(self) -> None:
        """Empty the ring (and zero its memory). Only while neither side runs."""
        self._buffer.fill(0.0)
        self._write_count = 0
        self._read_count = 0

    # -- helpers --------------------------------------------------------------------------

    def _check_block(self, samples: np.ndarray, name: str) -> None:
        # Cheap checks only (attribute reads and comparisons): this runs on the audio path.
        if not isinstance(samples, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, got {type(samples).__name__}")
        if samples.ndim != 2 or samples.shape[1] != self._n_channels:
            raise ValueError(
                f"{name} must have shape (n_samples, {self._n_channels}), got {samples.shape}"
            )
        if samples.dtype != SAMPLE_DTYPE:
            raise ValueError(f"{name} must be float32, got {samples.dtype}")
