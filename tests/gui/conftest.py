"""Fixtures for the window's tests: Qt offscreen, a real model file, a test song, the window
(in this process, or with the engine in a process of its own).

The window runs against the real engine on the JACK dummy server that ``tests/conftest.py``
starts (PortAudio reaches it), so what these tests drive is what a user hears.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Qt: no display is needed (a developer may set another platform).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import soundfile  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from livestems.gui.engine_process import ProcessSession  # noqa: E402
from livestems.gui.session import IDENTITY, SessionSettings  # noqa: E402
from livestems.gui.settings_store import ini_store, save_session_settings  # noqa: E402
from livestems.gui.window import LivestemsWindow  # noqa: E402
from livestems.realtime.io.generated_song import generated_song  # noqa: E402
from tests.helpers.gui import SAMPLE_RATE, make_window  # noqa: E402


@pytest.fixture(scope="session")
def song_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gui") / "song.wav"
    soundfile.write(path, generated_song(6.0, SAMPLE_RATE, seed=7), SAMPLE_RATE)
    return path


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported model (random weights, lstm, live preset, four stems)."""
    pytest.importorskip("torch")
    from livestems.export.onnx_export import export_onnx
    from livestems.models.families.lstm import LstmConfig
    from tests.helpers.networks import randomized

    path = tmp_path_factory.mktemp("gui-model") / "small.onnx"
    export_onnx(randomized(LstmConfig(preset="live", hidden_size=64), seed=70), path)
    return path


@pytest.fixture(autouse=True)
def beat_grid_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The beat grids the windows find (each song it opens) go to a folder of the test run's,
    not the user's cache."""
    folder = tmp_path_factory.getbasetemp() / "beat-grid-cache"
    monkeypatch.setenv("LIVESTEMS_CACHE", str(folder))
    return folder


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def window(
    qtbot: QtBot, jack_server: object, settings_path: Path, model_file: Path, song_file: Path
) -> Iterator[LivestemsWindow]:
    """The window playing the test song through the four-stem model."""
    window = make_window(qtbot, settings_path, SessionSettings(model=str(model_file)), song_file)
    assert window.session.engine is not None, window.message.text()
    yield window
    window.shutdown()


@pytest.fixture
def identity_window(
    qtbot: QtBot, jack_server: object, settings_path: Path, song_file: Path
) -> Iterator[LivestemsWindow]:
    """The window playing the test song through the identity model (no torch needed)."""
    window = make_window(qtbot, settings_path, SessionSettings(model=IDENTITY), song_file)
    assert window.session.engine is not None, window.message.text()
    yield window
    window.shutdown()


@pytest.fixture
def process_window(
    qtbot: QtBot, jack_server: object, settings_path: Path, model_file: Path, song_file: Path
) -> Iterator[LivestemsWindow]:
    """The window with the engine in a process of its own, playing through the four-stem model."""
    store = ini_store(str(settings_path))
    save_session_settings(store, SessionSettings(model=str(model_file)))
    window = LivestemsWindow(store, song_file, open_midi=False, engine_process=True)
    qtbot.addWidget(window)
    window.show()
    assert window.session.running, window.message.text()
    yield window
    window.shutdown()
    assert isinstance(window.session, ProcessSession)
    assert not window.session.process.is_alive()
