"""``livestems train -o`` is checked before any work (issue 15, case 7): a file, or a folder that
cannot be made, ends in one sentence, not in a traceback after the first epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from livestems.realtime.commands.cli import main as livestems  # noqa: E402


@pytest.mark.parametrize("kind", ["file", "unmakeable"])
def test_a_bad_run_folder_is_one_sentence_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    out = tmp_path / "afile"
    if kind == "file":
        out.write_text("not a folder")
    else:
        (tmp_path / "ro").write_text("")
        out = tmp_path / "ro" / "run"  # a folder inside a file cannot be made
    status = livestems(
        ["train", "--synthetic", "2", "--epochs", "1", "--batches-per-epoch", "1", "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("livestems: ") and err.count("\n") == 1, err
    assert "--out" in err and "Traceback" not in err
