"""Tests for the stem mixer: mute/solo logic, exact steady-state gains, click-free ramps,
block-size invariance, and allocation on the audio path."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import pytest

from livestems.realtime.engine.mixer import StemMixer, db_to_gain, gain_to_db
from tests.helpers.allocations import measure_allocations

SAMPLE_RATE = 44100
NUMPY_DOMAIN = np.lib.tracemalloc_domain
# One float32 rounding of a gain near 1, and of a difference of two such gains.
GAIN_TOLERANCE = 1e-6


def _run_past_ramps(mixer: StemMixer) -> None:
    """Mix silence until every ramp has finished."""
    n_samples = mixer.max_block
    stems = np.zeros((mixer.n_stems, n_samples, mixer.n_channels), dtype=np.float32)
    out = np.zeros((n_samples, mixer.n_channels), dtype=np.float32)
    for _ in range(mixer.ramp_samples // n_samples + 1):
        mixer.mix_into(stems, out)


def _reference_mix(stems: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Stems times float32 gains, summed stem by stem in float32.
    [shape=(n_samples, n_channels)]"""
    out = np.zeros(stems.shape[1:], dtype=np.float32)
    for stem, gain in zip(stems, gains.astype(np.float32), strict=True):
        out = out + stem * gain
    return out


def _mix_in_blocks(
    mixer: StemMixer,
    stems: np.ndarray,
    cuts: list[int],
    events: dict[int, list[Callable[[StemMixer], None]]],
) -> np.ndarray:
    """Mix ``stems`` in blocks ending at ``cuts``, applying ``events[t]`` before sample t.
    [shape=(n_samples, n_channels)]"""
    out = np.full(stems.shape[1:], np.nan, dtype=np.float32)
    start = 0
    for end in cuts:
        for event in events.get(start, []):
            event(mixer)
        mixer.mix_into(stems[:, start:end], out[start:end])
        start = end
    return out


# -- mute and solo ----------------------------------------------------------------------

# (muted, soloed, stems that sound) for stems A=0, B=1, C=2.
TRUTH_TABLE = [
    ((), (), {0, 1, 2}),
    ((), (0,), {0}),
    ((0,), (0,), set()),
    ((1,), (0,), {0}),
    ((), (0, 1), {0, 1}),
    ((0, 1, 2), (), set()),
    ((1,), (), {0, 2}),
    ((0,), (0, 1), {1}),
    ((0, 1, 2), (0, 1, 2), set()),
    ((), (0, 1, 2), {0, 1, 2}),
]


@pytest.mark.parametrize(("muted", "soloed", "sounding"), TRUTH_TABLE)
def test_mute_solo_truth_table(
    muted: tuple[int, ...], soloed: tuple[int, ...], sounding: set[int]
) -> None:
    mixer = StemMixer(3, 1, SAMPLE_RATE, 64)
    faders = [0.5, 0.25, 2.0]
    for stem, fader in enumerate(faders):
        mixer.set_gain(stem, fader)
    mixer.set_master_gain(0.5)
    for stem in muted:
        mixer.set_mute(stem, True)
    for stem in soloed:
        mixer.set_solo(stem, True)
    expected = [faders[s] * 0.5 if s in sounding else 0.0 for s in range(3)]
    assert mixer.effective_targets().tolist() == expected
    # And through the audio: stems 1, 10, 100 make each sounding set a distinct sum.
    _run_past_ramps(mixer)
    stems = np.broadcast_to(
        np.array([1.0, 10.0, 100.0], dtype=np.float32)[:, None, None], (3, 64, 1)
    ).copy()
    out = np.full((64, 1), np.nan, dtype=np.float32)
    mixer.mix_into(stems, out)
    np.testing.assert_array_equal(out, _reference_mix(stems, np.array(expected)))


