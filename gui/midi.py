"""MIDI control of the window: a mapping from controller messages to faders, pan knobs, mute,
solo, the master fader, tempo and transpose,
filled by "learn" (touch a control, move a knob), read from every MIDI input port.

Thread contract: ``MidiInput`` opens ports on the GUI thread; python-rtmidi calls its callback
on rtmidi's own thread, which only turns the message into a ``MidiEvent`` and emits
``event_received`` (a Qt signal, queued to the GUI thread). The mapping is used on the GUI
thread only, where the window applies an event exactly as if the user had moved the control,
so MIDI never touches the engine from another thread.

A machine with no MIDI hardware (or no ALSA sequencer at all, as in a container) is normal:
``open`` then reports "no MIDI input" and the window goes on without it. What the status line
shows stays that short; rtmidi's own words go into ``detail``, which the window shows as the
status line's tooltip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

CONTROL_KINDS = ("fader", "pan", "mute", "solo", "master", "tempo", "transpose")
GLOBAL_KINDS = ("master", "tempo", "transpose")  # one control each, no stem index


@dataclass(frozen=True)
class MidiEvent:
    """What the window needs of a MIDI message.

    Attributes:
        kind: ``cc`` (control change) or ``note``.
        channel: 0-15.
        number: the controller or note number.
        value: the controller value or the velocity (0 for a note off), 0-127.
    """

    kind: str
    channel: int
    number: int
    value: int

    @property
    def key(self) -> str:
        """The message's address, as the mapping stores it: ``cc/0/7``, ``note/9/36``."""
        return f"{self.kind}/{self.channel}/{self.number}"

    @classmethod
    def from_message(cls, message: Any) -> MidiEvent | None:
        """A mido message as an event; ``None`` for messages that address no control."""
        if message.type == "control_change":
            return cls("cc", message.channel, message.control, message.value)
        if message.type == "note_on":
            return cls("note", message.channel, message.note, message.velocity)
        if message.type == "note_off":
            return cls("note", message.channel, message.note, 0)
        return None


def control_target(text: str) -> tuple[str, int]:
    """``"fader:2"`` -> ("fader", 2); ``"master"`` -> ("master", 0) (``tempo``,
    ``transpose`` too). ValueError otherwise."""
    kind, _, index = text.partition(":")
    if kind not in CONTROL_KINDS or (kind not in GLOBAL_KINDS and not index.isdigit()):
        raise ValueError(f"not a MIDI control target: {text!r}")
    return kind, int(index or 0)


class MidiMapping:
    """Message address -> control target (``fader:<stem>``, ``pan:<stem>``, ``mute:<stem>``,
    ``solo:<stem>``, ``master``, ``tempo``, ``transpose``); one address drives one control, one
    control answers one address."""

    def __init__(self, bindings: dict[str, str] | None = None) -> None:
        self.bindings: dict[str, str] = {}
        for key, target in (bindings or {}).items():
            self.bind(key, target)

    def bind(self, key: str, target: str) -> None:
        control_target(target)  # refuses a malformed target before it is stored
        for old_key in [k for k, t in self.bindings.items() if t == target]:
            del self.bindings[old_key]
        self.bindings[key] = target

    def target(self, event: MidiEvent) -> str | None:
        return self.bindings.get(event.key)

    def to_json(self) -> str:
        return json.dumps(self.bindings, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MidiMapping:
        """A stored mapping; anything unreadable gives an empty one (a stale setting must not
        keep the window from opening)."""
        try:
            data = json.loads(text) if text else {}
            return cls({str(k): str(v) for k, v in data.items()})
        except (ValueError, AttributeError):
            return cls()


class MidiInput(QObject):
    """Every MIDI input port, through mido and python-rtmidi."""

    event_received = Signal(object)  # MidiEvent, delivered on the GUI thread

    def __init__(self) -> None:
        super().__init__()
        self._ports: list[Any] = []
        self.port_names: list[str] = []
        self.detail = ""  # what ``open`` found, in sentences (the status line's tooltip)

    def open(self) -> str:
        """(Re)open every input port. Returns a few words for the status line: "no MIDI input",
        or "MIDI: " and the ports; ``detail`` then says more (and why there is none)."""
        self.close()
        try:
            import mido

            names = mido.get_input_names()
            for name in names:
                self._ports.append(mido.open_input(name, callback=self._on_message))
                self.port_names.append(name)
        except Exception as error:  # no ALSA sequencer, no rtmidi, a port that went away
            self.close()
            reason = " ".join(str(error).split()).rstrip(".") or type(error).__name__
            self.detail = (
                f"No MIDI input: the MIDI ports could not be opened ({reason}). Connect a MIDI "
                "device and choose MIDI > Rescan ports."
            )
            return "no MIDI input"
        if not self.port_names:
            self.detail = (
                "No MIDI input port is connected. Connect a MIDI device and choose MIDI > "
                "Rescan ports."
            )
            return "no MIDI input"
        self.detail = "MIDI input from: " + "; ".join(self.port_names) + "."
        return "MIDI: " + ", ".join(self.port_names)

    def _on_message(self, message: Any) -> None:
        event = MidiEvent.from_message(message)
        if event is not None:
            self.event_received.emit(event)

    def close(self) -> None:
        for port in self._ports:
            try:
                port.close()
            except Exception:  # closing a port whose device is gone may fail; it is gone
                pass
        self._ports, self.port_names = [], []
