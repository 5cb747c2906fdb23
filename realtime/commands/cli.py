"""The ``livestems`` command line.

Thread contract: runs on the main thread only; it parses arguments and hands over to one
subcommand, which may start the engine's threads itself.

Subcommands are plug-ins: each package registers its own in the ``livestems.commands``
entry-point group (pyproject.toml), as ``Command`` objects. That keeps this module free of any
import of ``models`` or ``export`` (which need torch): a command's module is imported only when
that command runs, or when its ``--help`` is asked for. The commands the product plans are
listed here with their one-line help, so that ``livestems --help`` shows the whole surface and a
command that is not built yet says so instead of vanishing.

Exit status: 0 on success, 1 for a ``UserError`` (its one sentence is printed, no traceback),
2 for a usage error or a command that is not built yet, 130 on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys


def _exit_quietly(number: int, frame: object) -> None:
    os._exit(130)


# Ctrl-C while the console script starts (its imports take a moment on a loaded machine) ends
# it at once and quietly; main() hands Ctrl-C back as KeyboardInterrupt once the command runs.
# Only for the ``livestems`` script: a program that imports this module keeps its own handler.
if (
    os.path.basename(sys.argv[0]) == "livestems"
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
):
    signal.signal(signal.SIGINT, _exit_quietly)

import argparse  # noqa: E402
import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from ..errors import UserError  # noqa: E402
from .command import Command, load_command, registered_commands, version  # noqa: E402

# name -> one-line help, in the order --help shows them.
PLANNED_COMMANDS: dict[str, str] = {
    "gui": "open the window: a fader, mute, solo, meter and spectrogram per stem",
    "play": "play a file through the separator, with keyboard control in the terminal",
    "live": "separate an input device live, to an output device",
    "separate": "write one file per stem for each song given",
    "practice": "render a practice track: stems muted or soloed, at another tempo or key",
    "bench": "measure latency and compute of models, presets, providers; --list: all benchmarks",
    "train": "train a model (needs the 'train' extra)",
    "export": "export a trained checkpoint to an ONNX model file (needs the 'train' extra)",
    "eval": "score a model on MUSDB18 through the streaming path (needs the 'train' extra)",
    "devices": "list audio devices and onnxruntime execution providers",
    "models": "list the bundled and user models, or show one model's card",
    "serve": "serve the separation API and a web page with a player for the stems",
}


def _build_parser(selected: str | None) -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The parser; only the ``selected`` subcommand's module is imported (``None``: none)."""
    parser = argparse.ArgumentParser(
        prog="livestems",
        description=(
            "Real-time music source separation: vocals, drums, bass and other, while the song "
            "plays. With no command, plays the bundled demo through the bundled model."
        ),
    )
    parser.add_argument("--version", action="version", version=f"livestems {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered = registered_commands()
    loaded: dict[str, Command] = {}
    names = list(PLANNED_COMMANDS) + sorted(set(registered) - set(PLANNED_COMMANDS))
    for name in names:
        entry = registered.get(name)
        if entry is None:
            subparsers.add_parser(name, help=f"{PLANNED_COMMANDS[name]} (not built yet)")
            continue
        if name == selected:
            loaded[name] = load_command(entry)
            help_text = loaded[name].help
        else:
            help_text = PLANNED_COMMANDS.get(name, f"(from {entry.value})")
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if name in loaded:
            loaded[name].configure(subparser)
    return parser, loaded


def _selected_command(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option: the subcommand's name, if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livestems`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Importing a command's module (numpy, onnxruntime) takes a second, and a library may turn
    # a KeyboardInterrupt during its import into an error of its own: Ctrl-C then ends the
    # process at once, quietly (nothing has started that needs undoing). The command itself
    # gets Ctrl-C as KeyboardInterrupt again, so that it can clean up.
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous = signal.signal(signal.SIGINT, _exit_quietly)
    try:
        parser, loaded = _build_parser(_selected_command(args_list))
    finally:
        if in_main_thread:
            quiet = previous is _exit_quietly
            signal.signal(signal.SIGINT, signal.default_int_handler if quiet else previous)
    args = parser.parse_args(args_list)
    try:
        if args.command is None:
            from .main_job import run_main_job

            return run_main_job()
        command = loaded.get(args.command)
        if command is None:
            print(
                f"livestems {args.command} is not built yet in livestems {version()}.",
                file=sys.stderr,
            )
            return 2
        return command.run(args)
    except UserError as error:
        print(f"livestems: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
