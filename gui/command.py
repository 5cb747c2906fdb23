"""``livestems gui [FILE]``: the window on a song (default: the bundled demo), and the test the
main job uses to decide whether there is a display to open it on.

Thread contract: main thread only; it runs Qt's event loop until the window closes (the engine
runs its own threads under the window, see ``window.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import traceback
from types import TracebackType

from ..realtime.commands.command import Command
from ..realtime.errors import UserError

NO_DISPLAY = (
    "There is no display (neither DISPLAY nor WAYLAND_DISPLAY is set): run livestems gui in a "
    "desktop session, or 'livestems play FILE' in a terminal."
)
# Where the engine runs by default: decided by gui/soak.py's measurement (README, "The window").
ENGINE_PROCESS = True
_PROBE = "from PySide6.QtWidgets import QApplication; QApplication([])"


def has_display_variable() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def qt_can_start(timeout: float = 20.0) -> str | None:
    """``None`` when Qt opens its platform here, else why not (its last line of complaint).

    Probed in a child process because Qt ends the whole process (qFatal) when its platform
    plug-in cannot start, which no exception handler here could catch."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return f"Qt did not start within {timeout:.0f} s"
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def display_available() -> bool:
    """A display is set and Qt can open a window on it (what the main job asks)."""
    return has_display_variable() and qt_can_start() is None


def run_window(song: str | None = None, engine_process: bool = ENGINE_PROCESS) -> int:
    """Open the window (on ``song``, else the bundled demo) and run until it closes;
    ``engine_process``: the engine in a process of its own (see ``engine_process.py``)."""
    if not has_display_variable() and not os.environ.get("QT_QPA_PLATFORM"):
        raise UserError(NO_DISPLAY)
    problem = qt_can_start() if has_display_variable() else None
    if problem is not None:
        raise UserError(f"Qt cannot open a window on this display ({problem}).")
    from PySide6.QtWidgets import QApplication

    from .settings_store import default_store
    from .window import LivestemsWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("livestems")
    window = LivestemsWindow(default_store(), song, engine_process=engine_process)

    def report_internal_error(
        kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        # A bug in livestems: its traceback goes to the terminal, the window says so and stays.
        traceback.print_exception(kind, error, trace)
        window.show_message(f"Internal error ({kind.__name__}: {error}); details on the terminal.")

    sys.excepthook = report_internal_error
    # Ctrl-C in the terminal closes the window (the handler runs at the timer's next tick).
    signal.signal(signal.SIGINT, lambda _number, _frame: window.close())
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()
        sys.excepthook = sys.__excepthook__


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="a song to open (default: the bundled demo)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--engine-process", dest="engine_process", action="store_true", default=ENGINE_PROCESS,
        help="run the engine in a process of its own" + (" (default)" if ENGINE_PROCESS else ""),
    )  # fmt: skip
    where.add_argument(
        "--in-process", dest="engine_process", action="store_false",
        help="run the engine in the window's process" + ("" if ENGINE_PROCESS else " (default)"),
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    return run_window(args.file, getattr(args, "engine_process", ENGINE_PROCESS))


COMMAND = Command(
    help="open the window: a fader, mute, solo, meter and spectrogram per stem",
    configure=_configure,
    run=_run,
)
