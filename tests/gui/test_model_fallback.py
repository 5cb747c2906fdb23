"""Which model the window's session loads: the bundled default of what it plays (a song or the
input device); on a stored model file that cannot be used (issue 15, case 5), the bundled model
instead, and the sentence says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestems.gui.session import AudioSession, SessionSettings
from livestems.realtime.runtime.catalog import (
    DEFAULT_LIVE_INPUT_MODEL,
    DEFAULT_MODEL,
    bundled_model_file,
    find_model_file,
)
from tests.helpers.model_files import BAD_FIELDS, write_model


def test_the_window_session_falls_back_to_the_bundled_model(tmp_path: Path) -> None:
    bad = write_model(tmp_path / "stored.onnx", BAD_FIELDS["no bands"])
    session = AudioSession(SessionSettings(model=str(bad), provider="cpu"))
    notice = session.load_model()
    assert notice is not None and notice.startswith(f'Cannot use model "{bad}"')
    assert notice.endswith("Playing the bundled model instead.")
    assert session.model_name == find_model_file(None).name
    assert session.load_model() == notice  # opening a song does not try the bad file again


def test_the_bundled_setting_loads_the_default_of_what_the_window_plays() -> None:
    if bundled_model_file() is None:
        pytest.skip("this checkout has no bundled model")
    session = AudioSession(SessionSettings(provider="cpu"))  # the model setting: BUNDLED
    assert session.load_model() is None
    assert session.model_name == f"{DEFAULT_MODEL}.onnx"
    session.live_input = True  # File > Separate the input device
    assert session.load_model() is None
    assert session.model_name == f"{DEFAULT_LIVE_INPUT_MODEL}.onnx"
    assert session.sample_rate == 44100
