"""The stem meters are post-fader by default and say so: the engine's levels (measured before
the mixer) times the gain the mixer applies, so a muted stem's meter falls to nothing and a
meter follows its fader; the meter's menu switches every meter to pre-fader, and the choice is
stored."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from livestems.gui.engine_process import ProcessSession
from livestems.gui.session import IDENTITY, SessionSettings
from livestems.gui.settings_store import METER_POINT_KEY
from livestems.gui.widgets.level_meter import FLOOR_DB, level_fraction
from livestems.gui.widgets.stem_strip import StemStrip
from livestems.gui.window import LivestemsWindow
from tests.helpers.gui import WAIT_MS, make_window


def silent(strip: StemStrip) -> bool:
    """The meter shows nothing: no bar and no peak line above the floor."""
    meter = strip.meter
    return level_fraction(meter.rms_db) == 0.0 and level_fraction(meter.held_peak_db) == 0.0


def sounding(strip: StemStrip) -> bool:
    return strip.meter.rms_db > FLOOR_DB


def test_a_post_fader_meter_is_the_level_times_the_gain(qtbot: QtBot) -> None:
    strip = StemStrip(0, "vocals", 44100)
    qtbot.addWidget(strip)
    assert strip.post_fader and strip.meter_point_label.text() == "post-fader"
    assert "post-fader" in strip.meter.toolTip()
    strip.show_telemetry(-20.0, -8.0, 0.5)
    half = 20.0 * math.log10(0.5)
    assert strip.meter.rms_db == pytest.approx(-20.0 + half)
    assert strip.meter.peak_db == pytest.approx(-8.0 + half)
    strip.show_telemetry(-20.0, -8.0, 10 ** (12 / 20))  # a fader above 0 dB
    assert strip.meter.rms_db == pytest.approx(-8.0)
    strip.show_telemetry(-20.0, -8.0, 0.0)  # muted
    assert strip.meter.rms_db == -math.inf and level_fraction(strip.meter.rms_db) == 0.0
    strip.set_meter_post_fader(False)
    assert strip.meter_point_label.text() == "pre-fader"
    assert "pre-fader" in strip.meter.toolTip()
    strip.show_telemetry(-20.0, -8.0, 0.0)
    assert (strip.meter.rms_db, strip.meter.peak_db) == (-20.0, -8.0)


def test_the_meters_menu_switches_every_meter_and_is_stored(
    qtbot: QtBot, settings_path: Path
) -> None:
    window = make_window(qtbot, settings_path, SessionSettings(model=IDENTITY), None, False)
    try:
        assert window.meters_post_fader
        menu = window.strips[0].meter_menu()
        actions = {action.text(): action for action in menu.actions()}
        assert actions["Post-fader meters"].isChecked()
        actions["Pre-fader meters"].trigger()
        assert not window.meters_post_fader
        assert all(not strip.post_fader for strip in window.strips)
        assert window.store.value(METER_POINT_KEY) == "pre-fader"
    finally:
        window.shutdown()
    again = make_window(qtbot, settings_path, SessionSettings(model=IDENTITY), None, False)
    try:
        assert not again.meters_post_fader and not again.strips[0].post_fader
    finally:
        again.shutdown()


def test_the_timer_scales_the_engines_levels_by_the_mixers_gains(
    window: LivestemsWindow, qtbot: QtBot
) -> None:
    engine = window.session.engine
    assert engine is not None
    window.timer.stop()  # the test ticks
    qtbot.mouseClick(window.strips[0].mute_button, Qt.MouseButton.LeftButton)
    window.strips[1].fader.set_db(-12.0)
    targets = [0.0, 10 ** (-12 / 20), 1.0, 1.0]
    qtbot.waitUntil(
        lambda: np.allclose(engine.mixer.current_gains()[:4], targets, atol=1e-6), timeout=WAIT_MS
    )
    # Levels the test chose, and the engine's own mixer's gains.
    snapshot = engine.telemetry.snapshot()
    levels = replace(
        snapshot,
        stem_rms_db=np.array([-20.0, -20.0, -20.0, -30.0]),
        stem_peak_db=np.array([-6.0, -6.0, -6.0, -6.0]),
    )
    window.session.snapshot = lambda: levels
    window.tick()
    rms = [strip.meter.rms_db for strip in window.strips]
    assert rms[0] == -math.inf
    assert rms[1:] == pytest.approx([-32.0, -20.0, -30.0], abs=1e-4)
    window.set_meters_post_fader(False)
    window.tick()
    assert [strip.meter.rms_db for strip in window.strips] == [-20.0, -20.0, -20.0, -30.0]


@pytest.mark.slow
def test_a_muted_stems_meter_falls_to_nothing_and_pre_fader_it_moves(
    window: LivestemsWindow, qtbot: QtBot
) -> None:
    source = window.session.source
    assert source is not None
    source.set_loop(0.0, source.duration)  # the song must not end during the test
    qtbot.waitUntil(lambda: all(sounding(strip) for strip in window.strips), timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_1)  # mute vocals
    # The peak line holds a second, then falls.
    qtbot.waitUntil(lambda: silent(window.strips[0]), timeout=WAIT_MS)
    # Muting one stem leaves the others' meters up (a late block on a loaded machine may dip
    # one for a moment: wait for all three while the muted one stays down).
    qtbot.waitUntil(
        lambda: silent(window.strips[0]) and all(sounding(s) for s in window.strips[1:]),
        timeout=WAIT_MS,
    )
    qtbot.wait(300)
    assert silent(window.strips[0])
    window.set_meters_post_fader(False)  # the stem as separated: muted or not
    qtbot.waitUntil(lambda: sounding(window.strips[0]), timeout=WAIT_MS)


@pytest.mark.slow
def test_post_fader_meters_with_the_engine_in_its_own_process(
    process_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, session = process_window, process_window.session
    assert isinstance(session, ProcessSession)
    qtbot.waitUntil(lambda: all(sounding(strip) for strip in window.strips), timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_2)  # mute drums
    window.strips[2].fader.set_db(-12.0)

    def gains_arrived() -> bool:
        gains = session.stem_gains()
        return gains is not None and np.allclose(gains, [1.0, 0.0, 10 ** (-12 / 20), 1.0])

    qtbot.waitUntil(gains_arrived, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: silent(window.strips[1]), timeout=WAIT_MS)
    assert sounding(window.strips[0]) and sounding(window.strips[2])
