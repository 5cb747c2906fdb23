"""Data sets of multitrack songs: MUSDB18, MUSDB18-HQ, any folder of stems, synthetic songs.

Every source yields ``Track`` objects: a name, the four stems as float32 ``(n_samples, 2)``
arrays of one length, and the mixture. MUSDB's own mixture is kept (it is the AAC-coded sum,
which is what a user's file sounds like); elsewhere the mixture is the sum of the stems.

Decoding a ``.stem.mp4`` takes ffmpeg five runs, so decoded tracks are cached as float16 ``.npy``
files (half the memory, -96 dB quantisation: far below what a separator resolves) under the
user's cache folder, keyed by path, size and modification time, so that an edited file is decoded
again. The cache is an optimisation only: deleting it loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...realtime.dsp.presets import SAMPLE_RATE
from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ...realtime.io.audio_file import AudioFileError, load_audio, load_musdb_stems

STEMS: tuple[str, ...] = ("vocals", "drums", "bass", "other")

# MUSDB18's validation split (the ``musdb`` package's configs/mus.yaml): held out of training.
MUSDB_VALID_TRACKS: tuple[str, ...] = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
SPLITS = ("train", "valid", "test")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class DatasetError(UserError, ValueError):
    """A data set that cannot be read as asked; the message is one sentence."""


@dataclass(frozen=True)
class Track:
    """One song.

    Attributes:
        name: the song's name (MUSDB: "Artist - Title").
        stems: ``{stem: [shape=(n_samples, 2)] float32}`` in ``STEMS`` order, one length.
        mixture: [shape=(n_samples, 2)] float32.
    """

    name: str
    stems: dict[str, np.ndarray]
    mixture: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def n_samples(self) -> int:
        return int(self.mixture.shape[0])

    def stack(self) -> np.ndarray:
        """[shape=(n_stems, n_samples, 2)] float32, in ``STEMS`` order."""
        return np.stack([self.stems[name] for name in self.stems])


@dataclass(frozen=True)
class TrackRef:
    """Where a track lies, and how to load it (loading is deferred: a split lists first).

    Attributes:
        name: the song's name.
        load: decodes the track (from the float16 decode cache where there is one: training
            holds many songs).
        load_exact: decodes the track in float32 whatever the cache holds, for scoring
            (``None``: ``load`` already does). Scores of references read at float16 moved
            with the cache (a tonal song's vocals SIR: -10.97 dB decoded, 4.89 dB cached).
    """

    name: str
    path: Path
    load: Callable[[], Track] = field(compare=False, repr=False)
    load_exact: Callable[[], Track] | None = field(default=None, compare=False, repr=False)

    def load_for_scoring(self) -> Track:
        return (self.load_exact or self.load)()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("LIVESTEMS_CACHE", str(Path(base) / "livestems")))


def _cache_key(path: Path) -> str:
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cached(
    path: Path, decode: Callable[[], dict[str, np.ndarray]], exact: bool = False
) -> dict[str, np.ndarray]:
    """``decode()``'s arrays, from the cache when this exact file was decoded before: float16
    values (half the memory of a training set), or with ``exact`` float32 ones, cached apart."""
    if exact:
        return _cached_exact(path, decode)
    entry = cache_dir() / "tracks" / f"{_cache_key(path)}.npz"
    if entry.exists():
        try:
            with np.load(entry) as stored:
                return {name: stored[name].astype(np.float32) for name in stored.files}
        except (OSError, ValueError, EOFError):
            entry.unlink(missing_ok=True)  # a damaged cache entry is decoded again
    # float16, as the cache holds it, the first time too: a run that decoded a file and its
    # resumption, which reads the cache, must see the same numbers
    halves: dict[str, Any] = {k: v.astype(np.float16) for k, v in decode().items()}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(entry) as handle:
            np.savez(handle, **halves)
    except OSError:
        pass  # a read-only home still trains, only slower
    return {name: half.astype(np.float32) for name, half in halves.items()}


def _cached_exact(path: Path, decode: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    entry = cache_dir() / "tracks" / f"{_cache_key(path)}-float32.npz"
    if entry.exists():
        try:
            with np.load(entry) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, EOFError):
            entry.unlink(missing_ok=True)
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in decode().items()}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(entry) as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
    except OSError:
        pass
    return arrays


def _musdb_stem_file(path: Path, name: str, exact: bool = False) -> Track:
    arrays = _cached(path, lambda: load_musdb_stems(path, SAMPLE_RATE), exact)
    return Track(name, {s: arrays[s] for s in STEMS}, arrays["mixture"])


def _stem_folder(folder: Path, name: str, stems: Sequence[str], has_mixture: bool) -> Track:
    # wav and flac decode fast: no cache
    names = [*stems, "mixture"] if has_mixture else list(stems)
    decoded = {name: load_audio(_stem_file(folder, name), SAMPLE_RATE) for name in names}
    n_samples = min(a.shape[0] for a in decoded.values())
    arrays = {k: np.ascontiguousarray(v[:n_samples]) for k, v in decoded.items()}
    stem_arrays = {s: arrays[s] for s in stems}
    if "mixture" in arrays:
        return Track(name, stem_arrays, arrays["mixture"])
    mixture = np.asarray(np.sum(list(stem_arrays.values()), axis=0), dtype=np.float32)
    return Track(name, stem_arrays, mixture)


def _stem_file(folder: Path, stem: str) -> Path:
    for suffix in AUDIO_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    raise DatasetError(
        f"{folder} has no {stem} file ({stem}.wav, {stem}.flac, ...): every song folder needs "
        f"one file per stem ({', '.join(STEMS)})."
    )


def _split_filter(names: Sequence[str], split: str) -> list[str]:
    valid = set(MUSDB_VALID_TRACKS)
    if split == "valid":
        return [n for n in names if n in valid]
    if split == "train":
        return [n for n in names if n not in valid]
    return list(names)


def musdb_tracks(root: str | os.PathLike[str], split: str = "train") -> list[TrackRef]:
    """The tracks of one MUSDB18 split, as ``.stem.mp4`` (MUSDB18) or folders of wav (HQ).

    Args:
        root: the folder that holds ``train/`` (and ``test/``).
        split: ``train`` (MUSDB's train split less its validation tracks), ``valid`` (the 14
            validation tracks, which live in ``train/``) or ``test``.
    """
    if split not in SPLITS:
        raise DatasetError(f"Unknown split {split!r}: choose one of {', '.join(SPLITS)}.")
    root = Path(root)
    subset = root / ("test" if split == "test" else "train")
    if not subset.is_dir():
        raise DatasetError(
            f"{root} is not a MUSDB18 folder: it has no {subset.name}/ folder "
            "(point --musdb at the folder that holds train/)."
        )
    stem_files = {p.name[: -len(".stem.mp4")]: p for p in subset.glob("*.stem.mp4")}
    # a song folder holds its stems, and a mixture file or not (then the stems' sum mixes it:
    # ``pack`` leaves the training songs' out, which nothing reads)
    folders = {
        p.name: p
        for p in subset.iterdir()
        if p.is_dir() and (any(p.glob("mixture.*")) or any(p.glob(f"{STEMS[0]}.*")))
    }
    refs: list[TrackRef] = []
    for name in _split_filter(sorted(stem_files), split):
        path = stem_files[name]
        load = functools.partial(_musdb_stem_file, path, name)
        exact = functools.partial(_musdb_stem_file, path, name, exact=True)
        refs.append(TrackRef(name, path, load, exact))
    for name in _split_filter(sorted(folders), split):
        if name in stem_files:
            continue
        folder = folders[name]
        has_mixture = any(folder.glob("mixture.*"))
        load = functools.partial(_stem_folder, folder, name, STEMS, has_mixture)
        refs.append(TrackRef(name, folder, load))
    if not refs:
        raise DatasetError(
            f"{subset} holds no MUSDB18 tracks for the {split} split "
            "(neither *.stem.mp4 files nor song folders of stems)."
        )
    return refs


def stem_folder_tracks(
    root: str | os.PathLike[str], stems: Sequence[str] = STEMS
) -> list[TrackRef]:
    """Any folder of songs, one sub-folder per song holding one audio file per stem.

    A ``mixture`` file is used when there is one; otherwise the mixture is the stems' sum.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder of songs.")
    refs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        has_mixture = any(folder.glob("mixture.*"))
        load = functools.partial(_stem_folder, folder, folder.name, tuple(stems), has_mixture)
        refs.append(TrackRef(folder.name, folder, load))
    if not refs:
        raise DatasetError(f"{root} has no song folders (one sub-folder per song).")
    return refs


def load_tracks(refs: Sequence[TrackRef], skip_broken: bool = False) -> list[Track]:
    """Decode every track; a file that cannot be read names itself and the reason.

    Args:
        skip_broken: a track that cannot be read (a corrupt or missing stem file) is left out
            with one line on standard error naming it and why, and the others are loaded; it
            is still an error when none can be read.
    """
    tracks = []
    for ref in refs:
        try:
            tracks.append(ref.load())
        except (AudioFileError, DatasetError) as err:
            error = err if isinstance(err, DatasetError) else None
            message = str(error) if error else f"Track {ref.name!r} cannot be read: {err}"
            if not skip_broken:
                raise DatasetError(message) from err
            print(f"livestems: skipped {ref.path}: {message}", file=sys.stderr)
    if refs and not tracks:
        raise DatasetError(f"None of the {len(refs)} songs could be read (each is named above).")
    return tracks