@pytest.mark.parametrize(
    ("muted", "soloed"),
    list(itertools.product(itertools.product([False, True], repeat=3), repeat=2)),
)
def test_mute_solo_all_combinations(
    muted: tuple[bool, bool, bool], soloed: tuple[bool, bool, bool]
) -> None:
    mixer = StemMixer(3, 1, SAMPLE_RATE, 64)
    for stem in range(3):
        mixer.set_mute(stem, muted[stem])
        mixer.set_solo(stem, soloed[stem])
    # Any solo wins; mute beats solo: the soloed stems (all, if none) less the muted ones.
    candidates = {s for s in range(3) if soloed[s]} or {0, 1, 2}
    sounding = candidates - {s for s in range(3) if muted[s]}
    assert mixer.effective_targets().tolist() == [float(s in sounding) for s in range(3)]
    assert [mixer.is_muted(s) for s in range(3)] == list(muted)
    assert [mixer.is_soloed(s) for s in range(3)] == list(soloed)


def test_unmute_and_unsolo_restore_the_fader() -> None:
    mixer = StemMixer(2, 1, SAMPLE_RATE, 64)
    mixer.set_gain(0, 0.3)
    mixer.set_mute(0, True)
    mixer.set_solo(1, True)
    assert mixer.effective_targets().tolist() == [0.0, 1.0]
    mixer.set_mute(0, False)
    mixer.set_solo(1, False)
    assert mixer.effective_targets().tolist() == [0.3, 1.0]
    assert mixer.gain(0) == 0.3  # the fader is kept while muted


# -- exact steady state -----------------------------------------------------------------


def test_steady_state_gains_are_exact() -> None:
    rng = np.random.default_rng(0)
    mixer = StemMixer(4, 2, SAMPLE_RATE, 512)
    gains = [0.7, 1.3, 0.123456789, 1.0]
    for stem, gain in enumerate(gains):
        mixer.set_gain(stem, gain)
    mixer.set_master_gain(0.9)
    _run_past_ramps(mixer)
    expected = np.array(gains) * 0.9
    # Bitwise: the ramp ends on the target itself, not on start + n * step.
    assert mixer.current_gains().tolist() == expected.tolist()
    stems = rng.standard_normal((4, 512, 2)).astype(np.float32)
    out = np.full((512, 2), np.nan, dtype=np.float32)
    for n_samples in (512, 1, 77):
        mixer.mix_into(stems[:, :n_samples], out[:n_samples])
        np.testing.assert_array_equal(
            out[:n_samples], _reference_mix(stems[:, :n_samples], expected)
        )


def test_default_is_unity_without_a_ramp() -> None:
    rng = np.random.default_rng(1)
    mixer = StemMixer(4, 2, SAMPLE_RATE, 256)
    stems = rng.standard_normal((4, 256, 2)).astype(np.float32)
    out = np.empty((256, 2), dtype=np.float32)
    mixer.mix_into(stems, out)
    np.testing.assert_array_equal(out, _reference_mix(stems, np.ones(4)))


def test_silence_overwrites_the_output_and_muted_stems_cannot_leak_nan() -> None:
    mixer = StemMixer(2, 2, SAMPLE_RATE, 32)
    mixer.set_mute(0, True)
    mixer.set_mute(1, True)
    _run_past_ramps(mixer)
    stems = np.full((2, 32, 2), np.nan, dtype=np.float32)
    out = np.full((32, 2), np.nan, dtype=np.float32)
    mixer.mix_into(stems, out)
    np.testing.assert_array_equal(out, 0.0)


def test_an_empty_block_is_fine() -> None:
    # An empty block mixes nothing and moves no ramp: a gain change in progress goes on after
    # it exactly as if the empty block had never come.
    blocks = np.random.default_rng(3).uniform(-1, 1, (2, 2, 32, 2)).astype(np.float32)
    outputs = []
    for with_empty in (False, True):
        mixer = StemMixer(2, 2, SAMPLE_RATE, 32)
        mixer.set_gain(0, 0.25)
        out = np.empty((2, 32, 2), dtype=np.float32)
        mixer.mix_into(blocks[0], out[0])
        if with_empty:
            mixer.mix_into(np.zeros((2, 0, 2), np.float32), np.zeros((0, 2), np.float32))
        mixer.mix_into(blocks[1], out[1])
        outputs.append(out)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert 0.25 < mixer.current_gains()[0] < 1.0  # the ramp is still under way


