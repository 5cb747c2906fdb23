"""Practice playback: tempo with the pitch kept and transposition with the tempo kept (Rubber
Band in the worker), click-free changes, song time, the count-in on the grid, through the
source alone and through the engine."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pylibrb")

from livestems.realtime.backends.portaudio import OfflineBackend, Recorder  # noqa: E402
from livestems.realtime.dsp.presets import PRESETS  # noqa: E402
from livestems.realtime.engine.engine import Engine, EngineSettings  # noqa: E402
from livestems.realtime.engine.processor import IdentityHopModel, StreamProcessor  # noqa: E402
from livestems.realtime.engine.sources import FileSource  # noqa: E402
from livestems.realtime.errors import UserError  # noqa: E402
from livestems.realtime.practice.practice_source import (  # noqa: E402
    CHUNK,
    COUNT_IN_BEATS,
    ENGAGE_AHEAD,
    ENGAGE_FADE,
    START_CHUNKS_PER_REFILL,
    PracticeSource,
)
from livestems.realtime.practice.tempo_key import TempoKeyStretcher  # noqa: E402

RATE = 44100
BLOCK = 256


def tone(frequency: float, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


def click_track(bpm: float, seconds: float, frequency: float = 1000.0) -> np.ndarray:
    """30 ms tone bursts on every beat, [shape=(n, 2)]."""
    out = np.zeros((int(seconds * RATE), 2), np.float32)
    burst = tone(frequency, 0.03, 0.5) * np.hanning(int(0.03 * RATE))[:, None].astype(np.float32)
    for onset in np.arange(0.25, seconds - 0.1, 60.0 / bpm):
        start = int(round(onset * RATE))
        out[start : start + burst.shape[0]] += burst
    return out


def play(source: PracticeSource, seconds: float, block: int = BLOCK, during=None) -> np.ndarray:
    """What the callback reads, block by block, the worker refilling after each (as in the
    engine): [shape=(n, n_columns)]."""
    source.restart()
    blocks = []
    buffer = np.zeros((block, source.n_columns), np.float32)
    for index in range(int(seconds * RATE) // block):
        if during is not None:
            during(source, index * block)
        source.read_block_into(buffer)
        blocks.append(buffer.copy())
        source.refill()
    return np.concatenate(blocks)


def peak_frequency(x: np.ndarray) -> float:
    """The strongest frequency, interpolated between bins (parabola on the log magnitude)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / x.shape[0]


def onsets(x: np.ndarray, threshold: float) -> np.ndarray:
    """Sample indices where |x| first rises above ``threshold`` after 100 ms below it."""
    above = np.flatnonzero(np.abs(x) > threshold)
    if above.size == 0:
        return above
    keep = np.concatenate([[True], np.diff(above) > int(0.1 * RATE)])
    return above[keep]


def test_at_the_songs_own_tempo_and_key_the_source_plays_the_song_sample_for_sample() -> None:
    song = tone(440.0, 3.0)
    out = play(PracticeSource(song, RATE), 2.5)
    np.testing.assert_array_equal(out[:, :2], song[: out.shape[0]])
    np.testing.assert_allclose(out[:, -1], np.arange(out.shape[0]) / RATE, atol=1e-6)


def test_a_tone_transposed_an_octave_up_comes_out_an_octave_higher_at_its_tempo() -> None:
    source = PracticeSource(tone(440.0, 4.0), RATE)
    source.set_transpose(12)
    out = play(source, 3.5)
    assert peak_frequency(out[RATE : 3 * RATE, 0]) == pytest.approx(880.0, rel=0.01)
    # the tempo is kept: 3.5 s played is 3.5 s of song
    assert out[-1, -1] == pytest.approx(3.5, abs=0.01)


