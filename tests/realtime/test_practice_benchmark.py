"""The practice benchmark runs its four playbacks (as recorded, stretched, stretched round a
loop, stretched with seeks) on a JACK dummy server of its own and writes its table into a
README's block."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pylibrb")

from livestems.realtime.backends.jack_server import jackd_available  # noqa: E402


@pytest.mark.slow
def test_the_practice_benchmark_plays_four_ways_and_fills_the_readme_block(
    tmp_path: Path,
) -> None:
    if not jackd_available():
        pytest.skip("jackd is not installed (Debian package jackd2)")
    readme = tmp_path / "README.md"
    readme.write_text(
        "before\n<!-- practice-benchmark:begin -->\nold\n<!-- practice-benchmark:end -->\nafter\n"
    )
    # In a process of its own: libjack serves one server per process, and this test process
    # may already have clients on the session's server.
    result = subprocess.run(
        [
            sys.executable, "-m", "livestems.realtime.benchmarks.practice",
            "--model", "lstm-ultra", "--seconds", "1", "--loop", "0.5", "--seek-every", "0.4",
            "--readme", str(readme),
        ],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| as recorded",
        "| tempo 0.8, transpose -2",
        "| the same, looping 0.5 s (A-B)",
        "| the same, seeking every 0.4 s",
    ]
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| the same, seeking every 0.4 s |" in text
