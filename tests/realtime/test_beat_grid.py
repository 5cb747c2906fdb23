"""The beat grid and key (librosa's tracker, the BPM refined from the beats, the downbeat
heuristic, Krumhansl-Schmuckler), its per-file cache and background loader, and the clicks:
rendered the same however the stream is blocked, without allocating, and the count-in's bar."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livestems.realtime.practice import beat_grid
from livestems.realtime.practice.beat_grid import (
    BeatGrid,
    BeatGridCache,
    BeatGridLoader,
    analyse,
    grid_for_file,
)
from livestems.realtime.practice.click import (
    ClickRenderer,
    click_sound,
    click_times,
    count_in_times,
)
from tests.helpers.allocations import measure_allocations
from tests.helpers.signals import white_noise

RATE = 44100

needs_librosa = pytest.mark.skipif(
    importlib.util.find_spec("librosa") is None,
    reason="librosa is not installed (the 'practice' extra brings it)",
)


# -- test songs -----------------------------------------------------------------------------


def click_track(bpm: float, seconds: float, first: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A metronome, [shape=(n, 2)] float32, and its click times in seconds: every beat a
    25 ms decaying sine, every 4th (from the first) louder and higher, as metronomes accent."""
    times = np.arange(first, seconds - 0.1, 60.0 / bpm)
    out = np.zeros((int(seconds * RATE), 2), np.float32)
    loud, soft = 0.8 * click_sound(RATE, accent=True), 0.5 * click_sound(RATE, accent=False)
    for index, at in enumerate(times):
        sound = loud if index % 4 == 0 else soft
        start = int(round(at * RATE))
        out[start : start + sound.shape[0]] += sound[:, None]
    return out, times


NOTES_HZ = {
    "A1": 55.0, "D2": 73.42, "E2": 82.41, "F1": 43.65, "C2": 65.41, "G1": 49.0,  # bass
    "E3": 164.81, "F3": 174.61, "G3": 196.0, "G#3": 207.65, "A3": 220.0, "B3": 246.94,
    "C3": 130.81, "C4": 261.63, "D4": 293.66, "E4": 329.63, "F4": 349.23,
}  # fmt: skip


def chords(
    progression: Sequence[tuple[str, tuple[str, ...]]], bar_s: float, n_bars: int
) -> np.ndarray:
    """Sums of sines: per bar a bass note (played an octave up, decaying) under a chord,
    [shape=(n,)] float64."""
    n = int(n_bars * bar_s * RATE)
    out = np.zeros(n)
    for bar in range(n_bars):
        bass, notes = progression[bar % len(progression)]
        start, end = int(bar * bar_s * RATE), min(n, int((bar + 1) * bar_s * RATE))
        t = np.arange(end - start) / RATE
        out[start:end] += 0.35 * np.exp(-t / 1.5) * np.sin(2 * np.pi * 2 * NOTES_HZ[bass] * t)
        fade_in = np.minimum(1.0, t / 0.02)  # no click at the chord change
        for note in notes:
            out[start:end] += 0.1 * fade_in * np.sin(2 * np.pi * NOTES_HZ[note] * t)
    return out


