"""The status line: "no MIDI input" in a few words with rtmidi's own words in the tooltip, and a
status that fits the window (it ends in "…" rather than widening the window or running under
the MIDI label)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import pytest
from pytestqt.qtbot import QtBot

from livestems.gui.midi import MidiInput
from livestems.gui.session import IDENTITY, SessionSettings
from livestems.gui.window import LivestemsWindow
from tests.helpers.gui import make_window

RTMIDI_ERROR = "MidiInAlsa::initialize: error creating ALSA sequencer client object."


@pytest.fixture
def songless_window(qtbot: QtBot, settings_path: Path) -> Iterator[LivestemsWindow]:
    """The window with the identity model and no song: no stream, no audio server needed."""
    window = make_window(qtbot, settings_path, SessionSettings(model=IDENTITY), None, False)
    yield window
    window.shutdown()


def no_sequencer(monkeypatch: pytest.MonkeyPatch) -> None:
    """mido as on a machine without an ALSA sequencer (a container, a server)."""

    def refuse() -> list[str]:
        raise SystemError(RTMIDI_ERROR + "ALSA lib seq_hw.c:466:(snd_seq_hw_open) failed")

    monkeypatch.setattr(mido, "get_input_names", refuse)


def test_no_alsa_sequencer_is_no_midi_input_with_the_reason_in_the_detail(
    monkeypatch: pytest.MonkeyPatch, qtbot: QtBot
) -> None:
    no_sequencer(monkeypatch)
    midi = MidiInput()
    assert midi.open() == "no MIDI input"
    assert "MidiInAlsa::initialize" in midi.detail and "Rescan" in midi.detail
    # No ports at all, and ports.
    monkeypatch.setattr(mido, "get_input_names", lambda: [])
    assert midi.open() == "no MIDI input" and "No MIDI input port" in midi.detail
    monkeypatch.setattr(mido, "get_input_names", lambda: ["Pads:0", "Keys:1"])
    monkeypatch.setattr(mido, "open_input", lambda name, callback: _Port())
    assert midi.open() == "MIDI: Pads:0, Keys:1"
    assert midi.detail == "MIDI input from: Pads:0; Keys:1."
    midi.close()


class _Port:
    def close(self) -> None:
        pass


def test_the_midi_label_says_no_midi_input_and_keeps_the_detail_as_its_tooltip(
    songless_window: LivestemsWindow, monkeypatch: pytest.MonkeyPatch, qtbot: QtBot
) -> None:
    window = songless_window
    no_sequencer(monkeypatch)
    window.rescan_midi()
    qtbot.wait(20)
    label = window.midi_label
    assert label.text() == "no MIDI input" and label.shown_text() == "no MIDI input"
    assert "MidiInAlsa" not in label.shown_text()
    assert RTMIDI_ERROR.rstrip(".") in label.toolTip()


def test_a_long_status_is_elided_to_fit_the_window(
    songless_window: LivestemsWindow, monkeypatch: pytest.MonkeyPatch, qtbot: QtBot
) -> None:
    window = songless_window
    no_sequencer(monkeypatch)
    window.rescan_midi()
    window.timer.stop()  # the status is the test's
    long_status = " | ".join(f"part {i} of a status line that is far too long" for i in range(30))
    window.status_label.setText(long_status)
    bar = window.statusBar()
    # The status asks for no width of its own: it cannot make the window wider.
    assert bar.minimumSizeHint().width() < 300
    assert window.minimumSizeHint().width() < 1000
    for width in (1180, 1000):
        window.resize(width, 600)
        qtbot.waitUntil(lambda: window.width() == width)  # noqa: B023 (waited for at once)
        qtbot.wait(20)  # the status bar's layout runs
        status, midi = window.status_label, window.midi_label
        assert status.is_elided() and status.shown_text().endswith("…")
        assert status.toolTip() == long_status  # the whole of it, on hover
        assert long_status.startswith(status.shown_text()[:-1])
        assert midi.shown_text() == "no MIDI input"  # the short label keeps its words
        assert status.geometry().right() < midi.geometry().left()  # side by side, no overlap
        assert midi.geometry().right() <= bar.width()
        width_of_shown = status.fontMetrics().horizontalAdvance(status.shown_text())
        assert width_of_shown <= status.width()
    # A status that fits is shown whole, with no tooltip.
    window.status_label.setText("model identity (dry) | stopped | CPU 3%")
    qtbot.wait(10)
    assert window.status_label.shown_text() == window.status_label.text()
    assert window.status_label.toolTip() == ""


def test_the_status_the_timer_writes_is_the_labels_text(
    songless_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window: Any = songless_window
    qtbot.waitUntil(lambda: "stopped" in window.status_label.text())
    assert window.status_label.text() == window.status_text()
