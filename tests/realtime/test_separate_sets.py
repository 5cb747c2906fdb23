"""``livestems separate`` loses nothing: song folders unique within a batch, inputs never
overwritten, a song's stems replaced as a set, stale temporaries cleaned, the output folder
checked before any work (issue 15, cases 1-3). Real files through the bundled models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livestems.realtime.commands.cli import main
from livestems.realtime.io.stem_set import clean_stale, stem_set
from livestems.realtime.runtime.catalog import find_model_file
from livestems.realtime.runtime.separation import unique_names

STEMS = ("vocals", "drums", "bass", "other")
RATE = 44100
LIVESTEMS = str(Path(sys.executable).parent / "livestems")

pytestmark = pytest.mark.skipif(
    not find_model_file(None).is_file(), reason="this checkout has no bundled model"
)


def _song(path: Path, seconds: float, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE))[:, None] / RATE
    tone = 0.3 * np.sin(2 * np.pi * (110 + 50 * seed) * t)
    noise = 0.05 * rng.standard_normal((t.shape[0], 2))
    sf.write(path, (tone + noise).astype(np.float32), RATE, subtype="FLOAT")
    return path


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {stem: sf.read(folder / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}


def test_unique_names_skip_the_names_of_other_inputs() -> None:
    paths = [Path("a/song.wav"), Path("b/song.wav"), Path("c/song (2).wav"), Path("d/SONG.flac")]
    assert unique_names(paths) == ["song", "song (3)", "song (2)", "SONG (4)"]


def test_case_1_same_song_names_never_share_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    songs = [
        _song(tmp_path / "coll/a/song.wav", 0.5, seed=1),
        _song(tmp_path / "coll/b/song.wav", 0.5, seed=2),
        _song(tmp_path / "coll/c/song (2).wav", 0.5, seed=3),
    ]
    out = tmp_path / "out"
    assert main(["separate", *map(str, songs), "-o", str(out), "--model", "lstm-ultra"]) == 0
    folders = sorted(child.name for child in out.iterdir())
    assert folders == ["song", "song (2)", "song (3)"]
    # Each folder holds its own song's stems: the softmax model's stems add up to the song.
    for song, folder in zip(songs, ["song", "song (3)", "song (2)"], strict=True):
        total = sum(_read(out / folder).values())
        assert np.abs(total - sf.read(song, dtype="float32")[0]).max() < 1e-3, folder
    printed = capsys.readouterr().out
    assert f'{songs[1]} went to "{out / "song (3)"}"' in printed


def test_case_2_an_output_that_would_overwrite_an_input_is_refused_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    song = _song(tmp_path / "ow/vocals/vocals.wav", 0.5, seed=4)
    other = _song(tmp_path / "elsewhere/first.wav", 0.5, seed=5)
    before = song.read_bytes()
    out = tmp_path / "ow"
    assert main(["separate", str(other), str(song), "-o", str(out)]) == 1
    assert song.read_bytes() == before
    assert not (out / "first").exists(), "refused before any work, not after the first song"
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "holds the input" in error


def test_a_folder_with_other_files_is_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    song = _song(tmp_path / "song.wav", 0.5, seed=6)
    notes = tmp_path / "out/song/notes.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    assert main(["separate", str(song), "-o", str(tmp_path / "out")]) == 1
    assert notes.read_text() == "mine"
    assert "notes.txt" in capsys.readouterr().err


def test_the_output_folder_is_checked_before_separating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    song = _song(tmp_path / "song.wav", 0.5, seed=7)
    a_file = tmp_path / "afile"
    a_file.write_text("")
    assert main(["separate", str(song), "-o", str(a_file)]) == 1
    assert main(["separate", str(song), "-o", str(a_file / "below")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("livestems: ") for line in errors)


def test_a_failed_set_leaves_the_previous_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "song"
    target.mkdir()
    (target / "vocals.wav").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), stem_set(target) as fresh:
        (fresh / "vocals.wav").write_bytes(b"new")
        raise KeyboardInterrupt
    assert (target / "vocals.wav").read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["song"]
    with stem_set(target) as fresh:
        (fresh / "vocals.wav").write_bytes(b"new")
    assert (target / "vocals.wav").read_bytes() == b"new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["song"]


def test_stale_temporaries_of_dead_runs_are_cleaned(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".song.livestems-new-{dead.pid}-0123abcd"
    aside = tmp_path / f".gone.livestems-old-{dead.pid}-0123abcd"
    running = tmp_path / f".song.livestems-new-{os.getpid()}-0123abcd"
    for folder in (stale, aside, running):
        folder.mkdir()
        (folder / "vocals.wav").write_bytes(b"x")
    assert sorted(clean_stale(tmp_path)) == sorted([stale, aside])
    # A previous set renamed aside goes back where its folder is missing; a live run's stays.
    assert sorted(path.name for path in tmp_path.iterdir()) == [running.name, "gone"]


def test_a_temporary_of_a_killed_run_not_yet_reaped_is_cleaned(tmp_path: Path) -> None:
    """A worker killed with its server stays a zombie until something reaps it (in a
    container, perhaps never): it answers signal 0, yet its temporary is stale. Seen as a
    flaky service test, where the re-run left the killed run's temporary beside the stems."""
    killed = subprocess.Popen(["sleep", "60"])
    try:
        killed.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{killed.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stale = tmp_path / f".song.livestems-new-{killed.pid}-0123abcd"
        stale.mkdir()
        assert clean_stale(tmp_path) == [stale]
        assert not stale.exists()
    finally:
        killed.wait()


@pytest.mark.slow
def test_case_3_a_run_killed_while_writing_leaves_one_whole_set(tmp_path: Path) -> None:
    """A re-run with another model, killed -9 while it writes its stems (seen on disk: the
    first stem replaced, or a temporary set with a stem in it), leaves the earlier set whole;
    the next run removes what the killed one left and writes its whole set."""
    song = _song(tmp_path / "song.wav", 8.0, seed=8)
    out = tmp_path / "out"
    command = [LIVESTEMS, "separate", str(song), "-o", str(out)]
    subprocess.run([*command, "--model", "lstm-ultra"], check=True, capture_output=True)
    folder = out / "song"
    old = {stem: (folder / f"{stem}.wav").read_bytes() for stem in STEMS}
    first_inode = (folder / "vocals.wav").stat().st_ino

    def writing() -> bool:
        try:
            if (folder / "vocals.wav").stat().st_ino != first_inode:
                return True
        except FileNotFoundError:
            return True
        return any(
            entry.name.startswith(".song.livestems-new-") and any(entry.iterdir())
            for entry in out.iterdir()
        )

    killed = subprocess.Popen([*command, "--model", "lstm-live"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not writing() and killed.poll() is None and time.monotonic() < deadline:
        pass
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    after_kill = {stem: (folder / f"{stem}.wav").read_bytes() for stem in STEMS}

    subprocess.run([*command, "--model", "lstm-live"], check=True, capture_output=True)
    new = {stem: (folder / f"{stem}.wav").read_bytes() for stem in STEMS}
    assert new != old
    left = "old" if after_kill == old else "new" if after_kill == new else "mixed"
    assert left in ("old", "new"), "the killed run left stems of two runs in one folder"
    hidden = [path for path in out.rglob(".*")]
    assert hidden == [], f"temporaries left behind: {hidden}"


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_streamed_song_equals_the_whole_song_path(tmp_path: Path, rate: int) -> None:
    """A wav is separated block by block; the stems are the whole-song path's (bit for bit at
    the model's rate, to the streaming resampler's rounding at another)."""
    import soxr

    from livestems.realtime.runtime.onnx_model import OnnxHopModel
    from livestems.realtime.runtime.separation import separate_file, separate_signal

    model = OnnxHopModel(find_model_file("lstm-ultra"), provider="cpu")
    audio = (0.2 * np.random.default_rng(9).standard_normal((round(2.3 * rate), 2))).astype(
        np.float32
    )
    song = tmp_path / "song.wav"
    sf.write(song, audio, rate, subtype="FLOAT")
    report = separate_file(song, model, tmp_path / "out")
    at_model_rate = audio if rate == RATE else soxr.resample(audio, rate, RATE, quality="HQ")
    whole = separate_signal(model, np.ascontiguousarray(at_model_rate, dtype=np.float32))
    for index, stem in enumerate(STEMS):
        written, written_rate = sf.read(report.outputs[stem], dtype="float32")
        assert written_rate == rate and written.shape == audio.shape
        expected = whole[index]
        if rate != RATE:
            expected = soxr.resample(expected, RATE, rate, quality="HQ")[: audio.shape[0]]
        tolerance = 0.0 if rate == RATE else 2e-3
        np.testing.assert_allclose(written[: expected.shape[0]], expected, atol=tolerance)


def test_memory_does_not_grow_with_the_song(tmp_path: Path) -> None:
    """Peak resident memory of a one-minute song against a five-second one: the whole-song
    path held the song and its stems at once (some 150 MB a minute)."""
    from livestems.realtime.benchmarks.memory import peak_rss_mb
    from livestems.realtime.io.generated_song import write_generated_song

    peaks = []
    for minutes in (5 / 60, 1.0):
        song = tmp_path / f"{minutes:.2f}.wav"
        write_generated_song(song, 60.0 * minutes)
        command = [LIVESTEMS, "separate", str(song), "-o", str(tmp_path / "out")]
        rss, _, status = peak_rss_mb([*command, "--model", "lstm-ultra", "--threads", "1"])
        assert status == 0
        peaks.append(rss)
    assert peaks[1] - peaks[0] < 40, f"peak RSS {peaks[0]:.0f} MB, then {peaks[1]:.0f} MB"