def band_song(bpm: float, n_bars: int, seed: int = 0) -> np.ndarray:
    """A 4/4 band, [shape=(n, 2)] float32: Am F C G with the bass note on each bar's first
    beat, a kick on beats 1 and 3, a snare on 2 and 4, hi-hats on eighths."""
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / bpm
    progression = [
        ("A1", ("A3", "C4", "E4")),
        ("F1", ("F3", "A3", "C4")),
        ("C2", ("C3", "E3", "G3")),
        ("G1", ("G3", "B3", "D4")),
    ]
    mix = chords(progression, 4 * beat_s, n_bars)
    t = np.arange(int(0.15 * RATE)) / RATE
    kick = 0.8 * np.sin(2 * np.pi * (50 + 60 * np.exp(-t / 0.02)) * t) * np.exp(-t / 0.05)
    snare = 0.4 * rng.standard_normal(t.size) * np.exp(-t / 0.03)
    for eighth in range(n_bars * 8):
        start = int(eighth * beat_s / 2 * RATE)
        hat = 0.1 * np.diff(rng.standard_normal(1324)) * np.exp(-t[:1323] / 0.008)
        drums = [hat]
        if eighth % 2 == 0:
            drums.append(kick if (eighth // 2) % 2 == 0 else snare)
        for drum in drums:
            end = min(mix.size, start + drum.size)
            mix[start:end] += drum[: end - start]
    mix = 0.8 * mix / np.abs(mix).max()
    return np.stack([mix, mix], axis=1).astype(np.float32)


def is_one_sentence(text: str) -> bool:
    return text.endswith(".") and "\n" not in text and ". " not in text[:-1]


def nearest_gaps(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each time in ``found``, how far the nearest time in ``truth`` is (seconds)."""
    return np.abs(found[:, None] - truth[None, :]).min(axis=1)


@pytest.fixture(scope="module")
def click_120() -> tuple[np.ndarray, np.ndarray, BeatGrid]:
    if importlib.util.find_spec("librosa") is None:
        pytest.skip("librosa is not installed (the 'practice' extra brings it)")
    audio, times = click_track(120.0, 20.0)
    return audio, times, analyse(audio, RATE)


# -- analysis -------------------------------------------------------------------------------


@needs_librosa
def test_a_120_bpm_click_track_reads_120_bpm_with_its_beats_on_the_clicks(click_120) -> None:  # noqa: ANN001
    _, times, grid = click_120
    assert grid.available, grid.reason
    assert grid.bpm == pytest.approx(120.0, abs=1.0)
    # Finer than asked: librosa's own tempo reads 120.19 here (its frames are 5.8 ms); the
    # line through the numbered beats reads within a few hundredths.
    assert grid.bpm == pytest.approx(120.0, abs=0.05)
    beats = np.array(grid.beats)
    assert len(beats) >= len(times) - 2
    assert nearest_gaps(beats, times).max() < 0.020
    # the accented clicks are the bar lines
    assert len(grid.downbeats) >= len(times[::4]) - 1
    assert nearest_gaps(np.array(grid.downbeats), times[::4]).max() < 0.020
    assert grid.bar_seconds == pytest.approx(2.0, abs=0.001)


@needs_librosa
def test_a_90_bpm_band_reads_90_bpm_and_its_bars_start_with_the_bass_notes() -> None:
    grid = analyse(band_song(90.0, 6), RATE)
    assert grid.available, grid.reason
    assert grid.bpm == pytest.approx(90.0, abs=1.0)
    bar_lines = np.arange(6) * 4 * 60.0 / 90.0
    # The kick is on beats 1 and 3 alike; the bass note on 1 tells them apart.
    assert len(grid.downbeats) >= 4
    assert nearest_gaps(np.array(grid.downbeats), bar_lines).max() < 0.030


@needs_librosa
@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(np.zeros((5 * RATE, 2), np.float32), id="silence"),
        pytest.param(white_noise(10 * RATE, 2, seed=1), id="white-noise"),
        pytest.param(np.full((RATE // 4, 2), 0.5, np.float32), id="a-quarter-second"),
        pytest.param(np.full((RATE, 2), np.nan, np.float32), id="nan"),
        pytest.param(np.zeros((0, 2), np.float32), id="empty"),
    ],
)
def test_a_song_without_a_beat_has_no_grid_and_says_why_in_one_sentence(audio) -> None:  # noqa: ANN001
    grid = analyse(audio, RATE)
    assert not grid.available
    assert grid.beats == () and grid.downbeats == ()
    assert is_one_sentence(grid.reason), grid.reason
    # noise has every pitch class alike: no key (one of 24 profiles correlates 0.5 by chance)
    assert grid.key == ""
    # the count-in's fallback: 4/4 at 120 BPM
    assert grid.bar_seconds == 2.0 and grid.snap_to_bar(3.3) == 3.3


@needs_librosa
def test_a_chord_progression_in_a_minor_reads_a_minor() -> None:
    # i - iv - V - i, the V major (G#) as minor keys borrow it: pure sines, no drums.
    progression = [
        ("A1", ("A3", "C4", "E4")),
        ("D2", ("D4", "F4", "A3")),
        ("E2", ("E3", "G#3", "B3")),
        ("A1", ("A3", "C4", "E4")),
    ]
    mono = (0.8 * chords(progression, 2.0, 4)).astype(np.float32)
    grid = analyse(np.stack([mono, mono], axis=1), RATE)
    assert grid.key == "A minor"


def test_without_librosa_there_is_no_grid_nothing_raises_and_nothing_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(beat_grid, "_librosa", lambda: None)
    monkeypatch.setattr(beat_grid, "_librosa_installed", lambda: False)
    audio, _ = click_track(120.0, 2.0)
    song = tmp_path / "song.wav"
    sf.write(song, audio, RATE)
    cache = BeatGridCache(tmp_path / "cache")
    for grid in (analyse(audio, RATE), cache.grid(song, audio, RATE)):
        assert not grid.available and "pip install 'livestems[practice]'" in grid.reason
    assert cache.analyses == 0 and not (tmp_path / "cache").exists()


# -- the grid itself ------------------------------------------------------------------------


def grid_at_120() -> BeatGrid:
    """Beats every 0.5 s from 0.1 s, bars of 4 from the first."""
    beats = tuple(0.1 + 0.5 * index for index in range(16))
    return BeatGrid(120.0, beats, beats[::4], 4, "A minor", True, "")


def test_snap_to_bar_takes_the_nearest_downbeat() -> None:
    grid = grid_at_120()
    assert grid.downbeats == (0.1, 2.1, 4.1, 6.1)
    assert grid.snap_to_bar(1.0) == 0.1  # 0.9 s from 0.1 s, 1.1 s from 2.1 s
    assert grid.snap_to_bar(1.2) == 2.1
    assert grid.snap_to_bar(4.1) == 4.1
    assert grid.snap_to_bar(-3.0) == 0.1
    assert grid.snap_to_bar(60.0) == 6.1
    assert BeatGrid.unavailable("No steady beat was found in this song.").snap_to_bar(1.2) == 1.2
    assert grid.beat_period_s == 0.5 and grid.bar_seconds == 2.0


def test_a_grid_survives_json_and_json_that_is_not_a_grid_is_refused() -> None:
    grid = grid_at_120()
    assert BeatGrid.from_json(grid.to_json()) == grid
    unavailable = BeatGrid.unavailable("No steady beat was found in this song.", "C major")
    assert BeatGrid.from_json(unavailable.to_json()) == unavailable
    other_version = grid.to_json().replace(
        f'"version": {beat_grid.ANALYSIS_VERSION}', f'"version": {beat_grid.ANALYSIS_VERSION + 1}'
    )
    for text in ("", "{", "[]", '{"bpm": 120}', other_version, grid.to_json()[:-9]):
        with pytest.raises(ValueError):
            BeatGrid.from_json(text)


# -- the cache and the loader ---------------------------------------------------------------


@pytest.fixture
def click_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    audio, _ = click_track(120.0, 8.0)
    path = tmp_path / "click.wav"
    sf.write(path, audio, RATE, subtype="FLOAT")
    return path, audio


@needs_librosa
def test_the_cache_analyses_a_file_once_and_keeps_it_on_disk(
    tmp_path: Path, click_file: tuple[Path, np.ndarray]
) -> None:
    path, audio = click_file
    cache = BeatGridCache(tmp_path / "cache")
    first = cache.grid(path, audio, RATE)
    assert first.available and cache.analyses == 1
    assert cache.grid(path, audio, RATE) == first and cache.analyses == 1
    # a new cache on the same folder (the next run of the program) reads the file
    again = BeatGridCache(tmp_path / "cache")
    assert again.grid(path, audio, RATE) == first and again.analyses == 0
    # the song file changed: its old grid is not used
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
    assert again.grid(path, audio, RATE) == first and again.analyses == 1


@needs_librosa
def test_a_corrupt_cache_entry_is_analysed_again_and_replaced(
    tmp_path: Path, click_file: tuple[Path, np.ndarray]
) -> None:
    path, audio = click_file
    cache = BeatGridCache(tmp_path / "cache")
    first = cache.grid(path, audio, RATE)
    entry = cache.entry(path)
    assert entry is not None and entry.exists()
    entry.write_bytes(b'{"version": 1, "bpm": \xff')
    assert cache.grid(path, audio, RATE) == first and cache.analyses == 2
    assert BeatGrid.from_json(entry.read_text()) == first


@needs_librosa
def test_grid_for_file_keeps_grids_in_livestems_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, click_file: tuple[Path, np.ndarray]
) -> None:
    monkeypatch.delenv("LIVESTEMS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path, audio = click_file
    grid = grid_for_file(path, audio, RATE)
    entries = list((tmp_path / "xdg" / "livestems" / "beat-grids").glob("*.json"))
    assert len(entries) == 1 and BeatGrid.from_json(entries[0].read_text()) == grid


@needs_librosa
def test_the_loader_delivers_the_grid_from_its_background_thread(
    tmp_path: Path, click_file: tuple[Path, np.ndarray]
) -> None:
    path, audio = click_file
    delivered: list[tuple[BeatGrid, str]] = []
    loader = BeatGridLoader(
        on_done=lambda grid: delivered.append((grid, threading.current_thread().name)),
        cache=BeatGridCache(tmp_path / "cache"),
    )
    assert loader.result() is None
    loader.start(path, audio, RATE)
    grid = loader.wait(timeout=60.0)
    assert grid is not None and grid.available and grid.bpm == pytest.approx(120.0, abs=1.0)
    assert loader.result() == grid
    assert delivered == [(grid, "beat-grid")]


def test_a_failing_analysis_ends_as_no_grid_in_one_sentence() -> None:
    delivered: list[BeatGrid] = []
    loader = BeatGridLoader(on_done=delivered.append)
    loader.start(None, np.array([["not audio"]]), RATE)
    grid = loader.wait(timeout=60.0)
    assert grid is not None and not grid.available
    assert grid.reason.startswith("Beat tracking failed: ") and is_one_sentence(grid.reason)
    assert delivered == [grid]


@needs_librosa
def test_the_loader_analyses_in_a_process_of_its_own(
    tmp_path: Path, click_file: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine plays in the loader's process: an analysis there would hold its GIL.
    def not_here(audio: np.ndarray, sample_rate: int) -> BeatGrid:
        raise AssertionError("analysed in the loader's process")

    monkeypatch.setattr(beat_grid, "analyse", not_here)
    path, audio = click_file
    cache = BeatGridCache(tmp_path / "cache")
    with pytest.raises(AssertionError):
        cache.grid(path, audio, RATE)  # in this process, the patched analysis runs
    for song in (path, None):
        loader = BeatGridLoader(cache=cache)
        loader.start(song, audio, RATE)
        grid = loader.wait(timeout=120.0)
        assert grid is not None and grid.available, grid
        assert grid.bpm == pytest.approx(120.0, abs=1.0)
    assert cache.analyses == 2 and len(list((tmp_path / "cache").glob("*.json"))) == 1


@needs_librosa
def test_a_new_song_stops_the_analysis_of_the_one_it_replaces(tmp_path: Path) -> None:
    long_song, _ = click_track(100.0, 240.0)
    short_song, _ = click_track(120.0, 8.0)
    loader = BeatGridLoader(cache=BeatGridCache(tmp_path / "cache"))
    loader.start(None, long_song, RATE)
    deadline = time.monotonic() + 60.0
    while loader._process is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first = loader._process
    assert first is not None
    loader.start(None, short_song, RATE)
    assert first.wait(timeout=30.0) == -signal.SIGKILL
    grid = loader.wait(timeout=120.0)
    assert grid is not None and grid.bpm == pytest.approx(120.0, abs=1.0)


def test_the_analysis_process_answers_a_cut_request_in_one_sentence() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", beat_grid.CHILD_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    header = {"frames": 44100, "channels": 2, "sample_rate": RATE}
    request = json.dumps(header).encode() + b"\n" + np.zeros((100, 2), np.float32).tobytes()
    out, _ = process.communicate(request, timeout=120.0)
    reply = json.loads(out)
    assert process.returncode == 0
    assert reply == {"error": "the song's samples ended after 800 of 352800 bytes"}
    failed = beat_grid.answer(
        subprocess.Popen(
            [sys.executable, "-c", "exit(3)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    )
    assert failed == {"error": "the analysis process ended with code 3"}


def test_the_analysis_process_ends_when_the_process_that_started_it_is_gone() -> None:
    # A parent that starts an analysis of a long song and quits at once (as the window does
    # when it is closed): the child must not go on spending a core.
    parent = (
        "import numpy as np\n"
        "from livestems.realtime.practice.beat_grid import start_analysis\n"
        "noise = np.random.default_rng(0).standard_normal((44100 * 600, 2), np.float32)\n"
        "noise *= 0.1\n"
        "p = start_analysis(noise, 44100)\n"
        "print(p.pid, flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, timeout=120.0, check=True
    ).stdout
    child = int(out)
    # Its answer would take about 30 s (ten minutes of noise); orphaned, it ends at once.
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and running(child):
        time.sleep(0.05)
    assert not running(child)


@needs_librosa
def test_setup_compiles_librosas_kernels_ahead_of_the_first_song() -> None:
    done = subprocess.run(
        [sys.executable, "-m", beat_grid.CHILD_MODULE, "--compile"],
        capture_output=True,
        text=True,
        timeout=300.0,
        check=True,
    )
    assert done.stdout.startswith("beat tracking: librosa's kernels ready in ")
    assert done.stderr == ""  # the clicks' tuning warning is not shown
    setup = Path(__file__).resolve().parents[2] / "setup.sh"
    assert f"{beat_grid.CHILD_MODULE} --compile" in setup.read_text()


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- clicks ---------------------------------------------------------------------------------


def test_a_click_is_25_ms_of_a_decaying_sine_higher_when_accented() -> None:
    for accent, frequency in ((False, 1000.0), (True, 1500.0)):
        sound = click_sound(RATE, accent)
        assert sound.dtype == np.float32 and sound.shape == (int(0.025 * RATE),)
        spectrum = np.abs(np.fft.rfft(sound, 8 * sound.size))
        assert np.argmax(spectrum) * RATE / (8 * sound.size) == pytest.approx(frequency, rel=0.02)
        assert np.abs(sound[-20:]).max() < 0.02 * np.abs(sound).max()


def clicks_to_render(renderer: ClickRenderer) -> tuple[list[int], list[bool]]:
    """Clicks on block boundaries (64, 65, 256, 257), overlapping (300 and 310), and from the
    first sample: absolute sample indices and accents."""
    starts = [0, 64, 65, 255, 256, 300, 310, 1000, 2 * renderer.click_samples + 7]
    return starts, [index % 3 == 0 for index in range(len(starts))]


@pytest.mark.parametrize("block", [1, 65, 256])
def test_clicks_rendered_in_blocks_equal_clicks_rendered_at_once(block: int) -> None:
    renderer = ClickRenderer(RATE, gain=0.3)
    starts, accents = clicks_to_render(renderer)
    n = 3 * renderer.click_samples
    whole = np.zeros(n, np.float32)
    renderer.render_into(whole, 0, starts, accents)
    blocked = np.zeros(n, np.float32)
    for start in range(0, n, block):
        renderer.render_into(blocked[start : start + block], start, np.array(starts), accents)
    np.testing.assert_array_equal(blocked, whole)
    # and at once is each click where it starts
    expected = np.zeros(n, np.float32)
    for start, accent in zip(starts, accents, strict=True):
        sound = 0.3 * click_sound(RATE, accent)[: n - start]
        expected[start : start + sound.size] += sound
    np.testing.assert_allclose(whole, expected, atol=1e-7)


def test_rendering_clicks_allocates_no_array_memory() -> None:
    renderer = ClickRenderer(RATE)
    starts, accents = clicks_to_render(renderer)
    out = np.zeros(4096, np.float32)  # holds every click whole: a copy of one would be 4.4 KiB

    def step() -> None:
        renderer.render_into(out, 0, starts, accents)

    numpy_blocks, growth, transient = measure_allocations(step, 1000)
    assert numpy_blocks == 0
    assert abs(growth) <= 512, growth
    # what remains is Python's: the slices' view objects, a few hundred bytes
    assert transient <= 2048, transient


def test_click_times_are_the_grids_beats_in_range_accented_on_bar_lines() -> None:
    grid = grid_at_120()
    assert click_times(grid, 1.0, 3.1) == [(1.1, False), (1.6, False), (2.1, True), (2.6, False)]
    assert click_times(BeatGrid.from_json(grid.to_json()), 0.0, 0.2) == [(0.1, True)]
    assert click_times(BeatGrid.unavailable("No steady beat was found in this song."), 0, 9) == []


def test_a_count_in_is_one_bar_of_beats_the_first_accented() -> None:
    grid = BeatGrid(90.0, (0.0, 2 / 3, 4 / 3, 2.0), (0.0,))
    clicks = count_in_times(grid)
    assert [accent for _, accent in clicks] == [True, False, False, False]
    np.testing.assert_allclose([time for time, _ in clicks], [0.0, 2 / 3, 4 / 3, 2.0])
    assert grid.bar_seconds == pytest.approx(4 * 2 / 3)
    # no grid: 4/4 at 120 BPM
    fallback = BeatGrid.unavailable("No steady beat was found in this song.")
    assert count_in_times(fallback) == [(0.0, True), (0.5, False), (1.0, False), (1.5, False)]
    assert fallback.bar_seconds == 2.0
