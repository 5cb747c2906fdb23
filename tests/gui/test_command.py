"""``livestems gui`` and the main job's choice of the window: no display is one sentence, and
Qt itself keeps its references straight (a PySide6 release that did not crashed the window)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Signal

from livestems.gui.command import display_available

LIVESTEMS = str(Path(sys.executable).parent / "livestems")


def _without_display() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    return env


def test_gui_without_a_display_says_so_in_one_sentence() -> None:
    result = subprocess.run(
        [LIVESTEMS, "gui"], env=_without_display(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("livestems: There is no display"), result.stderr
    assert result.stderr.count("\n") == 1


def test_no_display_means_the_headless_main_job(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not display_available()


def test_a_display_that_qt_cannot_open_is_not_a_display(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DISPLAY", ":987")  # no X server there
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert not display_available()


class _Emitter(QObject):
    fired = Signal()


def test_emitting_signals_keeps_the_reference_counts() -> None:
    # PySide6 6.12.0 dropped a reference to True on every emit; on Python 3.11 the window then
    # died with "bool_dealloc" after a few minutes. pyproject.toml excludes that release.
    emitter = _Emitter()
    emitter.fired.connect(lambda: None)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(1000):
        emitter.fired.emit()
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before


@pytest.mark.slow
def test_main_job_with_a_display_qt_cannot_open_runs_headless() -> None:
    env = _without_display() | {"DISPLAY": ":987"}  # set, but no X server answers there
    result = subprocess.run([LIVESTEMS], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Qt cannot open a window on this display" in result.stderr
    assert "Running without the window." in result.stderr
    assert result.stdout  # the headless job's report
