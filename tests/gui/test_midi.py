"""MIDI: learn binds a controller to a fader, mute or solo and it then drives the engine; a
machine without MIDI hardware is no error."""

from __future__ import annotations

import mido
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from livestems.gui.midi import MidiEvent, MidiInput, MidiMapping
from livestems.gui.settings_store import MIDI_MAPPING_KEY
from livestems.gui.window import LivestemsWindow


def event(message: mido.Message) -> MidiEvent:
    converted = MidiEvent.from_message(message)
    assert converted is not None
    return converted


def test_learn_binds_a_controller_that_then_drives_the_fader(
    window: LivestemsWindow, qtbot: QtBot
) -> None:
    engine = window.session.engine
    assert engine is not None
    window.set_midi_learning(True)
    qtbot.mousePress(window.strips[2].fader, Qt.MouseButton.LeftButton)  # touch: the target
    qtbot.mouseRelease(window.strips[2].fader, Qt.MouseButton.LeftButton)
    assert window.learn_target == "fader:2"
    window.on_midi_event(event(mido.Message("control_change", channel=0, control=7, value=90)))
    assert window.midi_mapping.bindings == {"cc/0/7": "fader:2"}
    assert MidiMapping.from_json(str(window.store.value(MIDI_MAPPING_KEY))).bindings == {
        "cc/0/7": "fader:2"
    }
    window.set_midi_learning(False)
    window.on_midi_event(event(mido.Message("control_change", channel=0, control=7, value=0)))
    assert engine.mixer.gain(2) == 0.0  # the bottom of the travel: silence
    window.on_midi_event(event(mido.Message("control_change", channel=0, control=7, value=127)))
    assert engine.mixer.gain_db(2) == pytest.approx(12.0)
    window.on_midi_event(event(mido.Message("control_change", channel=1, control=7, value=0)))
    assert engine.mixer.gain_db(2) == pytest.approx(12.0)  # another channel: not bound


def test_pads_toggle_mute_and_switches_set_solo(window: LivestemsWindow, qtbot: QtBot) -> None:
    engine = engine_of_window = window.session.engine
    assert engine_of_window is not None
    window.set_midi_learning(True)
    qtbot.mouseClick(window.strips[0].mute_button, Qt.MouseButton.LeftButton)
    window.on_midi_event(event(mido.Message("note_on", channel=9, note=36, velocity=100)))
    qtbot.mouseClick(window.strips[1].solo_button, Qt.MouseButton.LeftButton)
    window.on_midi_event(event(mido.Message("control_change", control=64, value=127)))
    window.set_midi_learning(False)
    # The clicks made while learning toggled the buttons: put them back.
    window.strips[0].mute_button.setChecked(False)
    window.strips[1].solo_button.setChecked(False)
    window.on_midi_event(event(mido.Message("note_on", channel=9, note=36, velocity=90)))
    assert engine.mixer.is_muted(0)
    window.on_midi_event(event(mido.Message("note_off", channel=9, note=36)))
    assert engine.mixer.is_muted(0)  # a pad's release changes nothing
    window.on_midi_event(event(mido.Message("note_on", channel=9, note=36, velocity=90)))
    assert not engine.mixer.is_muted(0)
    window.on_midi_event(event(mido.Message("control_change", control=64, value=127)))
    assert engine.mixer.is_soloed(1)
    window.on_midi_event(event(mido.Message("control_change", control=64, value=0)))
    assert not engine.mixer.is_soloed(1)


def test_the_mapping_round_trips_and_refuses_rubbish() -> None:
    mapping = MidiMapping({"cc/0/7": "fader:0", "note/9/36": "mute:1"})
    mapping.bind("cc/0/8", "fader:0")  # one control answers one address
    assert mapping.bindings == {"cc/0/8": "fader:0", "note/9/36": "mute:1"}
    assert MidiMapping.from_json(mapping.to_json()).bindings == mapping.bindings
    assert MidiMapping.from_json("{not json").bindings == {}
    with pytest.raises(ValueError):
        mapping.bind("cc/0/9", "volume:1")


def test_no_midi_hardware_is_no_error(qtbot: QtBot) -> None:
    midi = MidiInput()
    status = midi.open()  # this machine may have no ALSA sequencer at all
    assert status.startswith(("no MIDI input", "MIDI: ")), status
    assert "\n" not in status
    midi.close()
