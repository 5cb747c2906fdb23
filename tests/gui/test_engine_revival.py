"""A dead engine process is started again with the same settings, song, position and controls,
and the window says so (issue 15, case 11); before, it could not play until restarted."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from livestems.gui.engine_process import ProcessSession
from livestems.gui.window import LivestemsWindow
from tests.helpers.gui import WAIT_MS


@pytest.mark.slow
def test_a_killed_engine_process_comes_back_where_it_was(
    process_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, session = process_window, process_window.session
    assert isinstance(session, ProcessSession)
    qtbot.keyClick(window, Qt.Key.Key_1)  # mute vocals
    window.strips[2].fader.set_db(-6.0)
    qtbot.waitUntil(lambda: session.source is not None and session.source.seconds > 1.0)
    old_pid = session.process.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "started again" in window.message.text(), timeout=WAIT_MS * 3)
    assert session.process.is_alive() and session.process.pid != old_pid
    assert session.running and session.source is not None
    # From where it was, not from the start (heard once the seek's samples reach the device).
    source = session.source
    qtbot.waitUntil(lambda: source.seconds > 0.5, timeout=WAIT_MS)

    def controls_back() -> bool:
        state = session.mixer_state()
        return bool(np.allclose(state["current"], [0.0, 1.0, 10 ** (-6 / 20), 1.0], atol=1e-6))

    qtbot.waitUntil(controls_back, timeout=WAIT_MS)
