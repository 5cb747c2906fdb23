"""Tests for the SPSC audio ring: against a reference deque, across threads, and for
allocation on the audio path."""

from __future__ import annotations

import collections
import random
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestems.realtime.engine.ring_buffer import AudioRingBuffer
from tests.helpers.allocations import measure_allocations

NUMPY_DOMAIN = np.lib.tracemalloc_domain


def _numbered(start: int, n_frames: int, n_channels: int) -> np.ndarray:
    """Frames whose channel ``c`` holds ``frame_index + c / 8`` (exact in float32 for the
    sizes used here), so that both order and channel layout are checked.
    [shape=(n_frames, n_channels)]"""
    index = np.arange(start, start + n_frames, dtype=np.float64)[:, None]
    return (index + np.arange(n_channels) / 8.0).astype(np.float32)


# -- reference model --------------------------------------------------------------------

OPS = st.sampled_from(["write", "read", "skip", "peek", "zeros"])


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 17),
    n_channels=st.integers(1, 3),
    ops=st.lists(st.tuples(OPS, st.integers(0, 40), st.integers(0, 20)), max_size=60),
)
def test_matches_a_deque_of_frames(
    capacity: int, n_channels: int, ops: list[tuple[str, int, int]]
) -> None:
    ring = AudioRingBuffer(capacity, n_channels)
    reference: collections.deque[tuple[float, ...]] = collections.deque()
    next_frame = 1  # frame 0 would look like the zeros of write_zeros
    for op, n_frames, offset in ops:
        if op == "write":
            block = _numbered(next_frame, n_frames, n_channels)
            next_frame += n_frames
            n_written = ring.write(block)
            assert n_written == min(n_frames, capacity - len(reference))
            reference.extend(tuple(frame) for frame in block[:n_written].tolist())
        elif op == "zeros":
            n_written = ring.write_zeros(n_frames)
            assert n_written == min(n_frames, capacity - len(reference))
            reference.extend([(0.0,) * n_channels] * n_written)
        elif op == "read":
            out = np.full((n_frames, n_channels), np.nan, dtype=np.float32)
            n_read = ring.read_into(out)
            assert n_read == min(n_frames, len(reference))
            expected = [reference.popleft() for _ in range(n_read)]
            assert [tuple(frame) for frame in out[:n_read].tolist()] == expected
            assert np.isnan(out[n_read:]).all(), "frames past the count must be untouched"
        elif op == "peek":
            out = np.full((n_frames, n_channels), np.nan, dtype=np.float32)
            n_peeked = ring.peek_into(out, offset)
            assert n_peeked == max(0, min(n_frames, len(reference) - offset))
            expected = list(reference)[offset : offset + n_peeked]
            assert [tuple(frame) for frame in out[:n_peeked].tolist()] == expected
            assert np.isnan(out[n_peeked:]).all()
        else:
            n_skipped = ring.skip(n_frames)
            assert n_skipped == min(n_frames, len(reference))
            for _ in range(n_skipped):
                reference.popleft()
        assert ring.fill() == len(reference)
        assert ring.fill() + ring.space() == capacity
        assert ring.samples_written - ring.samples_read == len(reference)


def test_write_more_than_capacity_keeps_the_oldest() -> None:
    ring = AudioRingBuffer(8, 2)
    block = _numbered(0, 20, 2)
    assert ring.write(block) == 8
    assert ring.write(block[8:]) == 0  # full: nothing copied, nothing raised
    out = np.zeros((20, 2), dtype=np.float32)
    assert ring.read_into(out) == 8
    np.testing.assert_array_equal(out[:8], block[:8])
    assert ring.read_into(out) == 0  # empty: nothing copied, nothing raised


def test_wraps_around_many_times() -> None:
    ring = AudioRingBuffer(7, 2)
    out = np.zeros((5, 2), dtype=np.float32)
    for i in range(50):
        block = _numbered(5 * i, 5, 2)
        assert ring.write(block) == 5
        assert ring.read_into(out) == 5
        np.testing.assert_array_equal(out, block)
    assert ring.samples_written == ring.samples_read == 250


def test_write_zeros_prefills_exactly_the_latency() -> None:
    latency = 37
    ring = AudioRingBuffer(64, 2)
    assert ring.write_zeros(latency) == latency
    signal = _numbered(1, 20, 2)
    ring.write(signal)
    out = np.full((latency + 20, 2), np.nan, dtype=np.float32)
    assert ring.read_into(out) == latency + 20
    np.testing.assert_array_equal(out[:latency], 0.0)
    np.testing.assert_array_equal(out[latency:], signal)


def test_write_zeros_zeroes_slots_that_held_audio() -> None:
    ring = AudioRingBuffer(4, 1)
    ring.write(np.ones((4, 1), dtype=np.float32))
    ring.skip(3)
    assert ring.write_zeros(10) == 3  # wraps into the slots of the skipped frames
    out = np.full((4, 1), np.nan, dtype=np.float32)
    assert ring.read_into(out) == 4
    np.testing.assert_array_equal(out[:, 0], [1.0, 0.0, 0.0, 0.0])


def test_reset_empties_the_ring() -> None:
    ring = AudioRingBuffer(8, 1)
    ring.write(np.ones((5, 1), dtype=np.float32))
    ring.skip(2)
    ring.reset()
    assert (ring.fill(), ring.space(), ring.samples_written, ring.samples_read) == (0, 8, 0, 0)
    out = np.zeros((8, 1), dtype=np.float32)
    assert ring.read_into(out) == 0


