"""What a user types on the command line, checked before any work: numbers and output paths.

Thread contract: main thread only, while a command parses its arguments or before it starts
its work; nothing here runs near the audio path.

Numbers are argparse ``type=`` functions: a number out of range (a block size of 0, a duration
of ``nan``, 100000 threads) ends in argparse's own usage error, one line naming the option, exit
status 2, before a model is loaded. Output paths are checked by writing to them once, so that an
hour of work never ends in "cannot write" (``writable_folder``, ``writable_file``).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import UserError

__all__ = [
    "add_postfilter_option",
    "add_provider_option",
    "MAX_BLOCK_SIZE",
    "MAX_THREADS",
    "block_size",
    "seconds",
    "threads",
    "whole_number",
    "writable_file",
    "writable_folder",
]

#: The largest device block a command takes (PortAudio and JACK go to 8192).
MAX_BLOCK_SIZE = 16384
#: More onnxruntime threads than this only wait for each other (100000 hung the machine).
MAX_THREADS = max(64, 4 * (os.cpu_count() or 1))


def whole_number(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {low} to {high}")
        return value

    parse.__name__ = what  # argparse names the type in its message
    return parse


def seconds(*, allow_zero: bool = False, high: float = 24 * 3600.0) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds above 0 (or from 0) up to a day."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        low_ok = value >= 0 if allow_zero else value > 0
        if not (math.isfinite(value) and low_ok and value <= high):
            low = "from 0" if allow_zero else "above 0"
            raise argparse.ArgumentTypeError(f"{text} is out of range: give seconds {low}")
        return value

    return parse


#: ``--block-size``: frames per device block.
block_size = whole_number(1, MAX_BLOCK_SIZE, "a number of frames")
#: ``--threads``: onnxruntime CPU threads.
threads = whole_number(1, MAX_THREADS, "a number of threads")


def writable_folder(path: str | os.PathLike[str], option: str = "-o") -> Path:
    """Make the folder ``path`` (with its parents) and write a file into it once.

    Returns:
        the folder.

    Raises:
        UserError: it is a file, or cannot be made or written (one sentence).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f'{option} "{folder}" is a file, not a folder; choose another {option}.')
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(
            f'Cannot write into the folder "{folder}" ({error.strerror or error}); '
            f"choose another {option}."
        ) from error
    return folder


def writable_file(path: str | os.PathLike[str], option: str = "-o") -> Path:
    """Check that a file can be written at ``path`` (its folder is made if missing; nothing is
    left behind but that folder).

    Raises:
        UserError: ``path`` is a folder, or its folder cannot be made or written (one sentence).
    """
    target = Path(path)
    if target.is_dir():
        raise UserError(f'{option} "{target}" is a folder; give a file name inside it.')
    writable_folder(target.parent, option)
    if target.exists() and not os.access(target, os.W_OK):
        raise UserError(f'Cannot overwrite "{target}": it is read-only; choose another {option}.')
    return target


def add_postfilter_option(parser: argparse.ArgumentParser) -> None:
    """``--wiener``: the single-frame multichannel Wiener post-filter on the masks (no
    look-ahead, so no latency), the same option in every command that separates."""
    parser.add_argument(
        "--wiener",
        action="store_true",
        help="sharpen the masks with the single-frame Wiener post-filter (no added latency)",
    )


def add_provider_option(
    parser: argparse.ArgumentParser, default: str = "auto", *, several: bool = False
) -> None:
    """``--provider``: the onnxruntime execution provider, the same option in every command and
    benchmark (``auto``: CUDA when onnxruntime has it, else the CPU). ``several``: one or more
    (``livestems bench`` measures each; ``args.provider`` is then a list, or ``None``)."""
    from .runtime.onnx_model import PROVIDER_CHOICES

    choices = ", ".join(PROVIDER_CHOICES)
    if several:
        parser.add_argument(
            "--provider",
            nargs="+",
            choices=PROVIDER_CHOICES,
            help=f"onnxruntime execution providers to measure: {choices} "
            "(default: the CPU, and CUDA when there is one)",
        )
        return
    parser.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default=default,
        help=f"onnxruntime execution provider: {choices} (default: {default}"
        f"{', CUDA when there is one' if default == 'auto' else ''})",
    )


def add_practice_options(parser: argparse.ArgumentParser) -> None:
    """``--tempo``, ``--transpose``, ``--count-in``: file playback as a practice tool
    (``realtime/practice``); the values are checked when applied, in one sentence."""
    parser.add_argument(
        "--tempo", type=float, default=1.0, help="0.5-1.5 of the song's, pitch kept"
    )
    parser.add_argument(
        "--transpose", type=float, default=0.0, help="semitones, -12..+12 (cents: 0.01), tempo kept"
    )
    parser.add_argument(
        "--count-in", action="store_true", help="a bar of clicks before play and each loop"
    )
