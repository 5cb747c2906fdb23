"""The window opens on a stored model file that cannot be used (issue 15, case 5): the bundled
model plays instead and the sentence says why."""

from __future__ import annotations

from pathlib import Path

from livestems.gui.session import AudioSession, SessionSettings
from livestems.realtime.runtime.catalog import find_model_file
from tests.helpers.model_files import BAD_FIELDS, write_model


def test_the_window_session_falls_back_to_the_bundled_model(tmp_path: Path) -> None:
    bad = write_model(tmp_path / "stored.onnx", BAD_FIELDS["no bands"])
    session = AudioSession(SessionSettings(model=str(bad), provider="cpu"))
    notice = session.load_model()
    assert notice is not None and notice.startswith(f'Cannot use model "{bad}"')
    assert notice.endswith("Playing the bundled model instead.")
    assert session.model_name == find_model_file(None).name
    assert session.load_model() == notice  # opening a song does not try the bad file again
