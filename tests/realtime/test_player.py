"""`livestems play`: keys act on the engine and the source; the status line tells the truth."""

from __future__ import annotations

import numpy as np

from livestems.realtime.commands.play import handle_key, split_keys, status_line
from livestems.realtime.dsp.presets import PRESETS
from livestems.realtime.engine.engine import Engine, EngineSettings
from livestems.realtime.engine.processor import StreamProcessor
from livestems.realtime.engine.sources import FileSource
from tests.helpers.doubles import ChannelSplitModel


def _engine() -> tuple[Engine, FileSource]:
    preset = PRESETS["live"]
    source = FileSource(np.zeros((44100 * 20, 2), dtype=np.float32), 44100)
    engine = Engine(
        StreamProcessor(ChannelSplitModel(preset), preset), EngineSettings(44100, 256), source
    )
    return engine, source


def test_keys_mute_solo_pause_seek_bypass_and_quit() -> None:
    engine, source = _engine()
    assert handle_key(engine, source, "1") and engine.mixer.is_muted(0)
    assert handle_key(engine, source, "1") and not engine.mixer.is_muted(0)
    assert handle_key(engine, source, "@") and engine.mixer.is_soloed(1)
    assert handle_key(engine, source, "3")  # no third stem: ignored
    assert handle_key(engine, source, " ") and not source.playing
    assert handle_key(engine, source, "right") and source.seconds == 5.0
    assert handle_key(engine, source, "left") and source.seconds == 0.0
    assert handle_key(engine, source, "b") and engine.bypassed
    assert not handle_key(engine, source, "q")


def test_status_line_shows_time_stems_latency_and_underruns() -> None:
    engine, source = _engine()
    engine.set_mute(0, True)
    engine.set_solo(1, True)
    line = status_line(engine, source)
    assert "0.0/20s" in line and "1:left(m)" in line and "2:right*" in line
    assert f"latency {1000 * engine.latency_samples / 44100:.1f} ms" in line
    assert "under-runs 0" in line


def test_no_key_and_several_keys_at_once() -> None:
    engine, source = _engine()
    # No key (a read that timed out) changes nothing: "" is a substring of the solo keys, and
    # once toggled the first stem's solo every 0.1 s.
    for _ in range(3):
        assert handle_key(engine, source, "")
    assert not engine.mixer.is_soloed(0) and not engine.mixer.is_muted(0)
    assert handle_key(engine, source, "!@")  # not one key: ignored, never solo
    assert not engine.mixer.is_soloed(0)
    assert split_keys("12\x1b[C!\x1b[Dq") == ["1", "2", "right", "!", "left", "q"]
    assert split_keys("") == []
    assert split_keys("\x1b[") == ["\x1b", "["]  # a cut-off sequence: keys that do nothing
