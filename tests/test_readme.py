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


def _python_block(section: str) -> str:
    readme = (ROOT / "README.md").read_text()
    text = readme.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.+?)\n```", text, flags=re.S)[0]


def test_the_readme_api_example_runs_on_a_48_khz_song_and_its_stems_sum_to_it() -> None:
    import numpy as np

    from livestems.realtime.io.generated_song import generated_song

    audio = generated_song(4.0, 48_000, seed=3)
    namespace = {"audio": audio, "sample_rate": 48_000, "block": audio[:1000]}
    exec(compile(_python_block("The Python API"), "README.md", "exec"), namespace)
    stems = namespace["stems"]
    assert list(stems) == ["vocals", "drums", "bass", "other"]
    assert all(stem.shape == audio.shape for stem in stems.values())
    np.testing.assert_allclose(sum(stems.values()), audio, atol=1e-6)
    assert namespace["out"].shape == (4, 1000, 2)
    # the stems really are separated: no stem is the mix
    assert all(np.abs(stem - audio).max() > 0.01 for stem in stems.values())


def test_the_readme_benchmarks_table_is_the_index() -> None:
    from livestems.realtime.benchmarks import index_table

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- benchmarks:begin -->\n", 1)[1].split("\n<!-- benchmarks:end -->")[0]
    assert block == index_table()
