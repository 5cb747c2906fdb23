"""The README's promise: its two commands are the ones the project really runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_gives_the_main_job_and_the_test_command() -> None:
    main_job, tests = _readme_commands()
    assert main_job == "./setup.sh && .venv/bin/livestems"
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


def test_readme_tours_every_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    for folder in ("realtime/", "models/", "export/", "gui/", "tests/"):
        assert f"`{folder}`" in readme
