"""Runs that go wrong end in one sentence and lose nothing (issue 15, cases 4 and 9): a full
disk, too little memory, a truncated file, stems louder than flac holds, Ctrl-C. Real files,
a real (small, mounted) file system and real signals through the bundled model."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livestems.realtime.commands.cli import main
from livestems.realtime.io.audio_file import AudioFileError, load_audio, save_audio_atomic
from livestems.realtime.runtime.catalog import find_model_file
from tests.helpers.shell import as_from_a_shell

RATE = 44100
LIVESTEMS = str(Path(sys.executable).parent / "livestems")

pytestmark = pytest.mark.skipif(
    not find_model_file(None).is_file(), reason="this checkout has no bundled model"
)


def _noise(seconds: float, seed: int = 0, level: float = 0.1) -> np.ndarray:
    n_samples = round(seconds * RATE)
    return (level * np.random.default_rng(seed).standard_normal((n_samples, 2))).astype(np.float32)


def _song(path: Path, seconds: float, seed: int = 0, **kwargs: object) -> Path:
    sf.write(path, _noise(seconds, seed), RATE, **kwargs)  # type: ignore[arg-type]
    return path


# ----------------------------------------------------------------------------- case 9: files


@pytest.mark.parametrize("suffix", ["wav", "ogg", "mp3"])
def test_a_truncated_file_is_refused_saying_how_much_was_read(tmp_path: Path, suffix: str) -> None:
    if suffix.upper() not in sf.available_formats():
        pytest.skip(f"this libsndfile writes no {suffix}")
    whole = _song(tmp_path / f"whole.{suffix}", 3.0)
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert load_audio(whole, RATE).shape[0] == 3 * RATE
    with pytest.raises(AudioFileError, match=r"it is truncated.* s .*could be read\.$"):
        load_audio(cut, RATE)


def test_separate_refuses_a_truncated_song_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = _song(tmp_path / "whole.wav", 1.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out"
    assert main(["separate", str(cut), str(whole), "-o", str(out), "--model", "lstm-ultra"]) == 1
    assert sorted(path.name for path in out.iterdir()) == ["whole"]
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert "truncated" in error and "1.00 s" in error and "0.50 s" in error


def test_flac_never_clips_louder_than_full_scale_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loud = tmp_path / "loud.wav"
    sf.write(loud, _noise(0.5, level=0.8), RATE, subtype="FLOAT")  # peaks well above 1
    out = tmp_path / "out"
    args = ["separate", str(loud), "-o", str(out), "--model", "lstm-ultra"]
    assert main([*args, "--format", "flac"]) == 1
    assert not (out / "loud").exists()
    assert "--format wav" in capsys.readouterr().err
    with pytest.raises(AudioFileError, match="would be clipped"):
        save_audio_atomic(tmp_path / "x.flac", _noise(0.1, level=0.8), RATE)
    assert main(args) == 0  # float wav keeps the peaks
    total = sum(sf.read(path, dtype="float32")[0] for path in (out / "loud").iterdir())
    assert np.abs(total).max() > 1.0


# ------------------------------------------------------------------------ case 4: resources


@contextlib.contextmanager
def _small_disk(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_one_sentence_and_the_batch_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    songs = [
        _song(tmp_path / "first.wav", 1.0),  # 1.4 MB of float32 stems: fits
        _song(tmp_path / "second.wav", 3.0),  # 4.2 MB: does not fit what is left
        _song(tmp_path / "third.wav", 0.2),  # fits again
    ]
    with _small_disk(tmp_path / "disk", "4m") as disk:
        args = ["separate", *map(str, songs), "-o", str(disk), "--model", "lstm-ultra"]
        assert main(args) == 1
        assert sorted(path.name for path in disk.iterdir()) == ["first", "third"]
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert error.startswith("livestems: Not enough disk space")
        # A disk that fills while a file is written: one sentence, nothing half-written.
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize))
        with pytest.raises(AudioFileError, match="the disk is full"):
            save_audio_atomic(disk / "late.wav", _noise(2.0), RATE)
        assert not [path for path in disk.iterdir() if path.name.startswith(".")]


@pytest.mark.slow
def test_too_little_memory_is_one_sentence_and_the_batch_goes_on(tmp_path: Path) -> None:
    """Under a 500 MB address-space limit (the process needs about 450), a 4-minute song cannot
    be decoded and resampled at once; the short song after it is still separated."""
    long_song = _song(tmp_path / "long.wav", 240.0, subtype="PCM_16")
    short_song = _song(tmp_path / "short.wav", 0.5)
    out = tmp_path / "out"

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (500 * 2**20, 500 * 2**20))

    done = subprocess.run(
        [LIVESTEMS, "separate", str(long_song), str(short_song), "-o", str(out)]
        + ["--model", "lstm-ultra", "--threads", "1"],
        capture_output=True,
        text=True,
        preexec_fn=limit_memory,
        timeout=300,
    )
    if (out / "long").exists():
        pytest.skip("this machine separated the long song within the limit")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("livestems:")]
    assert "Not enough memory" in error
    assert sorted(path.name for path in out.iterdir()) == ["short"]


# ------------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_in_separate_prints_one_sentence_and_leaves_nothing(tmp_path: Path) -> None:
    song = _song(tmp_path / "song.wav", 20.0)
    out = tmp_path / "out"
    running = subprocess.Popen(
        [LIVESTEMS, "separate", str(song), "-o", str(out), "--model", "lstm-ultra", "--progress"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_shell,
    )
    assert running.stderr is not None
    # Wait for the progress line: the model is loaded and the song is being separated.
    deadline = time.monotonic() + 60
    while running.stderr.read(1) != "%" and time.monotonic() < deadline:
        pass
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130
    assert "Traceback" not in stderr
    assert "interrupted: 0 of 1 songs separated" in stderr
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("delay_s", [0.4, 1.0])
def test_ctrl_c_while_starting_prints_no_traceback(tmp_path: Path, delay_s: float) -> None:
    # long enough that it is still running when the signal comes: an idle machine separated
    # a 5 s song within the 1.0 s and exited 0 before it
    song = _song(tmp_path / "song.wav", 60.0)
    running = subprocess.Popen(
        [LIVESTEMS, "separate", str(song), "-o", str(tmp_path / "out")],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    time.sleep(delay_s)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert running.returncode in (130, -signal.SIGINT)


@pytest.mark.slow
def test_ctrl_c_in_headless_play_prints_the_report(jack_server, tmp_path: Path) -> None:  # noqa: ANN001
    song = _song(tmp_path / "song.wav", 30.0)
    running = subprocess.Popen(
        [LIVESTEMS, "play", str(song), "--headless", "--model", "lstm-ultra"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(8.0)  # the model loaded and the stream running, on a loaded machine too
    running.send_signal(signal.SIGINT)
    stdout, stderr = running.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert "under-runs" in stdout and "algorithmic latency" in stdout, stdout + stderr
