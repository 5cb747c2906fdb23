"""The `livestems` command as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livestems.realtime.commands.cli import PLANNED_COMMANDS, main
from livestems.realtime.commands.command import registered_commands
from livestems.realtime.dsp.presets import PRESETS
from livestems.realtime.runtime import catalog as model_catalog

SCRIPT = shutil.which("livestems", path=str(Path(sys.executable).parent))


# The main job plays the whole 45 s demo; the tests hear its first seconds.
QUICK_DEMO = {"LIVESTEMS_DEMO_SECONDS": "3"}


def _headless_environment() -> dict[str, str]:
    """No display, and no JACK server to find (a test session's own JACK server would otherwise
    be the audio output): the main job renders offline, deterministically."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    no_jack = {"JACK_DEFAULT_SERVER": "livestems-no-such-server", "JACK_NO_START_SERVER": "1"}
    return environment | QUICK_DEMO | no_jack


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT, "the livestems console script is not installed next to this Python"
    return subprocess.run(
        [SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env=_headless_environment(),
    )


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("livestems 0.")


def test_help_lists_every_planned_command() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for name in PLANNED_COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(set(PLANNED_COMMANDS) - set(registered_commands())))
def test_unbuilt_command_says_so_in_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"livestems {name} is not built yet in livestems {err.split()[-1][:-1]}."
    assert "\n" not in err


@pytest.mark.slow
def test_main_job_plays_the_bundled_demo_through_the_default_for_a_recording_headless() -> None:
    # The demo is a recording: the default for recordings plays it (catalog.py).
    expected = model_catalog.BUNDLED_DIR / "ensemble-studio.onnx"
    assert model_catalog.bundled_model_file() == expected
    assert model_catalog.bundled_demo_song() == model_catalog.DEMO_SONG
    result = _run()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "livestems: playing the demo (demo.ogg, 3.0 s) through ensemble-studio"
    )
    report = dict(line.split(":", 1) for line in lines if line.startswith(REPORT_LABELS))
    assert report["model"].strip() == "ensemble-studio.onnx"
    assert report["algorithmic latency"].strip().startswith("4152 samples = 94.15 ms")
    if "Rendering through the engine offline instead" in result.stdout:
        # Every second of it went through, and the stems' tail after it: the total latency.
        latency_s = int(report["total latency"].split()[0]) / 44100
        assert float(report["played"].split()[0]) == pytest.approx(3.0 + latency_s, abs=0.01)
        assert report["under-runs"].strip().startswith("0")
    else:  # a machine with a sound card played it in real time
        assert float(report["played"].split()[0]) > 2.0


REPORT_LABELS = ("model:", "algorithmic latency:", "total latency:", "played:", "under-runs:")


def test_main_job_without_a_bundle_reports_the_measured_latency_of_every_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(model_catalog, "BUNDLED_DIR", tmp_path)
    assert main([]) == 0
    stdout = capsys.readouterr().out
    assert "this checkout has no bundled model, so there is nothing to play" in stdout
    for preset in PRESETS.values():
        assert f"{preset.latency_samples:>5} samples = {preset.latency_ms():6.2f} ms" in (stdout)


def test_playing_never_imports_torch() -> None:
    # The runtime must install and run without torch: prove that the command line, the main
    # job and every realtime module load with torch blocked.
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'onnx', 'museval'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import livestems.realtime as rt\n"
        "for info in pkgutil.iter_modules(rt.__path__):\n"
        "    importlib.import_module('livestems.realtime.' + info.name)\n"
        "from livestems.realtime.commands.cli import main\n"
        "assert main([]) == 0\n"
        "assert main(['devices']) == 0\n"
        "assert main(['models']) == 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        env=_headless_environment(),
    )
    assert result.returncode == 0, result.stderr


def test_the_bundled_model_card_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "lstm-live"]) == 0  # by name; its golden output checked first
    card = capsys.readouterr().out
    assert "latency: 510 samples = 11.56 ms (measured)" in card
    assert "training data: MUSDB18-7 train split" in card
    assert "non-commercial" in card
