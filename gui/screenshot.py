"""Screenshots of the real window on a virtual X display, while a song plays: two PNGs one second
apart, in which the spectrograms have visibly moved on.

    python -m livestems.gui.screenshot [-o docs] [--model M.onnx] [--song FILE]

Starts Xvfb (Debian package ``xvfb``; ``setup.sh --dev`` installs it) and a JACK dummy server of
its own, opens the window on the bundled demo song (else ``--song``, else a generated song) and
model (else ``--model``, else the identity), lets it play ``--settle`` seconds, then grabs the X
screen (what the X server really shows, not a widget render) twice, one second apart:
``window-1.png`` and ``window-2.png``.

Thread contract: main thread only (Qt's event loop); the engine runs its threads as always.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

SCREEN = "1200x720x24"


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on the first free display number from :91."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("Xvfb is not installed: apt-get install xvfb (setup.sh --dev does).")
    for number in range(91, 120):
        if Path(f"/tmp/.X{number}-lock").exists():
            continue
        display = f":{number}"
        process = subprocess.Popen(
            [xvfb, display, "-screen", "0", SCREEN, "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return process, display
            if process.poll() is not None:
                break
            time.sleep(0.1)
        process.terminate()
    raise SystemExit("Xvfb did not start on any display from :91 to :119.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default="gui/screenshots", help="folder for the two PNGs")
    parser.add_argument("--model", help="a .onnx model (default: the bundled one)")
    parser.add_argument("--song", help="a song (default: the bundled demo)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of play before")
    parser.add_argument("--start", type=float, default=12.0, help="seek here first (seconds)")
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    xvfb, display = start_xvfb()
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # the real X11 path, as on a desktop
    from ..realtime.io.generated_song import generated_song
    from .soak import SAMPLE_RATE, start_jack_server, stop_jack_server

    server = start_jack_server(256)
    try:
        with tempfile.TemporaryDirectory() as folder:
            run(args, output, Path(folder), SAMPLE_RATE, generated_song)
    finally:
        stop_jack_server(server)
        xvfb.terminate()
        xvfb.wait(timeout=10)


GRID_WAIT_S = 90  # the longest the beat grid is waited for (a first analysis of the song)


def run(
    args: argparse.Namespace,
    output: Path,
    folder: Path,
    rate: int,
    song_maker: Callable[[float], np.ndarray],
) -> None:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from ..realtime.runtime.catalog import bundled_demo_song
    from .command import ENGINE_PROCESS
    from .session import BUNDLED, SessionSettings
    from .settings_store import ini_store, save_session_settings
    from .window import LivestemsWindow

    song: str | Path | None = args.song or bundled_demo_song()
    if song is None:
        song = folder / "generated.wav"
        soundfile.write(song, song_maker(30.0), rate)
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("livestems")
    store = ini_store(str(folder / "settings.ini"))
    save_session_settings(store, SessionSettings(model=args.model or BUNDLED))
    window = LivestemsWindow(store, song, open_midi=False, engine_process=ENGINE_PROCESS)
    window.move(0, 0)
    window.show()

    def wait(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(round(seconds * 1000), loop.quit)
        loop.exec()

    # The practice controls in use: a slower tempo, another key, two stems panned apart, the
    # bass's bleed gate at -40 dB, loop A-B snapped to bars; and the song's BPM and key, once
    # its beat grid is found.
    window.practice.tempo_slider.setValue(90)
    window.practice.transpose_spin.setValue(-2.0)
    window.practice.snap_button.setChecked(True)
    if len(window.strips) >= 3:
        window.strips[0].pan_knob.set_pan(-0.3)
        window.strips[2].pan_knob.set_pan(0.3)
        window.strips[2].set_gate(-40.0)
    for _ in range(GRID_WAIT_S * 4):
        if window.grid is not None:
            break
        wait(0.25)
    window.seek(args.start)
    wait(args.settle)
    screen = QGuiApplication.primaryScreen()
    for index in (1, 2):
        path = output / f"window-{index}.png"
        screen.grabWindow(0).copy(window.frameGeometry()).save(str(path))
        position = window.transport.time_label.text()
        print(f"{path}: {path.stat().st_size / 1000:.0f} kB at {position}")
        if index == 1:
            wait(1.0)
    print(f"song: {song}; model: {window.session.model_name}; {window.status_label.text()}")
    if window.message.isVisible():
        print(f"message shown: {window.message.text()}")
    window.shutdown()


if __name__ == "__main__":
    main()
