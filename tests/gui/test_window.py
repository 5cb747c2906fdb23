"""The window against the real engine on the JACK dummy server: faders, mute and solo (buttons
and keys), spectrograms that move while the song plays and stand still when it pauses, loop A-B,
bypass, seeking, errors shown in the window, settings that reload cleanly and are stored by
value."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from livestems.gui.session import IDENTITY, SessionSettings
from livestems.gui.settings_store import ini_store, load_session_settings, save_session_settings
from livestems.gui.window import LivestemsWindow
from livestems.realtime.runtime.catalog import (
    DEFAULT_LIVE_INPUT_MODEL,
    DEFAULT_MODEL,
    bundled_model_file,
)
from tests.helpers.gui import SAMPLE_RATE, WAIT_MS, make_window


def engine_of(window: LivestemsWindow):  # noqa: ANN201 (the engine, never None here)
    engine = window.session.engine
    assert engine is not None, window.message.text()
    return engine


def images(window: LivestemsWindow) -> list[np.ndarray]:
    return [strip.spectrogram.image_data() for strip in window.strips]


def test_the_window_has_a_strip_per_stem_of_the_model(window: LivestemsWindow) -> None:
    assert [strip.name for strip in window.strips] == ["vocals", "drums", "bass", "other"]
    assert not window.message.isVisible(), window.message.text()


def test_moving_a_fader_changes_that_stems_gain_in_the_engine(
    window: LivestemsWindow, qtbot: QtBot
) -> None:
    engine = engine_of(window)
    window.strips[1].fader.set_db(-12.0)
    assert engine.mixer.gain_db(1) == pytest.approx(-12.0, abs=1e-6)
    assert engine.mixer.gain_db(0) == 0.0
    # The callback ramps to it within a block or two and the ramp.
    qtbot.waitUntil(
        lambda: abs(engine.mixer.current_gains()[1] - 10 ** (-12 / 20)) < 1e-6, timeout=WAIT_MS
    )
    window.strips[2].fader.setValue(window.strips[2].fader.minimum())
    assert engine.mixer.gain(2) == 0.0 and window.strips[2].db_label.text() == "-inf dB"
    # A double-click puts the fader back at 0 dB.
    qtbot.mouseDClick(window.strips[1].fader, Qt.MouseButton.LeftButton)
    assert engine.mixer.gain_db(1) == pytest.approx(0.0)


def test_mute_and_solo_buttons_act_on_the_engine(window: LivestemsWindow, qtbot: QtBot) -> None:
    engine = engine_of(window)
    qtbot.mouseClick(window.strips[0].mute_button, Qt.MouseButton.LeftButton)
    assert engine.mixer.is_muted(0)
    qtbot.mouseClick(window.strips[3].solo_button, Qt.MouseButton.LeftButton)
    assert engine.mixer.is_soloed(3)
    # (The fifth is the click stem's, muted by default.)
    assert list(engine.mixer.effective_targets()) == [0.0, 0.0, 0.0, 1.0, 0.0]
    qtbot.waitUntil(lambda: list(engine.mixer.current_gains()) == [0, 0, 0, 1, 0], timeout=WAIT_MS)
    qtbot.mouseClick(window.strips[3].solo_button, Qt.MouseButton.LeftButton)
    assert list(engine.mixer.effective_targets()) == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_keys_mute_solo_bypass_and_seek(window: LivestemsWindow, qtbot: QtBot) -> None:
    engine, source = engine_of(window), window.session.source
    assert source is not None
    focus = window.strips[2].fader  # keys belong to the window whatever has the focus
    qtbot.keyClick(focus, Qt.Key.Key_2)
    assert engine.mixer.is_muted(1) and window.strips[1].mute_button.isChecked()
    qtbot.keyClick(focus, Qt.Key.Key_2)
    assert not engine.mixer.is_muted(1)
    qtbot.keyClick(focus, Qt.Key.Key_3, Qt.KeyboardModifier.ShiftModifier)
    assert engine.mixer.is_soloed(2)
    # What a US keyboard really sends for Shift+1: "!" with Shift.
    qtbot.keyClick(window, Qt.Key.Key_Exclam, Qt.KeyboardModifier.ShiftModifier)
    assert engine.mixer.is_soloed(0)
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert engine.bypassed and window.transport.bypass_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert not engine.bypassed
    # The song time heard follows a seek once its samples reach the device: wait for it.
    before = source.seconds
    qtbot.keyClick(window, Qt.Key.Key_Right)
    target = min(before + 5.0, source.duration) - 0.01
    qtbot.waitUntil(lambda: source.seconds >= target or source.finished, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: source.seconds < before + 1.5, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not source.playing
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert source.playing


@pytest.mark.slow
def test_spectrograms_move_while_playing_and_stand_still_when_paused(
    window: LivestemsWindow, qtbot: QtBot
) -> None:
    source = window.session.source
    assert source is not None
    source.set_loop(0.0, source.duration)  # the song must not end during the test
    qtbot.wait(400)
    first = images(window)
    qtbot.waitUntil(lambda: all_moved(first, images(window)), timeout=WAIT_MS)
    second = images(window)
    newest = [image[:, -10:] for image in second]
    assert all((columns > -89.0).mean() > 0.2 for columns in newest), "the columns are silent"
    qtbot.keyClick(window, Qt.Key.Key_Space)  # pause
    assert not source.playing
    qtbot.wait(200)
    paused = images(window)
    qtbot.wait(500)
    assert all(np.array_equal(a, b) for a, b in zip(paused, images(window), strict=True))
    qtbot.keyClick(window, Qt.Key.Key_Space)  # and they move again
    qtbot.waitUntil(lambda: all_moved(paused, images(window)), timeout=WAIT_MS)


def all_moved(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    """Every spectrogram's image has changed."""
    return all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.slow