# -- ramps ------------------------------------------------------------------------------


def test_ramp_is_ten_milliseconds_and_linear() -> None:
    mixer = StemMixer(1, 1, SAMPLE_RATE, 1024)
    assert mixer.ramp_samples == 441
    ones = np.ones((1, 1024, 1), dtype=np.float32)
    out = np.empty((1024, 1), dtype=np.float32)
    mixer.set_gain(0, 0.0)
    mixer.mix_into(ones, out)
    gains = out[:, 0].astype(np.float64)
    np.testing.assert_allclose(gains[:440], 1.0 - np.arange(1, 441) / 441, atol=GAIN_TOLERANCE)
    assert gains[439] > 0.0
    assert gains[440] == 0.0  # the 441st sample after the change is on the target
    np.testing.assert_array_equal(gains[440:], 0.0)


def test_ramp_spans_blocks_and_restarts_from_the_current_gain() -> None:
    mixer = StemMixer(1, 1, SAMPLE_RATE, 64)
    ones = np.ones((1, 64, 1), dtype=np.float32)
    out = np.empty((64, 1), dtype=np.float32)
    mixer.set_gain(0, 0.0)
    played: list[float] = []
    for _ in range(3):  # 192 samples into a 441-sample ramp
        mixer.mix_into(ones, out)
        played.extend(out[:, 0].tolist())
    current = mixer.current_gains()[0]
    assert current == pytest.approx(1.0 - 192 / 441)
    assert played[-1] == np.float32(current)
    mixer.set_gain(0, 1.0)  # back up, from where it is
    mixer.mix_into(ones, out)
    step = (1.0 - current) / 441
    np.testing.assert_allclose(
        out[:, 0], current + step * np.arange(1, 65), atol=GAIN_TOLERANCE, rtol=0
    )


def test_zero_ramp_jumps() -> None:
    mixer = StemMixer(1, 1, SAMPLE_RATE, 8, ramp_seconds=0.0)
    assert mixer.ramp_samples == 1
    mixer.set_gain(0, 0.25)
    out = np.empty((8, 1), dtype=np.float32)
    mixer.mix_into(np.ones((1, 8, 1), dtype=np.float32), out)
    np.testing.assert_array_equal(out, 0.25)


def _random_event(rng: random.Random, n_stems: int) -> Callable[[StemMixer], None]:
    stem = rng.randrange(n_stems)
    kind = rng.choice(["gain", "gain", "mute", "solo", "master", "pan"])
    value = rng.choice([0.0, 1.0, rng.uniform(0.0, 2.0)])
    flag = rng.random() < 0.5
    if kind == "pan":
        pan = rng.choice([-1.0, 0.0, 1.0, rng.uniform(-1.0, 1.0)])
        return lambda mixer: mixer.set_pan(stem, pan)
    if kind == "gain":
        return lambda mixer: mixer.set_gain(stem, value)
    if kind == "mute":
        return lambda mixer: mixer.set_mute(stem, flag)
    if kind == "solo":
        return lambda mixer: mixer.set_solo(stem, flag)
    return lambda mixer: mixer.set_master_gain(value)