def test_properties() -> None:
    ring = AudioRingBuffer(10, 3)
    assert (ring.capacity, ring.n_channels, ring.fill(), ring.space()) == (10, 3, 0, 10)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 3), dtype=np.float32),  # wrong channel count
        np.zeros(4, dtype=np.float32),  # mono without a channel axis
        np.zeros((4, 2, 1), dtype=np.float32),
        np.zeros((4, 2), dtype=np.float64),  # wrong dtype
        [[0.0, 0.0]],  # not an array
    ],
    ids=["channels", "1d", "3d", "float64", "list"],
)
def test_wrong_blocks_raise(bad: np.ndarray) -> None:
    ring = AudioRingBuffer(8, 2)
    with pytest.raises(ValueError):
        ring.write(bad)
    with pytest.raises(ValueError):
        ring.read_into(bad)
    with pytest.raises(ValueError):
        ring.peek_into(bad)
    assert ring.fill() == 0


@pytest.mark.parametrize(("capacity", "n_channels"), [(0, 2), (8, 0), (-1, 1)])
def test_bad_geometry_raises(capacity: int, n_channels: int) -> None:
    with pytest.raises(ValueError):
        AudioRingBuffer(capacity, n_channels)


def test_negative_counts_raise() -> None:
    ring = AudioRingBuffer(8, 1)
    out = np.zeros((1, 1), dtype=np.float32)
    with pytest.raises(ValueError):
        ring.skip(-1)
    with pytest.raises(ValueError):
        ring.write_zeros(-1)
    with pytest.raises(ValueError):
        ring.peek_into(out, offset=-1)


# -- two threads ------------------------------------------------------------------------


def test_producer_and_consumer_threads_move_every_frame_once_in_order() -> None:
    n_total = 2 * 44100  # two seconds at 44.1 kHz
    n_channels = 2
    ring = AudioRingBuffer(1000, n_channels)
    frames = _numbered(0, n_total, n_channels)
    received = np.full((n_total, n_channels), np.nan, dtype=np.float32)
    errors: list[BaseException] = []
    deadline = time.monotonic() + 20.0

    def produce() -> None:
        try:
            rng = random.Random(1)
            position = 0
            while position < n_total and time.monotonic() < deadline:
                n_frames = rng.randint(0, 700)
                position += ring.write(frames[position : position + n_frames])
                if rng.random() < 0.2:
                    time.sleep(0)  # let the other side run at odd moments
        except BaseException as error:  # noqa: BLE001 (reported by the main thread)
            errors.append(error)

    def consume() -> None:
        try:
            rng = random.Random(2)
            position = 0
            out = np.zeros((700, n_channels), dtype=np.float32)
            while position < n_total and time.monotonic() < deadline:
                n_frames = rng.randint(0, 700)
                n_read = ring.read_into(out[:n_frames])
                received[position : position + n_read] = out[:n_read]
                position += n_read
                if rng.random() < 0.2:
                    time.sleep(0)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    # A short switch interval makes the GIL change hands often, mid-call included.
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30.0)
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    np.testing.assert_array_equal(received, frames)
    assert ring.samples_written == ring.samples_read == n_total


# -- allocation on the audio path -------------------------------------------------------


# Python objects that a call creates and drops (array views, ints) stay well under this;
# one temporary copy of the blocks used below (1024 frames x 2 channels) is 8 KiB.
TRANSIENT_BYTES = 2048
GROWTH_BYTES = 512


def test_write_and_read_allocate_nothing() -> None:
    ring = AudioRingBuffer(3000, 2)
    blocks = [_numbered(0, n, 2) for n in (1024, 1000, 1021)]  # sizes that wrap at odd places
    out = np.zeros((1024, 2), dtype=np.float32)
    counter = [0]

    def step() -> None:
        block = blocks[counter[0] % 3]
        counter[0] += 1
        ring.write(block)
        ring.peek_into(out[:100], 10)
        ring.read_into(out[: block.shape[0] - 7])
        ring.skip(3)
        ring.write_zeros(4)
        ring.fill()
        ring.space()

    for n_iterations in (1000, 4000):
        numpy_blocks, growth, transient = measure_allocations(step, n_iterations)
        assert numpy_blocks == 0
        assert abs(growth) <= GROWTH_BYTES, growth
        assert transient <= TRANSIENT_BYTES, transient


def test_allocation_check_sees_temporary_and_kept_arrays() -> None:
    """The checks above fail when a step copies its block first (a temporary, seen by the
    peak) or keeps array memory beyond the call (seen in numpy's domain and as growth)."""
    ring = AudioRingBuffer(3000, 2)
    block = _numbered(0, 1024, 2)
    out = np.zeros((1024, 2), dtype=np.float32)
    kept: list[np.ndarray] = []

    def copying_step() -> None:
        ring.write(np.concatenate([block[:512], block[512:]]))
        ring.read_into(out)

    def keeping_step() -> None:
        ring.write(block)
        ring.read_into(out)
        kept.append(out[:4].copy())

    _, _, transient = measure_allocations(copying_step, 100)
    assert transient > TRANSIENT_BYTES
    numpy_blocks, growth, _ = measure_allocations(keeping_step, 100)
    assert numpy_blocks == 100
    assert growth > GROWTH_BYTES