def test_loop_a_b_wraps(window: LivestemsWindow, qtbot: QtBot) -> None:
    source = window.session.source
    assert source is not None
    window.seek(1.0)  # (heard once its samples reach the device)
    qtbot.waitUntil(lambda: 1.0 <= source.seconds < 1.2, timeout=WAIT_MS)
    window.set_loop_start()
    window.seek(1.5)
    qtbot.waitUntil(lambda: 1.5 <= source.seconds < 1.6, timeout=WAIT_MS)
    window.set_loop_end()
    start, end = window.loop_start, window.loop_end
    assert start is not None and end is not None and 1.0 <= start < end <= 1.6
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert window.transport.loop_button.isChecked()
    positions: list[float] = []
    # Until the loop has wrapped three times (what was on its way plays out first, then two
    # wraps of the 0.5 s loop: 2 s on an idle machine), or 30 s on a loaded one.
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        qtbot.wait(20)
        positions.append(source.seconds)
        if sum(1 for a, b in zip(positions, positions[1:], strict=False) if b < a) >= 3:
            break
    block_s = 256 / source.sample_rate
    # What was already on its way to the device when the loop went on plays out first.
    first_wrap = next(
        i for i, (a, b) in enumerate(zip(positions, positions[1:], strict=False)) if b < a
    )
    positions = positions[first_wrap + 1 :]
    assert min(positions) >= start - 1e-9 and max(positions) <= end + block_s
    wraps = sum(1 for a, b in zip(positions, positions[1:], strict=False) if b < a)
    assert wraps >= 2, positions
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert source.loop_end == 0


def test_a_song_that_will_not_load_is_a_message_and_the_old_song_plays_on(
    window: LivestemsWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    engine = engine_of(window)
    assert not window.open_song(broken)
    assert window.message.isVisible() and "broken.wav" in window.message.text()
    assert window.session.engine is engine and engine.source is not None
    played = engine.telemetry.snapshot().samples_played
    qtbot.waitUntil(
        lambda: engine.telemetry.snapshot().samples_played > played + 4096, timeout=WAIT_MS
    )


def test_settings_reload_the_model_without_restarting_and_are_stored_by_value(
    identity_window: LivestemsWindow, model_file: Path, settings_path: Path, tmp_path: Path
) -> None:
    window = identity_window
    assert [strip.name for strip in window.strips] == ["mix"]
    window.strips[0].fader.set_db(-6.0)
    chosen = SessionSettings(model=str(model_file), block_size=512)
    assert window.apply_settings(chosen), window.message.text()
    engine = engine_of(window)
    assert engine.stems == ("vocals", "drums", "bass", "other")
    assert engine.settings.block_size == 512
    assert len(window.strips) == 4
    store = ini_store(str(settings_path))
    assert store.value("session/model") == str(model_file)  # the path, not a list index
    assert store.value("session/block_size") in (512, "512")
    assert load_session_settings(store, SessionSettings()) == chosen
    # A model file that is no model: one sentence in the window; the previous model plays on.
    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    assert not window.apply_settings(SessionSettings(model=str(fake)))
    assert "fake.onnx" in window.message.text()
    assert engine_of(window).stems == ("vocals", "drums", "bass", "other")
    assert load_session_settings(store, SessionSettings()) == chosen
    # Back to the identity model: strips rebuilt, stream running.
    assert window.apply_settings(SessionSettings(model=IDENTITY, preset="ultra"))
    assert engine_of(window).processor.preset.name == "ultra"
    assert [strip.name for strip in window.strips] == ["mix"]


def test_a_device_that_does_not_exist_is_a_message(identity_window: LivestemsWindow) -> None:
    window = identity_window
    assert not window.apply_settings(SessionSettings(model=IDENTITY, output_device="no such"))
    text = window.message.text()
    assert text.count(". ") == 0 and text.endswith("."), text  # one sentence
    assert window.session.engine is not None  # the previous device plays on


def test_the_status_line_reports_latency_compute_and_under_runs(
    window: LivestemsWindow, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: "compute p50/p99 0." in window.status_label.text(), timeout=WAIT_MS)
    text = window.status_label.text()
    for part in ("preset live", "model small.onnx", "CPU", "algorithmic 11.6 ms", "device",
                 "under-runs", "of hop"):  # fmt: skip
        assert part in text, text


def test_without_a_song_the_transport_is_empty_and_asks_for_one(
    qtbot: QtBot, jack_server: object, settings_path: Path
) -> None:
    settings = SessionSettings(model=IDENTITY)
    window = make_window(qtbot, settings_path, settings, None, open_demo=False)
    try:
        assert window.session.engine is None
        assert "open a song" in window.message.text(), window.message.text()
        assert not window.transport.play_button.isEnabled()
        window.tick()  # the timer with nothing playing
        assert not math.isnan(window.cpu_load)
    finally:
        window.shutdown()


def test_a_song_dropped_on_the_window_opens(
    identity_window: LivestemsWindow, tmp_path: Path
) -> None:
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from livestems.realtime.io.generated_song import generated_song

    dropped = tmp_path / "dropped.flac"
    import soundfile

    soundfile.write(dropped, generated_song(3.0, SAMPLE_RATE, seed=9), SAMPLE_RATE)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(dropped))])
    drop = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    identity_window.dropEvent(drop)
    assert identity_window.session.song_name == "dropped.flac"
    source = identity_window.session.source
    assert source is not None and source.duration == pytest.approx(3.0, abs=0.01)
    assert "dropped.flac" in identity_window.windowTitle()