@pytest.mark.parametrize("seed", range(6))
def test_no_click_under_random_control_events(seed: int) -> None:
    """Stem s is DC 1.0 on channel s only, so output channel s is stem s's gain, sample by
    sample; every change of its target must be a linear ramp of ramp_samples samples."""
    rng = random.Random(seed)
    n_stems = 4
    mixer = StemMixer(n_stems, n_stems, SAMPLE_RATE, 1024)
    ramp = mixer.ramp_samples
    n_blocks = 200
    sizes = [rng.choice([rng.randint(1, 1024), rng.randint(1, 64)]) for _ in range(n_blocks)]
    n_total = sum(sizes)
    stems = np.zeros((n_stems, 1024, n_stems), dtype=np.float32)
    for s in range(n_stems):
        stems[s, :, s] = 1.0
    out = np.empty((n_total, n_stems), dtype=np.float32)
    changes: list[list[tuple[int, float]]] = [[(0, 1.0)] for _ in range(n_stems)]
    targets = mixer.effective_targets()
    start = 0
    for size in sizes:
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 3)):
                _random_event(rng, n_stems)(mixer)
            new_targets = mixer.effective_targets()
            for changed in np.flatnonzero(new_targets != targets):
                changes[changed].append((start, float(new_targets[changed])))
            targets = new_targets
        mixer.mix_into(stems[:, :size], out[start : start + size])
        start += size

    gains = out.astype(np.float64)
    largest_step = 0.0
    n_completed = 0
    for s in range(n_stems):
        bounds = [t for t, _ in changes[s][1:]] + [n_total]
        for (t, target), t_next in zip(changes[s][1:], bounds[1:], strict=True):
            previous = gains[t - 1, s] if t > 0 else 1.0
            step = abs(target - previous) / ramp
            largest_step = max(largest_step, step)
            # Each sample moves by the step at most, from the gain last played on.
            segment = np.concatenate([[previous], gains[t:t_next, s]])
            assert np.abs(np.diff(segment)).max() <= step + GAIN_TOLERANCE
            if t_next - t >= ramp:
                # Done after ramp_samples, and then exactly on the target.
                np.testing.assert_array_equal(gains[t + ramp - 1 : t_next, s], np.float32(target))
                n_completed += 1
    assert np.abs(np.diff(gains, axis=0)).max() <= largest_step + GAIN_TOLERANCE
    # Not vacuous: many changes, many ramps seen to the end, some retargeted mid-way.
    assert sum(len(c) - 1 for c in changes) >= 20
    assert n_completed >= 10


@pytest.mark.parametrize("partition", ["ones", "64", "65", "random"])
def test_block_size_does_not_change_the_output(partition: str) -> None:
    rng = random.Random(7)
    n_stems, n_total = 4, 6000
    stems = np.random.default_rng(7).standard_normal((n_stems, n_total, 2)).astype(np.float32)
    events: dict[int, list[Callable[[StemMixer], None]]] = {}
    for t in sorted(rng.sample(range(0, n_total, 3), 25)):
        events[t] = [_random_event(rng, n_stems) for _ in range(rng.randint(1, 3))]
    event_cuts = sorted(set(events) - {0}) + [n_total]

    whole = _mix_in_blocks(StemMixer(n_stems, 2, SAMPLE_RATE, n_total), stems, event_cuts, events)

    if partition == "ones":
        extra = list(range(1, n_total))
    elif partition == "random":
        extra = list(itertools.accumulate(rng.randint(1, 1024) for _ in range(40)))
    else:
        extra = list(range(int(partition), n_total, int(partition)))
    cuts = sorted({c for c in extra if c < n_total} | set(event_cuts))
    max_block = max(b - a for a, b in zip([0, *cuts[:-1]], cuts, strict=True))
    pieces = _mix_in_blocks(StemMixer(n_stems, 2, SAMPLE_RATE, max_block), stems, cuts, events)
    np.testing.assert_array_equal(pieces, whole)


# -- controls ---------------------------------------------------------------------------


