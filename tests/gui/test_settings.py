"""Settings: the dialog offers what this machine has and returns values, not list positions;
QSettings keeps them by value and ignores what it cannot use."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from livestems.gui.session import BUNDLED, IDENTITY, SessionSettings
from livestems.gui.settings_store import ini_store, load_session_settings, save_session_settings
from livestems.gui.widgets.settings_dialog import DEFAULT_DEVICE, SettingsDialog


def test_the_dialog_returns_values_and_keeps_an_absent_device(qtbot: QtBot) -> None:
    settings = SessionSettings(
        model=IDENTITY, preset="ultra", output_device="USB Interface (unplugged)", block_size=128
    )
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    # A device that is not there now is kept by name, not replaced by another at its index.
    assert dialog.chosen() == settings
    assert dialog.preset.isEnabled()  # the identity model lets the preset be chosen
    dialog.output_device.setCurrentText(DEFAULT_DEVICE)
    dialog.block_size.setCurrentText("1024")
    chosen = dialog.chosen()
    assert chosen.output_device == "" and chosen.block_size == 1024


def test_a_model_file_brings_its_own_preset(qtbot: QtBot, tmp_path: Path) -> None:
    model = str(tmp_path / "mine.onnx")
    dialog = SettingsDialog(SessionSettings(model=model))
    qtbot.addWidget(dialog)
    assert dialog.chosen().model == model
    assert not dialog.preset.isEnabled()


def test_stored_settings_round_trip_and_rubbish_falls_back(tmp_path: Path) -> None:
    store = ini_store(str(tmp_path / "settings.ini"))
    settings = SessionSettings(model="/models/x.onnx", preset="studio", block_size=512,
                               output_device="Speakers", input_device="Mic")  # fmt: skip
    save_session_settings(store, settings)
    assert load_session_settings(ini_store(str(tmp_path / "settings.ini")), SessionSettings()) == (
        settings
    )
    store.setValue("session/block_size", "lots")
    store.setValue("session/preset", "warp")
    loaded = load_session_settings(store, SessionSettings())
    assert loaded.block_size == 256 and loaded.preset == "live"
    assert load_session_settings(ini_store(str(tmp_path / "new.ini")), SessionSettings()) == (
        SessionSettings(model=BUNDLED)
    )


def test_the_dialog_offers_the_default_model_by_what_it_plays(qtbot: QtBot) -> None:
    dialog = SettingsDialog(SessionSettings(model=BUNDLED))
    qtbot.addWidget(dialog)
    assert dialog.model.currentIndex() == 0
    assert dialog.model.currentText() == (
        "default (ensemble-studio for a song, ensemble-live for the input)"
    )
    assert dialog.chosen().model == BUNDLED
    assert not dialog.preset.isEnabled()  # each default model brings its own preset