def test_at_half_tempo_clicks_come_twice_as_far_apart_at_their_own_pitch() -> None:
    song = click_track(120.0, 6.0)
    source = PracticeSource(song, RATE)
    source.set_tempo(0.5)
    out = play(source, 10.0)[:, 0]
    found = onsets(out, 0.1)
    assert len(found) >= 8
    gaps = np.diff(found[1:]) / RATE  # the first may straddle the start
    np.testing.assert_allclose(gaps, 1.0, rtol=0.01)
    pitches = [peak_frequency(out[start : start + int(0.05 * RATE)]) for start in found[1:-1]]
    np.testing.assert_allclose(pitches, 1000.0, rtol=0.01)
    # the transport stays in song time: 10 s heard at half tempo is 5 s of song
    assert out.shape[0] / RATE == pytest.approx(10.0, abs=0.01)


@pytest.mark.parametrize(
    ("before", "after"),
    [((1.0, 0.0), (0.8, 0.0)), ((0.8, 0.0), (1.25, 3.0)), ((1.0, 0.0), (1.0, -12.0))],
)
def test_a_tempo_or_key_change_mid_song_leaves_no_step_larger_than_the_signals_own(
    before: tuple[float, float], after: tuple[float, float]
) -> None:
    song = tone(440.0, 6.0)
    source = PracticeSource(song, RATE)
    source.set_tempo(before[0])
    source.set_transpose(before[1])

    def change(source: PracticeSource, sample: int) -> None:
        if sample == 2 * RATE // BLOCK * BLOCK:
            source.set_tempo(after[0])
            source.set_transpose(after[1])

    out = play(source, 4.0, during=change)[:, 0]
    # the largest step a 0.3 sine makes, at the higher of the two pitches
    highest = 440.0 * 2 ** (max(before[1], after[1], 0.0) / 12)
    own = 0.3 * 2 * np.pi * highest / RATE
    # Rubber Band's amplitude ripple is ~0.1 %; a click would be many times the sine's step
    assert np.abs(np.diff(out)).max() <= own * 1.01


def test_seeking_and_looping_stay_in_song_time_at_another_tempo() -> None:
    song = tone(440.0, 8.0)
    source = PracticeSource(song, RATE)
    source.set_tempo(0.8)
    source.set_loop(2.0, 3.0)
    source.seek(2.0)
    out = play(source, 4.0)
    times = out[:, -1]
    # every sample heard is inside the loop (song time), and the loop came round: at 0.8 a
    # second of song lasts 1.25 s, so 4 s hold three passes
    assert times.min() >= 2.0 - 1e-3 and times.max() <= 3.0 + 1e-3
    wraps = np.flatnonzero(np.diff(times) < -0.5)
    assert len(wraps) == 3
    assert wraps[0] / RATE == pytest.approx(1.25, abs=0.02)
    # the clock moves at 0.8 song seconds per second heard
    first = times[: wraps[0]]
    slope = np.polyfit(np.arange(first.shape[0]) / RATE, first, 1)[0]
    assert slope == pytest.approx(0.8, rel=0.005)
    assert source.seconds == pytest.approx(float(times[-1]))


