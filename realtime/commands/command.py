"""What a ``livestems`` subcommand is, and where the command line finds them: the
``livestems.commands`` entry-point group (pyproject.toml).

Thread contract: main thread only.

Each package registers its commands in the group, as ``Command`` objects, so the command line
imports no package by name (``models`` and ``export`` need torch): a command's module is
imported only when that command runs or its ``--help`` is asked for. Only command modules import
this one; library modules never do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

ENTRY_POINT_GROUP = "livestems.commands"


@dataclass(frozen=True)
class Command:
    """One subcommand, as registered in the ``livestems.commands`` entry-point group.

    Attributes:
        help: the one-line help shown by ``livestems --help``.
        configure: adds the subcommand's arguments to its parser.
        run: does the work and returns the exit status.
    """

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def version() -> str:
    try:
        return metadata.version("livestems")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def registered_commands() -> dict[str, metadata.EntryPoint]:
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_command(entry: metadata.EntryPoint) -> Command:
    command = entry.load()
    if not isinstance(command, Command):
        raise TypeError(f"entry point {entry.value} is not a livestems Command")
    return command
