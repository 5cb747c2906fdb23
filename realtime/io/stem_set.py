"""Output folders as sets: a song's stems appear together, or not at all.

Thread contract: main thread (or a service worker's own thread) only. Everything here blocks on
the disk; nothing here runs in, or next to, an audio callback.

``livestems separate`` writes one folder per song, ``OUT/<song>/<stem>.wav``. Written file by
file into that folder, a run killed (``kill -9``, Ctrl-C, a full disk) after the first stem leaves
a folder of complete-looking files from two runs, maybe from two models. So a song's stems are
written into a hidden temporary folder beside the target, flushed to disk, and swapped in by one
rename: the folder holds one run's whole set, or the previous one.

- **Swap.** Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two folders atomically; the old set,
  now under the temporary name, is then removed. Where the file system cannot exchange, the old
  folder is renamed aside first (``-old-``) and the new one into place; a kill between those two
  renames leaves no folder but the old set aside, and the next run puts it back.
- **Stale temporaries.** Temporary names carry the writer's process id
  (``.<song>.livestems-new-<pid>-<random>``), so the next run into the same folder removes those
  whose writer is gone and leaves those of a run still going.
- **Nothing else is replaced.** A folder is replaced only when it holds what a run writes (audio
  files and our temporaries); a folder with anything else in it, or one that holds an input of
  the run, is refused before any work.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

from ..errors import UserError

__all__ = [
    "STEM_SUFFIXES",
    "check_inputs_survive",
    "check_replaceable",
    "clean_stale",
    "stem_set",
]

#: What a set folder may hold and still be replaced: stem files (and the per-file temporaries
#: that livestems before sets left behind, ``.vocals.wav.XXXX.tmp``).
STEM_SUFFIXES: tuple[str, ...] = (".wav", ".flac")
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.livestems-(?P<kind>new|old)-(?P<pid>\d+)-[0-9a-f]+$")
_OLD_FILE_TEMPORARY = re.compile(r"^\..+\.(wav|flac)\..+\.tmp$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _temporary(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.livestems-{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    # A process killed whose parent died too can stay a zombie until init reaps it (never, in
    # a container whose PID 1 does not): it answers signal 0 but writes nothing any more.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux), or gone since: signal 0 said alive
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def clean_stale(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary folders that runs into ``out_dir`` left behind when they died.

    An incomplete new set (``-new-``) is removed: the folder it was meant for still holds the
    previous set whole. A previous set renamed aside (``-old-``) goes back into place when its
    folder is missing, and is removed otherwise. Temporaries of a run still going stay.

    Returns:
        the temporaries removed or put back.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    cleaned = []
    for entry in sorted(out_dir.iterdir()):
        match = _TEMPORARY.match(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        target = out_dir / match["name"]
        if match["kind"] == "old" and not target.exists():
            os.rename(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        cleaned.append(entry)
    return cleaned


def check_replaceable(target: Path) -> None:
    """Refuse (one sentence) to replace a folder that holds anything a run does not write."""
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise UserError(
            f'The output "{target}" exists and is not a folder of stems; move it or choose '
            "another -o."
        )
    foreign = sorted(
        entry.name
        for entry in target.iterdir()
        if not (
            (entry.is_file() and entry.suffix.lower() in STEM_SUFFIXES)
            or _OLD_FILE_TEMPORARY.match(entry.name)
        )
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(
            f'The output folder "{target}" holds files that are not stems ({shown}), which '
            "replacing it would lose; move them or choose another -o."
        )


def check_inputs_survive(targets: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Refuse (one sentence) when replacing a target folder would delete or overwrite an input."""
    resolved = [(path, path.resolve()) for path in inputs]
    for target in targets:
        folder = target.resolve()
        for path, real in resolved:
            if real == folder or folder in real.parents:
                raise UserError(
                    f'The output folder "{target}" holds the input "{path}", which writing '
                    "its stems would overwrite; choose another -o."
                )


@cache
def _renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        function.argtypes += [ctypes.c_uint]
        function.restype = ctypes.c_int
    return function


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; ``False`` where the system or file system cannot."""
    function = _renameat2()
    if function is None:
        return False
    result = function(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(first))


def _sync_folder(folder: Path) -> None:
    # A rename is durable only once its folder is: without this, a power cut can undo it.
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _swap_in(fresh: Path, target: Path) -> None:
    if not target.exists():
        os.rename(fresh, target)
    elif _exchange(fresh, target):
        shutil.rmtree(fresh, ignore_errors=True)  # ``fresh`` now holds the old set
    else:
        aside = _temporary(target, "old")
        os.rename(target, aside)
        os.rename(fresh, target)
        shutil.rmtree(aside, ignore_errors=True)
    _sync_folder(target.parent)


@contextlib.contextmanager
def stem_set(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends without an
    exception, every file in it is flushed to disk and the folder replaces ``target`` in one
    rename. On any exception (Ctrl-C too) the temporary folder is removed and ``target`` is
    untouched.

    Raises:
        OSError: the folder beside ``target`` cannot be written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = _temporary(target, "new")
    fresh.mkdir()
    try:
        yield fresh
        for entry in fresh.iterdir():
            handle = os.open(entry, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
        _sync_folder(fresh)
        _swap_in(fresh, target)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