def test_decibel_helpers() -> None:
    assert db_to_gain(0.0) == 1.0
    assert db_to_gain(-20.0) == pytest.approx(0.1)
    assert db_to_gain(20 * math.log10(0.5)) == pytest.approx(0.5)
    assert db_to_gain(-math.inf) == 0.0
    assert gain_to_db(1.0) == 0.0
    assert gain_to_db(0.0) == -math.inf
    assert gain_to_db(db_to_gain(-13.5)) == pytest.approx(-13.5)
    mixer = StemMixer(2, 1, SAMPLE_RATE, 16)
    mixer.set_gain_db(1, -6.0)
    assert mixer.gain(1) == pytest.approx(10 ** (-6 / 20))
    assert mixer.gain_db(1) == pytest.approx(-6.0)
    mixer.set_gain_db(0, -math.inf)
    assert mixer.gain(0) == 0.0
    mixer.set_master_gain_db(-20.0)
    assert mixer.master_gain() == pytest.approx(0.1)
    assert mixer.master_gain_db() == pytest.approx(-20.0)


def test_reset_jumps_to_the_targets() -> None:
    mixer = StemMixer(2, 1, SAMPLE_RATE, 16)
    mixer.set_gain(0, 0.5)
    mixer.set_mute(1, True)
    mixer.reset()
    assert mixer.current_gains().tolist() == [0.5, 0.0]
    out = np.empty((16, 1), dtype=np.float32)
    mixer.mix_into(np.ones((2, 16, 1), dtype=np.float32), out)
    np.testing.assert_array_equal(out, 0.5)


@pytest.mark.parametrize("stem", [-1, 3, 1.0, True, "0", None])
def test_invalid_stem_index_raises(stem: object) -> None:
    mixer = StemMixer(3, 2, SAMPLE_RATE, 16)
    for call in (
        lambda: mixer.set_gain(stem, 1.0),
        lambda: mixer.set_gain_db(stem, 0.0),
        lambda: mixer.set_mute(stem, True),
        lambda: mixer.set_solo(stem, True),
        lambda: mixer.gain(stem),
        lambda: mixer.is_muted(stem),
    ):
        with pytest.raises(ValueError):
            call()


def test_numpy_integer_stem_index_is_accepted() -> None:
    mixer = StemMixer(3, 2, SAMPLE_RATE, 16)
    mixer.set_gain(np.int64(2), 0.5)
    assert mixer.gain(2) == 0.5


@pytest.mark.parametrize("gain", [-0.1, math.nan, math.inf])
def test_invalid_gain_raises(gain: float) -> None:
    mixer = StemMixer(2, 1, SAMPLE_RATE, 16)
    with pytest.raises(ValueError):
        mixer.set_gain(0, gain)
    with pytest.raises(ValueError):
        mixer.set_master_gain(gain)
    assert mixer.effective_targets().tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("stems_shape", "out_shape", "dtype"),
    [
        ((3, 16, 2), (16, 2), np.float32),  # wrong stem count
        ((2, 16, 1), (16, 1), np.float32),  # wrong channel count
        ((2, 17, 2), (17, 2), np.float32),  # longer than max_block
        ((2, 16, 2), (15, 2), np.float32),  # lengths differ
        ((2, 16, 2), (16, 2), np.float64),
    ],
)
def test_wrong_blocks_raise(
    stems_shape: tuple[int, ...], out_shape: tuple[int, ...], dtype: type
) -> None:
    mixer = StemMixer(2, 2, SAMPLE_RATE, 16)
    with pytest.raises(ValueError):
        mixer.mix_into(np.zeros(stems_shape, dtype=dtype), np.zeros(out_shape, dtype=dtype))


