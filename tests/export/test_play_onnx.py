"""`livestems play` with an exported model on the JACK dummy server: headless with a report, and
interactive in a pseudo-terminal with keys."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("torch")

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.realtime.commands.cli import main  # noqa: E402
from tests.helpers.networks import randomized  # noqa: E402


@pytest.fixture(scope="module")
def song_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("play")
    model = folder / "small.onnx"
    export_onnx(randomized(LstmConfig(preset="live", hidden_size=64), seed=50), model)
    rng = np.random.default_rng(51)
    song = folder / "song.flac"
    soundfile.write(song, rng.uniform(-0.3, 0.3, (48000 * 6, 2)), 48000)  # resampled on load
    return song, model


@pytest.mark.slow
def test_headless_play_prints_the_report(jack_server, song_and_model, capsys) -> None:
    song, model = song_and_model
    assert main(["play", str(song), "--model", str(model), "--headless", "--duration", "2"]) == 0
    report = capsys.readouterr().out
    for line in ("algorithmic latency: 510 samples = 11.56 ms", "engine buffer", "under-runs"):
        assert line in report, report


@pytest.mark.slow
def test_interactive_play_takes_keys_in_a_terminal(jack_server, song_and_model) -> None:
    song, model = song_and_model
    script = shutil.which("livestems", path=str(Path(sys.executable).parent))
    assert script is not None
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [script, "play", str(song), "--model", str(model), "--duration", "20"],
        stdin=follower, stdout=follower, stderr=follower, env=dict(os.environ), close_fds=True,
    )  # fmt: skip
    os.close(follower)
    output = b""

    def read_until(wanted: bytes, seconds: float) -> None:
        """Reads the terminal until ``wanted`` shows (or the program ends, or time is up)."""
        nonlocal output
        deadline = time.monotonic() + seconds
        while wanted not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    output += os.read(leader, 65536)
                except OSError:
                    return

    try:
        # Keys only once the status line plays: before that the terminal is not yet in cbreak
        # mode, and switching to it drops what was typed (a loaded machine takes seconds).
        read_until(b"playing", 60.0)
        os.write(leader, b"1")  # mute vocals
        read_until(b"1:vocals(m)", 20.0)
        os.write(leader, b"q")
        read_until(b"total latency", 20.0)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    text = output.decode(errors="replace")
    assert "keys: 1-4 mute" in text
    assert "1:vocals(m)" in text, text[-2000:]
    assert "*" not in text, text[-2000:]  # no stem was ever soloed: no key asked for it
    assert "total latency" in text
