"""Which model the window's session loads: the bundled default of what it plays (a song or the
input device); on a stored model file that cannot be used (issue 15, case 5), the bundled model
instead, and the sentence says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from livestems.gui import session as session_module
from livestems.gui.session import AudioSession, SessionSettings
from livestems.realtime.errors import UserError
from livestems.realtime.runtime.catalog import (
    DEFAULT_LIVE_INPUT_MODEL,
    DEFAULT_MODEL,
    bundled_model_file,
    find_model_file,
)
from tests.helpers.model_files import BAD_FIELDS, setter, write_model


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


def test_a_song_opened_after_the_input_device_is_read_at_its_own_models_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default for a recording may run at another rate than the input device's: the song
    is read at the rate of the model it plays through, not of the model live input left loaded.
    A song that cannot be read leaves the session on the input device."""
    studio = write_model(tmp_path / "studio-48k.onnx", setter("sample_rate", 48_000))
    live = write_model(tmp_path / "live-44k.onnx", setter("sample_rate", 44_100))
    defaults = {False: studio, True: live}
    monkeypatch.setattr(session_module, "find_model_file", lambda name, live: defaults[live])
    song = tmp_path / "song.wav"
    soundfile.write(song, np.zeros((44_100, 2)), 44_100)  # one second
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not audio")

    session = AudioSession(SessionSettings(provider="cpu"))
    session.live_input = True
    session.load_model()
    assert (session.model_name, session.sample_rate) == (live.name, 44_100)
    with pytest.raises(UserError):
        session.open_song(broken)
    assert session.live_input  # still on the input device, through its model
    assert (session.model_name, session.sample_rate) == (live.name, 44_100)
    session.open_song(song)
    assert not session.live_input
    assert (session.model_name, session.sample_rate) == (studio.name, 48_000)
    assert session.song is not None and len(session.song) == 48_000
