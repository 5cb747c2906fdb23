"""The window with the engine in a process of its own: the same controls reach the engine (over
a pipe), the same telemetry comes back (through shared memory)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from livestems.gui.engine_process import ProcessSession
from livestems.gui.window import LivestemsWindow
from tests.helpers.gui import WAIT_MS


@pytest.mark.slow
def test_controls_reach_the_engine_in_its_process(
    process_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, session = process_window, process_window.session
    assert isinstance(session, ProcessSession)
    assert [strip.name for strip in window.strips] == ["vocals", "drums", "bass", "other"]
    window.strips[1].fader.set_db(-12.0)
    qtbot.keyClick(window, Qt.Key.Key_1)  # mute vocals
    qtbot.keyClick(window, Qt.Key.Key_B)  # bypass

    def applied() -> bool:
        state = session.mixer_state()
        return state["bypassed"] and np.allclose(
            state["current"], [0.0, 10 ** (-12 / 20), 1.0, 1.0], atol=1e-6
        )

    qtbot.waitUntil(applied, timeout=WAIT_MS)


@pytest.mark.slow
def test_spectrograms_and_transport_come_back_through_shared_memory(
    process_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window = process_window
    source = window.session.source
    assert source is not None and source.duration == pytest.approx(6.0, abs=0.01)
    qtbot.wait(400)
    first = [strip.spectrogram.image_data() for strip in window.strips]
    qtbot.waitUntil(
        lambda: all(
            not np.array_equal(a, strip.spectrogram.image_data())
            for a, strip in zip(first, window.strips, strict=True)
        ),
        timeout=WAIT_MS,
    )
    assert "under-runs" in window.status_text()
    # Loop A-B wraps in the engine's process too.
    window.seek(1.0)
    qtbot.wait(100)
    window.set_loop_start()
    window.seek(1.5)
    qtbot.wait(100)
    window.set_loop_end()
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert window.loop_start is not None and window.loop_end is not None
    # Song time, read until it has gone back three times. Counted from the first wrap (once
    # the loop has reached the engine): a loaded machine may take a while to get there.
    positions: list[float] = []

    def wrapped(times: int) -> bool:
        positions.append(source.seconds)
        return sum(1 for a, b in zip(positions, positions[1:], strict=False) if b < a) >= times

    qtbot.waitUntil(lambda: wrapped(3), timeout=WAIT_MS)
    first_wrap = next(i for i in range(len(positions) - 1) if positions[i + 1] < positions[i])
    looping = positions[first_wrap + 1 :]
    assert min(looping) >= window.loop_start - 0.05 and max(looping) <= window.loop_end + 0.05
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not source.playing, timeout=WAIT_MS)


@pytest.mark.slow
def test_practice_controls_and_the_beat_grid_cross_to_the_engine_process(
    process_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, session = process_window, process_window.session
    assert isinstance(session, ProcessSession)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)  # tempo 95 %
    qtbot.keyClick(window, Qt.Key.Key_Equal)  # +1 semitone
    window.practice.count_in_button.setChecked(True)
    window.strips[2].pan_knob.set_pan(0.5)
    window.strips[1].set_gate(-50.0)
    assert window.click_strip is not None and window.click_strip.index == 4
    window.click_strip.mute_button.setChecked(False)

    def applied() -> bool:
        state = session.mixer_state()
        return (
            state["tempo"] == pytest.approx(0.95)
            and state["transpose"] == 1.0
            and state["count_in"]
            and state["pans"][2] == 0.5
            and state["gates"][1] == pytest.approx(-50.0)
            and state["click_target"] == 1.0  # the click stem, unmuted
        )

    qtbot.waitUntil(applied, timeout=WAIT_MS)
    # The test song's grid (found or not) reaches the window's label.
    qtbot.waitUntil(lambda: window.grid is not None, timeout=120_000)
    assert window.practice.grid_label.text() != "" and window.practice.grid_label.toolTip()
    window.set_tempo_percent(10)  # checked in this process: one sentence, nothing sent
    assert "empo" in window.message.text()
    assert session.mixer_state()["tempo"] == pytest.approx(0.95)