@pytest.mark.parametrize(
    "args", [(0, 2, 44100, 16), (2, 0, 44100, 16), (2, 2, 0, 16), (2, 2, 44100, 0)]
)
def test_bad_geometry_raises(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        StemMixer(*args)
    with pytest.raises(ValueError):
        StemMixer(2, 2, 44100, 16, ramp_seconds=-0.01)


# -- allocation on the audio path -------------------------------------------------------


def test_mix_allocates_nothing() -> None:
    n_stems, n_channels, max_block = 4, 2, 1024
    mixer = StemMixer(n_stems, n_channels, SAMPLE_RATE, max_block)
    rng = np.random.default_rng(3)
    stems = rng.standard_normal((n_stems, max_block, n_channels)).astype(np.float32)
    out = np.zeros((max_block, n_channels), dtype=np.float32)
    sizes = [1024, 1, 333, 64, 1000, 7]
    gains = [0.0, 0.5, 1.0, 0.25]
    counter = [0]

    def step() -> None:
        i = counter[0]
        counter[0] += 1
        if i % 5 == 0:
            # Keeps ramps running (and retargeted mid-way), and one stem steady at zero.
            mixer.set_gain(i % 3, gains[i % 4])
            mixer.set_solo(1, i % 20 == 0)
            mixer.set_pan(2, (-1.0, 0.3, 0.0, 1.0)[i % 4])
        n_samples = sizes[i % len(sizes)]
        mixer.mix_into(stems[:, :n_samples], out[:n_samples])

    for n_iterations in (1000, 4000):
        numpy_blocks, growth, transient = measure_allocations(step, n_iterations)
        assert numpy_blocks == 0
        assert abs(growth) <= 512, growth
        # One temporary of a block (1024 x 2 float32) would be 8 KiB.
        assert transient <= 2048, transient


# -- pan --------------------------------------------------------------------------------


def test_pan_is_a_balance_that_never_boosts_and_keeps_the_middle_as_recorded() -> None:
    """Stem 0 is DC 1.0 on both channels: the output is each channel's gain."""
    mixer = StemMixer(1, 2, SAMPLE_RATE, 256)
    stems = np.ones((1, 256, 2), dtype=np.float32)
    out = np.zeros((256, 2), dtype=np.float32)
    for pan, (left, right) in [
        (0.0, (1.0, 1.0)),
        (1.0, (0.0, 1.0)),
        (-1.0, (1.0, 0.0)),
        (0.5, (np.cos(np.pi / 4), 1.0)),
        (-0.25, (1.0, np.cos(np.pi / 8))),
    ]:
        mixer.set_pan(0, pan)
        mixer.reset()
        mixer.mix_into(stems, out)
        np.testing.assert_allclose(out[-1], [left, right], atol=GAIN_TOLERANCE)
        assert mixer.pan(0) == pan
    # the meters read the fader, whatever the pan
    assert mixer.current_gains().tolist() == [1.0]


def test_a_pan_change_ramps_like_a_fader() -> None:
    mixer = StemMixer(1, 2, SAMPLE_RATE, 64)
    ramp = mixer.ramp_samples
    stems = np.ones((1, 64, 2), dtype=np.float32)
    n_blocks = ramp // 64 + 4
    out = np.zeros((n_blocks * 64, 2), dtype=np.float32)
    mixer.set_pan(0, 1.0)  # left falls from 1 to 0 over the ramp
    for b in range(n_blocks):
        mixer.mix_into(stems, out[b * 64 : (b + 1) * 64])
    left = out[:, 0].astype(np.float64)
    assert np.abs(np.diff(np.concatenate([[1.0], left]))).max() <= 1.0 / ramp + GAIN_TOLERANCE
    assert left[ramp - 1] == 0.0 and np.all(out[:, 1] == 1.0)


@pytest.mark.parametrize("pan", [1.5, -2.0, float("nan"), float("inf")])
def test_a_pan_outside_the_range_raises(pan: float) -> None:
    with pytest.raises(ValueError, match="pan must be between -1 and 1"):
        StemMixer(2, 2, SAMPLE_RATE, 64).set_pan(0, pan)


def test_pan_does_nothing_to_a_mono_mix() -> None:
    mixer = StemMixer(2, 1, SAMPLE_RATE, 64)
    mixer.set_pan(0, 1.0)
    mixer.reset()
    out = np.zeros((64, 1), dtype=np.float32)
    mixer.mix_into(np.ones((2, 64, 1), dtype=np.float32), out)
    np.testing.assert_array_equal(out, 2.0)