@pytest.mark.parametrize("engine_process", [False, True], ids=["in-process", "engine-process"])
def test_from_the_input_device_to_a_song_the_window_plays_the_songs_default_model(
    qtbot: QtBot,
    jack_server: object,
    settings_path: Path,
    song_file: Path,
    tmp_path: Path,
    engine_process: bool,
) -> None:
    """File > Separate the input device, then File > Open: the song plays through the default
    for a recording, read at that model's rate, with its beat grid (the window leaves live input
    in the engine's process as well as in its own)."""
    if bundled_model_file() is None:
        pytest.skip("this checkout has no bundled model")
    store = ini_store(str(settings_path))
    save_session_settings(store, SessionSettings(provider="cpu"))  # the model: BUNDLED
    window = LivestemsWindow(
        store, None, open_midi=False, open_demo=False, engine_process=engine_process
    )
    qtbot.addWidget(window)
    window.show()
    session = window.session
    try:
        window.open_live_input()
        assert session.running, window.message.text()
        assert session.live_input
        assert session.model_name == f"{DEFAULT_LIVE_INPUT_MODEL}.onnx"
        broken = tmp_path / "broken.wav"
        broken.write_bytes(b"RIFF not audio")
        assert not window.open_song(broken)  # one sentence, and the input device plays on
        assert window.message.text().startswith(f'Cannot load "{broken}"'), window.message.text()
        assert session.running and session.live_input
        assert session.model_name == f"{DEFAULT_LIVE_INPUT_MODEL}.onnx"
        assert window.open_song(song_file), window.message.text()
        assert not session.live_input
        assert session.model_name == f"{DEFAULT_MODEL}.onnx"
        assert session.song_name == song_file.name
        qtbot.waitUntil(lambda: window.grid is not None, timeout=120_000)
    finally:
        window.shutdown()


@pytest.mark.parametrize("engine_process", [False, True], ids=["in-process", "engine-process"])
def test_an_input_device_that_cannot_open_leaves_the_song_playing(
    qtbot: QtBot,
    jack_server: object,
    settings_path: Path,
    model_file: Path,
    song_file: Path,
    engine_process: bool,
) -> None:
    """File > Separate the input device with an input device that is not there: one sentence,
    and the song plays on from where it was, through the same model."""
    store = ini_store(str(settings_path))
    save_session_settings(store, SessionSettings(model=str(model_file)))
    window = LivestemsWindow(store, song_file, open_midi=False, engine_process=engine_process)
    qtbot.addWidget(window)
    window.show()
    session = window.session
    try:
        session.apply_settings(replace(session.settings, input_device="no such input device"))
        qtbot.waitUntil(
            lambda: session.source is not None and session.source.seconds > 0.5, timeout=WAIT_MS
        )
        assert session.source is not None
        model, position = session.model_name, session.source.seconds
        window.open_live_input()
        assert window.message.isVisible() and "no such input device" in window.message.text()
        assert session.running and not session.live_input
        assert session.model_name == model
        qtbot.waitUntil(
            lambda: session.source is not None and session.source.seconds > position,
            timeout=WAIT_MS,
        )
        assert window.transport.isEnabled()
    finally:
        window.shutdown()