def play_counting_stretcher_work(
    source: PracticeSource, seconds: float, monkeypatch: pytest.MonkeyPatch, during=None
) -> tuple[np.ndarray, list[int], list[bool]]:
    """``play``, also counting the song samples Rubber Band takes in at each refill, and
    whether each feed was a final flush (the real stretcher still runs)."""
    fed: list[int] = [0]  # the first entry: the restart's refill
    flushed: list[bool] = []
    process = TempoKeyStretcher.process

    def counted(self: TempoKeyStretcher, chunk: np.ndarray, final: bool = False) -> np.ndarray:
        fed[-1] += chunk.shape[0]
        flushed.append(final)
        return process(self, chunk, final)

    monkeypatch.setattr(TempoKeyStretcher, "process", counted)
    source.restart()
    buffer = np.zeros((BLOCK, source.n_columns), np.float32)
    blocks = []
    for index in range(int(seconds * RATE) // BLOCK):
        if during is not None:
            during(source, index * BLOCK)
        source.read_block_into(buffer)
        blocks.append(buffer.copy())
        fed.append(0)
        source.refill()
    return np.concatenate(blocks), fed[1:], flushed


def test_a_loop_at_another_tempo_comes_round_with_no_burst_of_stretching_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From B back to A the worker feeds Rubber Band no more than on any other block: the
    stretcher is not flushed at B (a final flush processed some 8,700 samples in 12 ms here) and
    the one that goes on from A was started and fed ahead, a chunk at a time (starting one at A
    took 16 chunks, 14 ms, before its first output): either would leave the callback short."""
    source = PracticeSource(tone(440.0, 8.0), RATE, lead_samples=4 * BLOCK)
    source.set_tempo(0.8)
    source.set_loop(2.0, 3.0)
    source.seek(2.0)
    out, fed, flushed = play_counting_stretcher_work(source, 6.0, monkeypatch)
    times = out[:, -1]
    wraps = np.flatnonzero(np.diff(times) < -0.5)
    assert len(wraps) == 4 and source.underruns == 0
    assert times.min() >= 2.0 - 1e-3 and times.max() <= 3.0 + 1e-3
    assert not any(flushed)
    # after the start at A (the seek, a jump: started at once): a block's worth of song (256
    # samples at 0.8 is 205) and one chunk for the spare, with room for a chunk more
    assert max(fed[wraps[0] // BLOCK - 40 :]) <= 4 * CHUNK


def test_a_tempo_or_key_change_mid_song_is_heard_soon_with_no_burst_of_stretching_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first change away from the song's tempo and key, mid-play, is heard within
    ``ENGAGE_AHEAD`` (and the ring's lead) of the change, and the stretcher it needs was started
    and fed ahead a chunk per block, not all in the block where it took over."""
    source = PracticeSource(tone(440.0, 6.0), RATE, lead_samples=4 * BLOCK)
    change_at = RATE // BLOCK * BLOCK  # 1 s

    def change(source: PracticeSource, sample: int) -> None:
        if sample == change_at:
            source.set_tempo(0.8)
            source.set_transpose(-2.0)

    out, fed, _ = play_counting_stretcher_work(source, 3.0, monkeypatch, during=change)
    times = out[:, -1]
    slope = np.diff(times) * RATE  # song samples per sample heard: 1, then the tempo
    heard = change_at + int(np.argmax(np.abs(slope[change_at:] - 0.8) < 0.01))
    assert heard - change_at <= ENGAGE_AHEAD + 8 * BLOCK
    assert np.abs(slope[heard + BLOCK :] - 0.8).max() < 0.01
    assert peak_frequency(out[-RATE // 2 :, 0]) == pytest.approx(440.0 * 2 ** (-2 / 12), rel=2e-3)
    assert max(fed) <= 4 * CHUNK and source.underruns == 0


@pytest.mark.parametrize("loop", [None, (4.0, 6.0)])
def test_a_seek_at_another_tempo_starts_the_stretcher_in_silence_with_no_burst_of_work(
    loop: tuple[float, float] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a seek a new stretcher starts where the seek lands; its 16-17 chunks of start-up
    (14 ms of Rubber Band's work here, in one refill) are spread over refills of at most
    ``START_CHUNKS_PER_REFILL`` chunks, while silence keeps the ring at its lead: a short gap,
    and the first output fades in from it, instead of a dropout. Also into loop A-B played
    stretched, whose chunks take another path (fed past B, the spare at A)."""
    source = PracticeSource(tone(440.0, 8.0), RATE, lead_samples=4 * BLOCK)
    source.set_tempo(0.8)
    source.set_transpose(-2.0)
    if loop is not None:
        source.set_loop(*loop)
        source.seek(loop[0])
    seek_at = RATE // BLOCK * BLOCK  # 1 s
    target = 5.0 + 0.25 / 440.0  # on the tone's crest: a step there would be its whole level

    def seek(source: PracticeSource, sample: int) -> None:
        if sample == seek_at:
            source.seek(target)

    out, fed, _ = play_counting_stretcher_work(source, 3.0, monkeypatch, during=seek)
    assert source.underruns == 0
    # the refill with the first output may go on to the block's own chunk (before: all 16-17)
    assert max(fed[seek_at // BLOCK :]) <= (START_CHUNKS_PER_REFILL + 1) * CHUNK
    times, audio = out[:, -1], out[:, 0]
    landed = seek_at + int(np.argmax(times[seek_at:] >= 5.0))
    # what was on its way plays out first (the lead), then the gap, at the seek's song time
    assert landed - seek_at <= 5 * BLOCK
    sounding = landed + int(np.argmax(audio[landed:] != 0.0))
    gap = audio[landed:sounding]
    assert np.all(gap == 0.0) and 0 < gap.shape[0] <= 8 * BLOCK
    assert np.all(times[landed:sounding] == pytest.approx(target, abs=1 / RATE))
    # faded in: no step larger than the tone's own (0.3 at 440 Hz, two semitones down)
    own = 0.3 * 2 * np.pi * 440.0 * 2 ** (-2 / 12) / RATE
    assert np.abs(np.diff(audio[sounding - 1 : sounding + ENGAGE_FADE])).max() <= 1.2 * own
    assert peak_frequency(audio[-RATE // 2 :]) == pytest.approx(440.0 * 2 ** (-2 / 12), rel=2e-3)
    if loop is not None:  # and the loop comes round from there
        assert loop[0] - 1e-3 <= times.min() and times.max() <= loop[1] + 1e-3
        assert len(np.flatnonzero(np.diff(times[landed:]) < -0.5)) == 1


@pytest.mark.parametrize("loop", [(3.0, 4.0), (3.95, 4.0), (2.0, 2.05)])
def test_a_loop_at_or_near_the_songs_end_or_shorter_than_a_stretchers_start_up_comes_round(
    loop: tuple[float, float],
) -> None:
    """B at the song's end (nothing past it to feed), A too near it for a stretcher started
    there to give output before the end, and a loop shorter than that start-up (~0.1 s): each
    pass lasts the loop's song time at the tempo, and nothing is heard outside A-B."""
    a, b = loop
    source = PracticeSource(tone(440.0, 4.0), RATE)
    source.set_tempo(1.25)
    source.set_transpose(2.0)
    source.set_loop(a, b)
    source.seek(a)
    times = play(source, 2.0)[:, -1]
    assert times.min() >= a - 1e-3 and times.max() <= b + 1e-3
    wraps = np.flatnonzero(np.diff(times) < -(b - a) / 2)
    passes = np.diff(np.concatenate([[0], wraps])) / RATE
    assert abs(len(passes) - 2.0 / ((b - a) / 1.25)) <= 1.01  # the last may end with the run
    assert passes == pytest.approx(np.full(len(passes), (b - a) / 1.25), abs=0.002)
    assert not source.finished and source.underruns == 0


def test_with_count_in_the_loops_first_beat_falls_on_the_grid() -> None:
    bpm = 120.0
    song = click_track(bpm, 12.0)
    beats = np.arange(0.25, 11.9, 60.0 / bpm)
    for tempo in (1.0, 0.8):
        source = PracticeSource(song, RATE)
        source.set_grid(beats, bpm)
        source.set_tempo(tempo)
        source.set_count_in(True)
        # a loop that starts a little before a beat: the count-in lines its bar up with it
        source.set_loop(4.1, 6.2)
        source.seek(4.1)
        out = play(source, 5.0)
        period = 60.0 / bpm / tempo * RATE
        clicks = onsets(out[:, 2], 0.05)
        assert len(clicks) >= COUNT_IN_BEATS
        song_beats = onsets(out[:, 0], 0.1)
        # the song's first beat after the count-in is where a fifth click would be
        first = song_beats[song_beats > clicks[COUNT_IN_BEATS - 1]][0]
        expected = clicks[COUNT_IN_BEATS - 1] + period
        assert abs(first - expected) / RATE <= 0.010, (tempo, (first - expected) / RATE)
        np.testing.assert_allclose(np.diff(clicks[:COUNT_IN_BEATS]), period, atol=2)


@pytest.mark.parametrize(
    ("call", "value", "words"),
    [
        ("set_tempo", 0.0, "Tempo must be between 0.5 and 1.5"),
        ("set_tempo", 3.0, "Tempo must be between 0.5 and 1.5"),
        ("set_tempo", float("nan"), "Tempo must be between"),
        ("set_transpose", 30.0, "Transpose must be between -12 and \\+12"),
    ],
)
def test_bad_tempo_and_transpose_values_end_in_one_sentence(
    call: str, value: float, words: str
) -> None:
    source = PracticeSource(tone(440.0, 1.0), RATE)
    with pytest.raises(UserError, match=words) as caught:
        getattr(source, call)(value)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message


def identity_engine(song: np.ndarray, practice: bool) -> Engine:
    preset = PRESETS["live"]
    source = PracticeSource(song, RATE, lead_samples=4 * BLOCK) if practice else None
    return Engine(
        StreamProcessor(IdentityHopModel(preset), preset),
        EngineSettings(RATE, BLOCK),
        source if practice else FileSource(song, RATE),
    )


def test_the_engine_plays_a_practice_source_like_a_file_and_stretches_in_the_worker() -> None:
    song = tone(440.0, 3.0) + click_track(100.0, 3.0)
    plain, practice = identity_engine(song, False), identity_engine(song, True)
    n = 2 * RATE
    recorded = []
    for engine in (plain, practice):
        recorder = Recorder(n, 2)
        OfflineBackend(engine, recorder).render(n)
        recorded.append(recorder.recorded)
    # at the song's tempo and key the practice path is the plain one, sample for sample
    np.testing.assert_array_equal(recorded[0], recorded[1])
    # transposed, through the engine: the tone an octave higher, in the stems' latency
    engine = identity_engine(tone(440.0, 4.0), True)
    engine.set_transpose(12.0)
    engine.reset()
    recorder = Recorder(3 * RATE, 2)
    OfflineBackend(engine, recorder).render(3 * RATE)
    assert peak_frequency(recorder.recorded[RATE:, 0]) == pytest.approx(880.0, rel=0.01)
    assert engine.telemetry.snapshot().underruns == 0 and engine.source.underruns == 0


def test_live_input_has_no_tempo() -> None:
    preset = PRESETS["live"]
    engine = Engine(
        StreamProcessor(IdentityHopModel(preset), preset), EngineSettings(RATE, BLOCK), None
    )
    with pytest.raises(UserError, match="not to live input"):
        engine.set_tempo(0.8)


def live_engine(block: int = BLOCK) -> Engine:
    preset = PRESETS["live"]
    return Engine(
        StreamProcessor(IdentityHopModel(preset), preset),
        EngineSettings(RATE, block),
        None,
        live_transpose=True,
    )


@pytest.mark.parametrize("block", [64, 256, 1024])
def test_live_input_transposed_an_octave_up_comes_out_an_octave_higher_in_the_reported_latency(
    block: int,
) -> None:
    engine = live_engine(block)
    assert engine.transpose_samples > 0
    assert engine.latency_samples == (
        engine.processor.latency_samples + engine.buffer_samples + engine.transpose_samples
    )
    engine.set_transpose(12.0)
    engine.reset()
    signal = tone(440.0, 3.0)
    # silence first, then the tone: where it starts tells the latency
    signal[: RATE // 2] = 0.0
    recorder = Recorder(signal.shape[0], 2)
    OfflineBackend(engine, recorder).render(signal.shape[0], signal)
    out = recorder.recorded[:, 0]
    assert peak_frequency(out[RATE:]) == pytest.approx(880.0, rel=0.01)
    assert engine.transposer.short_samples == 0
    # the tone starts no later than the latency the engine reports (a shifter's attack
    # can begin a little early: its window reaches ahead of its centre)
    onset = onsets(out, 0.05)[0]
    assert onset <= RATE // 2 + engine.latency_samples
    assert onset >= RATE // 2 + engine.latency_samples - engine.transpose_samples


def test_live_input_without_live_transpose_says_how_to_get_it() -> None:
    preset = PRESETS["live"]
    engine = Engine(
        StreamProcessor(IdentityHopModel(preset), preset), EngineSettings(RATE, BLOCK), None
    )
    with pytest.raises(UserError, match="Live input is transposed only when the run starts"):
        engine.set_transpose(2.0)
