"""The `livestems` command as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livestems.realtime.cli import PLANNED_COMMANDS, _registered_commands, main
from livestems.realtime.presets import PRESETS

SCRIPT = shutil.which("livestems", path=str(Path(sys.executable).parent))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT, "the livestems console script is not installed next to this Python"
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
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


@pytest.mark.parametrize("name", sorted(set(PLANNED_COMMANDS) - set(_registered_commands())))
def test_unbuilt_command_says_so_in_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"livestems {name} is not built yet in livestems {err.split()[-1][:-1]}."
    assert "\n" not in err


def test_main_job_reports_the_measured_latency_of_every_preset() -> None:
    result = _run()
    assert result.returncode == 0, result.stderr
    assert "no trained model is bundled yet" in result.stdout
    for preset in PRESETS.values():
        assert f"{preset.latency_samples:>5} samples = {preset.latency_ms():6.2f} ms" in (
            result.stdout
        )


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
        "from livestems.realtime.cli import main\n"
        "assert main([]) == 0\n"
        "assert main(['devices']) == 0\n"
        "assert main(['models']) == 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
