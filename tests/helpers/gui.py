"""The window's tests: Qt offscreen, how long to wait for the engine, a window to drive.

Fixtures that build windows (``window``, ``identity_window``, ``process_window``) are in
``tests/gui/conftest.py``; this is what tests call themselves. Needs Qt, never torch.
"""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports Qt: no display is needed (a developer may set another platform).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pytestqt.qtbot import QtBot  # noqa: E402

from livestems.gui.session import SessionSettings  # noqa: E402
from livestems.gui.settings_store import ini_store, save_session_settings  # noqa: E402
from livestems.gui.window import LivestemsWindow  # noqa: E402

SAMPLE_RATE = 44100
WAIT_MS = 10_000  # generous: the test machine is shared, and a block may come late


def make_window(
    qtbot: QtBot,
    settings_path: Path,
    settings: SessionSettings,
    song: Path | None,
    open_demo: bool = True,
) -> LivestemsWindow:
    """A shown window with ``settings`` stored at ``settings_path``, opening ``song``."""
    store = ini_store(str(settings_path))
    save_session_settings(store, settings)
    window = LivestemsWindow(store, song, open_midi=False, open_demo=open_demo)
    qtbot.addWidget(window)
    window.show()
    return window
