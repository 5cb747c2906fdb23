"""README tables written by ``livestems.export.ablation``: one block replaced, the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestems.export.ablation import replace_block
from livestems.realtime.errors import UserError

HEADER = ["| row | vocals | mean | command |", "|---|---:|---:|---|"]


def readme(ablation_rows: list[str], curve_rows: list[str]) -> str:
    return "\n".join(
        [
            "# text",
            "<!-- ablation:begin -->",
            *HEADER,
            *ablation_rows,
            "<!-- ablation:end -->",
            "between",
            "<!-- learning-curve:begin -->",
            *HEADER,
            *curve_rows,
            "<!-- learning-curve:end -->",
            "after",
        ]
    )


def test_only_the_named_block_changes_and_rows_not_run_keep_their_line(tmp_path: Path) -> None:
    for name in ("songs10", "songs20", "songs80"):
        (tmp_path / f"{name}.json").write_text("{}")
    text = readme(
        ["| 1-baseline | 3.47 | 2.26 | x |"],
        ["| songs10 | 1.0 | 1.0 | old |", "| songs20 | 0.5 | 0.5 | old |"],
    )
    text += "\n| songs80 | 9.9 | 9.9 | outside the block |"
    new = [*HEADER, "| songs80 | 4.0 | 3.0 | new |", "| songs20 | 2.0 | 2.0 | new |"]
    written = replace_block(text, "learning-curve", new, {"songs20", "songs80"}, tmp_path)
    assert (
        written.split("<!-- learning-curve:begin -->")[0]
        == text.split("<!-- learning-curve:begin -->")[0]
    )
    block = written.split("<!-- learning-curve:begin -->\n")[1].split("\n<!-- learning")[0]
    assert block.splitlines() == [
        *HEADER,
        "| songs10 | 1.0 | 1.0 | old |",  # not run this time: kept
        "| songs20 | 2.0 | 2.0 | new |",
        "| songs80 | 4.0 | 3.0 | new |",
    ]
    assert written.endswith("after\n| songs80 | 9.9 | 9.9 | outside the block |")
    # a row whose recipe is gone is dropped
    (tmp_path / "songs10.json").unlink()
    again = replace_block(written, "learning-curve", new, {"songs20", "songs80"}, tmp_path)
    assert "| songs10 |" not in again


def test_a_readme_without_the_block_is_refused_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"The README has no <!-- curve:begin --> \.\.\. "):
        replace_block(readme([], []), "curve", HEADER, set(), tmp_path)
