"""The window's practice controls against the real engine: tempo and transpose (slider, spin
boxes, keys, double-click), pan knobs, bleed gates, the click stem's strip, count-in, snap loop
A-B to bars, the song's BPM and key, MIDI learn, and the controls kept in the settings store."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from livestems.gui.midi import MidiEvent
from livestems.gui.session import IDENTITY, SessionSettings
from livestems.gui.window import LivestemsWindow
from livestems.realtime.errors import UserError
from livestems.realtime.practice.beat_grid import BeatGrid
from livestems.realtime.practice.practice_source import PracticeSource
from livestems.realtime.runtime.catalog import bundled_demo_song
from tests.helpers.gui import WAIT_MS, make_window


def practice_source(window: LivestemsWindow) -> PracticeSource:
    engine = window.session.engine
    assert engine is not None, window.message.text()
    assert isinstance(engine.source, PracticeSource)
    return engine.source


def test_tempo_slider_spin_box_keys_and_double_click(
    identity_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, bar = identity_window, identity_window.practice
    source = practice_source(window)
    bar.tempo_slider.setValue(80)
    assert source.tempo == pytest.approx(0.8) and bar.tempo_spin.value() == 80
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert source.tempo == pytest.approx(0.85)
    qtbot.keyClick(window.strips[0].fader, Qt.Key.Key_BracketLeft)  # whatever has the focus
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert source.tempo == pytest.approx(0.75)
    bar.tempo_spin.setValue(120)
    assert source.tempo == pytest.approx(1.2) and bar.tempo_slider.value() == 120
    qtbot.mouseDClick(bar.tempo_slider, Qt.MouseButton.LeftButton)
    assert source.tempo == 1.0 and bar.tempo_spin.value() == 100
    bar.tempo_slider.setValue(150)
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)  # the top of the range stays the top
    assert source.tempo == pytest.approx(1.5)
    qtbot.mouseDClick(bar.tempo_spin.lineEdit(), Qt.MouseButton.LeftButton)
    assert source.tempo == 1.0


def test_transpose_keys_spin_box_and_double_click(
    identity_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, bar = identity_window, identity_window.practice
    source = practice_source(window)
    qtbot.keyClick(window, Qt.Key.Key_Equal)
    assert source.transpose == 1.0
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    assert source.transpose == -1.0
    bar.transpose_spin.setValue(2.35)  # cents: hundredths of a semitone
    assert source.transpose == pytest.approx(2.35)
    assert bar.transpose_spin.text() == "+2.35 st"
    qtbot.mouseDClick(bar.transpose_spin.lineEdit(), Qt.MouseButton.LeftButton)
    assert source.transpose == 0.0 and bar.transpose_spin.value() == 0.0
    help_text = window.shortcut_rows()
    assert ("[, ]", "tempo -5 % / +5 % (pitch kept)") in help_text
    assert any(keys == "-, =" for keys, _ in help_text)


def test_a_bad_tempo_or_key_is_one_sentence(identity_window: LivestemsWindow) -> None:
    window = identity_window
    source = practice_source(window)
    window.set_tempo_percent(300)
    text = window.message.text()
    assert window.message.isVisible() and "empo" in text and text.endswith("."), text
    assert text.count(". ") == 0, text
    window.set_transpose(30)
    assert "30" in window.message.text(), window.message.text()
    assert source.tempo == 1.0 and source.transpose == 0.0


def test_pan_knob_click_strip_and_count_in(identity_window: LivestemsWindow, qtbot: QtBot) -> None:
    window = identity_window
    engine = window.session.engine
    assert engine is not None
    strip = window.strips[0]
    strip.pan_knob.set_pan(-0.5)
    assert engine.mixer.pan(0) == pytest.approx(-0.5) and strip.pan_label.text() == "pan L50"
    qtbot.mouseDClick(strip.pan_knob, Qt.MouseButton.LeftButton)
    assert engine.mixer.pan(0) == 0.0
    click = window.click_strip
    assert click is not None and click.index == len(engine.stems) == 1
    assert engine.mix_stems[click.index] == "click"
    assert engine.mixer.is_muted(click.index) and click.muted  # off by default
    qtbot.mouseClick(click.mute_button, Qt.MouseButton.LeftButton)
    assert not engine.mixer.is_muted(click.index)
    click.fader.set_db(-6.0)
    assert engine.mixer.gain_db(click.index) == pytest.approx(-6.0)
    click.pan_knob.set_pan(0.25)
    assert engine.mixer.pan(click.index) == pytest.approx(0.25)
    qtbot.mouseClick(click.solo_button, Qt.MouseButton.LeftButton)
    assert engine.mixer.is_soloed(click.index)
    qtbot.mouseClick(window.practice.count_in_button, Qt.MouseButton.LeftButton)
    assert practice_source(window).count_in
    qtbot.mouseClick(window.practice.count_in_button, Qt.MouseButton.LeftButton)
    assert not practice_source(window).count_in


def test_the_bleed_gate_box_sets_the_stem_s_gate(identity_window: LivestemsWindow) -> None:
    window = identity_window
    engine = window.session.engine
    assert engine is not None
    strip = window.strips[0]
    assert strip.gate_db is None and engine.processor.bleed_gate_db(0) is None  # off by default
    assert strip.gate_box.isVisibleTo(strip) and strip.gate_box.currentText() == "gate off"
    strip.set_gate(-40.0)
    assert engine.processor.bleed_gate_db(0) == pytest.approx(-40.0)
    assert strip.gate_box.currentText() == "gate -40 dB"
    window.session.set_bleed_gate(0, None)
    with pytest.raises(UserError, match="a level below the stem's peak"):
        window.session.set_bleed_gate(0, 40.0)
    strip.gate_box.setCurrentIndex(0)
    assert engine.processor.bleed_gate_db(0) is None
    click = window.click_strip
    assert click is not None and not click.gate_box.isVisibleTo(click)  # the click has no gate


def test_snap_puts_a_and_b_on_bar_lines(identity_window: LivestemsWindow, qtbot: QtBot) -> None:
    window = identity_window
    source = practice_source(window)
    # A known grid (the test song's own may be unavailable): bars every 2 s.
    window.grid = BeatGrid(120.0, tuple(0.5 * i for i in range(12)), (0.0, 2.0, 4.0))
    window.seek(1.6)
    qtbot.waitUntil(lambda: 1.5 < source.seconds < 1.9, timeout=WAIT_MS)
    window.set_loop_start()
    assert window.loop_start is not None and 1.5 < window.loop_start < 2.0  # snap is off
    qtbot.mouseClick(window.practice.snap_button, Qt.MouseButton.LeftButton)
    window.set_loop_start()
    assert window.loop_start == 2.0
    window.seek(4.4)
    qtbot.waitUntil(lambda: 4.3 < source.seconds < 4.8, timeout=WAIT_MS)
    window.set_loop_end()
    assert window.loop_end == 4.0
    assert "A 0:02.0  B 0:04.0" in window.transport.loop_label.text()


@pytest.mark.slow
def test_the_bpm_and_key_of_the_demo_are_shown_once_found(
    qtbot: QtBot, jack_server: object, settings_path: Path
) -> None:
    demo = bundled_demo_song()
    if demo is None:
        pytest.skip("no demo song is bundled here")
    window = make_window(qtbot, settings_path, SessionSettings(model=IDENTITY), demo)
    try:
        label = window.practice.grid_label
        assert label.text() == "no beat grid" and label.toolTip() == "finding the beat..."
        qtbot.waitUntil(lambda: label.text().startswith("BPM"), timeout=120_000)
        bpm = float(label.text().split()[1])
        assert bpm == pytest.approx(111.0, abs=2.0), label.text()
        assert " · " in label.text() and label.text().endswith(("major", "minor"))
        grid = window.grid
        assert grid is not None and grid.available
        assert practice_source(window).bpm == grid.bpm  # the source has it too
    finally:
        window.shutdown()


def test_midi_learn_drives_tempo_transpose_and_pan(
    identity_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window = identity_window
    source = practice_source(window)
    engine = window.session.engine
    assert engine is not None
    bindings = ((window.practice.tempo_slider, "tempo", 20),
                (window.practice.transpose_spin.lineEdit(), "transpose", 21),
                (window.strips[0].pan_knob, "pan:0", 22))  # fmt: skip
    window.set_midi_learning(True)
    for widget, target, control in bindings:
        qtbot.mousePress(widget, Qt.MouseButton.LeftButton)
        qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton)
        assert window.learn_target == target
        window.on_midi_event(MidiEvent("cc", 0, control, 64))
    window.set_midi_learning(False)
    assert window.midi_mapping.bindings == {"cc/0/20": "tempo", "cc/0/21": "transpose",
                                            "cc/0/22": "pan:0"}  # fmt: skip
    for message in (mido.Message("control_change", control=20, value=0),
                    mido.Message("control_change", control=21, value=127),
                    mido.Message("control_change", control=22, value=0)):  # fmt: skip
        event = MidiEvent.from_message(message)
        assert event is not None
        window.on_midi_event(event)
    assert source.tempo == pytest.approx(0.5)
    assert source.transpose == 12.0
    assert engine.mixer.pan(0) == -1.0


def test_the_practice_controls_survive_a_restart(
    qtbot: QtBot, jack_server: object, settings_path: Path, song_file: Path
) -> None:
    settings = SessionSettings(model=IDENTITY)
    window = make_window(qtbot, settings_path, settings, song_file)
    window.practice.tempo_slider.setValue(85)
    window.practice.transpose_spin.setValue(-2.5)
    window.practice.count_in_button.setChecked(True)
    window.practice.snap_button.setChecked(True)
    window.strips[0].pan_knob.set_pan(-0.3)
    window.strips[0].set_gate(-30.0)
    assert window.click_strip is not None
    window.click_strip.mute_button.setChecked(False)
    window.click_strip.fader.set_db(-3.0)
    window.shutdown()

    window = make_window(qtbot, settings_path, settings, song_file)
    try:
        engine = window.session.engine
        assert engine is not None
        source = practice_source(window)
        assert source.tempo == pytest.approx(0.85) and source.transpose == pytest.approx(-2.5)
        assert source.count_in and window.practice.snap_button.isChecked()
        assert engine.mixer.pan(0) == pytest.approx(-0.3)
        assert engine.processor.bleed_gate_db(0) == pytest.approx(-30.0)
        assert window.strips[0].gate_box.currentText() == "gate -30 dB"
        click = len(engine.stems)
        assert not engine.mixer.is_muted(click)
        assert engine.mixer.gain_db(click) == pytest.approx(-3.0)
    finally:
        window.shutdown()
