"""Audio files in and out: decode any file the project meets into float32 stereo at one rate.

Everything that reads audio from disk goes through here: the player's file source, offline
rendering (``livestems separate``), data sets and evaluation. Files that libsndfile reads
(wav, flac, ogg, mp3, aiff, ...) are decoded by ``soundfile``; MUSDB's ``.stem.mp4`` and any
other container (m4a, mp4, aac, opus, ...) by an ``ffmpeg`` subprocess that pipes raw float32
PCM. The result always follows the convention of ``realtime/``: samples first, channels second,
``[shape=(n_samples, 2)]``, float32, C-contiguous, at the sample rate the caller asked for.

Errors a user can cause (a missing, empty, damaged or non-audio file, too many channels, NaN
samples, no ffmpeg) end in one :class:`AudioFileError` whose message is one sentence naming the
file; the library's own exception is kept as ``__cause__``.

Thread contract: these functions are called from the main or worker thread, never from the
audio callback. They block on disk and on subprocesses, allocate freely and may take seconds
for a long file; nothing here holds state between calls, so any thread may call them at once.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..dsp.presets import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ..errors import UserError
from .atomic_file import atomic_path

__all__ = [
    "MUSDB_STREAMS",
    "AudioFileError",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "describe_write_failure",
    "load_musdb_stems",
    "open_stem_writer",
    "read_blocks",
    "reads_in_blocks",
    "save_audio_atomic",
]

#: The audio streams of a MUSDB18 ``.stem.mp4`` file, in stream order.
MUSDB_STREAMS: tuple[str, ...] = ("mixture", "drums", "bass", "other", "vocals")

# Suffixes that libsndfile decodes itself; everything else goes to ffmpeg. Routing by suffix
# (rather than trying libsndfile first) keeps the error message about the decoder that matters.
_SOUNDFILE_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
    }
)
# libsndfile codes that mean "this is not something I can parse" rather than "damaged":
# 1 is SF_ERR_UNRECOGNISED_FORMAT; 7 is what the mp3 reader returns when it finds no frame.
_SF_NOT_AUDIO_CODES = frozenset({1, 7})
_SAVE_SUBTYPES = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS")}
#: Sample rates a file may claim: telephone speech to the highest studio rate. A header outside
#: them is damaged (1 Hz made the resampler ask for terabytes; 2**31-1 Hz gave wrong stems).


class AudioFileError(UserError, ValueError):
    """A file that cannot be used as audio; the message is one sentence naming the file."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (no full decode).

    ``n_samples`` is exact for files libsndfile reads; for files read through ffmpeg it is the
    container's stated duration times the rate, which can differ from the decoded length by a
    codec frame or two (AAC priming). ``n_streams`` counts audio streams (5 in a MUSDB stem
    file); the other fields describe stream ``stem_index``.
    """

    sample_rate: int
    n_channels: int
    n_samples: int
    duration_s: float
    format: str
    n_streams: int = 1


def _fail(path: str | os.PathLike[str], what: str) -> AudioFileError:
    return AudioFileError(f'Cannot load "{os.fspath(path)}": {what}.')


def _check_file(path: Path) -> None:
    """Turn the file-system failures into one sentence before any decoder sees the file."""
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "it is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise _fail(path, "it is empty (0 bytes)")
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise _fail(path, f"it cannot be opened ({err.strerror or err})") from err


def _check_channels(path: Path, n_channels: int) -> None:
    if n_channels > 2:
        raise _fail(
            path,
            f"it has {n_channels} channels and livestems takes mono or stereo "
            f"only; downmix it to stereo first (ffmpeg -i IN -ac 2 OUT.wav)",
        )


def _check_rate(path: Path, rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise _fail(
            path,
            f"its header claims a sample rate of {rate} Hz, outside the {MIN_SAMPLE_RATE} Hz to "
            f"{MAX_SAMPLE_RATE} Hz that audio files have, so it is damaged",
        )


# libsndfile's log for a wav whose data chunk is shorter than its header says:
# "data : 529200 (should be 264578)". Sizes 0 and 0xFFFFFFFF mean "unknown" (a streamed wav).
_WAV_DATA_SHORT = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF)


def _check_complete(path: Path, file: sf.SoundFile, n_read: int) -> None:
    """Refuse a file cut short (a download or copy that stopped), saying how much was read:
    separated at its shorter length with no word, a truncated song looks like a whole one.

    libsndfile reads what there is and says so only in its log: a wav's data chunk shorter than
    its header, an Ogg stream without its end-of-stream page, or (mp3 with a Xing header) fewer
    frames than the header counts.
    """
    log = file.extra_info
    read_s = n_read / file.samplerate
    short = _WAV_DATA_SHORT.search(log)
    if short is not None and int(short[1]) not in _UNKNOWN_DATA_SIZES:
        declared, present = int(short[1]), int(short[2])
        if present < declared:
            raise _fail(
                path,
                f"it is truncated: its header promises {read_s * declared / max(present, 1):.2f} s "
                f"but only {read_s:.2f} s ({present / declared:.0%}) could be read",
            )
    if "lacks an end-of-stream" in log:
        raise _fail(
            path,
            f"it is truncated (its last Ogg page has no end-of-stream mark): only {read_s:.2f} s "
            "could be read",
        )
    if 0 < n_read < file.frames:
        raise _fail(
            path,
            f"it is truncated: its header promises {file.frames / file.samplerate:.2f} s but "
            f"only {read_s:.2f} s ({n_read / file.frames:.0%}) could be read",
        )


@cache
def _libsndfile_reads_mp3() -> bool:
    return "MP3" in sf.available_formats()


def _uses_soundfile(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in _SOUNDFILE_SUFFIXES or (suffix == ".mp3" and _libsndfile_reads_mp3())


def _sf_error(path: Path, err: sf.LibsndfileError) -> AudioFileError:
    if err.code in _SF_NOT_AUDIO_CODES:
        return _fail(
            path,
            f"it is not audio that libsndfile can read (not a valid "
            f"{path.suffix.lstrip('.').upper() or 'audio'} file)",
        )
    # libsndfile's texts end in "." and sometimes hold two sentences; keep the message one.
    detail = err.error_string.strip().rstrip(".").replace(". ", ": ")
    detail = re.sub(r"^Error\s*:\s*", "", detail)  # the FLAC reader's texts start so
    return _fail(path, f"it is damaged or truncated (libsndfile: {detail})")


# ---------------------------------------------------------------------------------- ffmpeg


@dataclass(frozen=True)
class _Probe:
    format: str
    streams: tuple[tuple[int, int, float], ...]  # (sample_rate, n_channels, duration_s)


def _summary(stderr: bytes, path: Path) -> str:
    """ffmpeg's last two lines, without the "[demuxer @ 0x...]" tags and the file name it
    repeats: the cause is usually the line before the generic last one. A summary, not a dump.
    """
    lines = []
    for raw in stderr.decode("utf-8", "replace").splitlines()[-2:]:
        line = re.sub(r"^\[[^]]* @ 0x[0-9a-f]+\]\s*", "", raw.strip())
        line = line.replace(f"{path}: ", "").replace(str(path), "the file").rstrip(".")
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines)[:200] or "no message"


def _need_ffmpeg(path: Path) -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise _fail(
            path,
            f"reading {''.join(path.suffixes) or 'this kind of file'} needs "
            f"ffmpeg; install it with apt-get install ffmpeg",
        )


def _ffprobe(path: Path) -> _Probe:
    _need_ffmpeg(path)
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "a",
        "-show_entries",
        "stream=sample_rate,channels,duration:format=format_name,duration",
        "-of",
        "json",
        os.fspath(path),
    ]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0:
        raise _fail(path, f"ffprobe cannot read it as audio ({_summary(result.stderr, path)})")
    try:
        data = json.loads(result.stdout)
        fmt = data.get("format", {})
        streams = tuple(
            (
                int(s["sample_rate"]),
                int(s["channels"]),
                float(s.get("duration", fmt.get("duration", 0.0))),
            )
            for s in data.get("streams", [])
        )
    except (ValueError, KeyError, TypeError) as err:
        raise _fail(path, "ffprobe gave a description of it that makes no sense") from err
    if not streams:
        raise _fail(path, "it has no audio stream")
    return _Probe(format=str(fmt.get("format_name", "unknown")), streams=streams)


def _check_stream_index(path: Path, stem_index: int, n_streams: int) -> None:
    if not 0 <= stem_index < n_streams:
        have = (
            "1 audio stream (index 0)"
            if n_streams == 1
            else (f"{n_streams} audio streams (0 to {n_streams - 1})")
        )
        raise _fail(path, f"audio stream {stem_index} was asked for but it has {have}")


def _ffmpeg_decode(path: Path, probe: _Probe, stem_index: int) -> tuple[np.ndarray, int]:
    """Decode one audio stream at its native rate and channel count.

    Returns ``(audio [shape=(n_samples, n_channels)], sample_rate)``.
    """
    _check_stream_index(path, stem_index, len(probe.streams))
    rate, n_channels, _ = probe.streams[stem_index]
    _check_rate(path, rate)
    _check_channels(path, n_channels)
    # -ac/-ar equal to the native values change nothing but pin the layout we reshape with,
    # should the decoder disagree with the probe (HE-AAC parametric stereo does).
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        os.fspath(path),
        "-map",
        f"0:a:{stem_index}",
        "-ac",
        str(n_channels),
        "-ar",
        str(rate),
        "-f",
        "f32le",
        "-c:a",
        "pcm_f32le",
        "-",
    ]
    try:
        result = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as err:
        raise _fail(path, f"ffmpeg could not be started ({err.strerror or err})") from err
    if result.returncode != 0:
        raise _fail(path, f"ffmpeg cannot decode it ({_summary(result.stderr, path)})")
    n_whole = len(result.stdout) // (4 * n_channels)
    audio = np.frombuffer(result.stdout, dtype="<f4", count=n_whole * n_channels)
    return audio.reshape(n_whole, n_channels), rate


# ------------------------------------------------------------------------------ public API


def audio_info(path: str | os.PathLike[str], *, stem_index: int = 0) -> AudioInfo:
    """Read a file's rate, channels and length from its header, without decoding the audio.

    Raises :class:`AudioFileError` when the file is missing or not audio.
    """
    path = Path(path)
    _check_file(path)
    if _uses_soundfile(path):
        _check_stream_index(path, stem_index, 1)
        try:
            info = sf.info(os.fspath(path))
        except sf.LibsndfileError as err:
            raise _sf_error(path, err) from err
        _check_rate(path, int(info.samplerate))
        return AudioInfo(
            sample_rate=int(info.samplerate),
            n_channels=int(info.channels),
            n_samples=int(info.frames),
            duration_s=info.frames / info.samplerate,
            format=str(info.format),
        )
    probe = _ffprobe(path)
    _check_stream_index(path, stem_index, len(probe.streams))
    rate, n_channels, duration_s = probe.streams[stem_index]
    _check_rate(path, rate)
    return AudioInfo(
        sample_rate=rate,
        n_channels=n_channels,
        n_samples=round(duration_s * rate),
        duration_s=duration_s,
        format=probe.format,
        n_streams=len(probe.streams),
    )


def _to_stereo(path: Path, audio: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Validate native audio and bring it to ``[shape=(n_samples, 2)]`` float32 at the rate."""
    if audio.shape[0] == 0:
        raise _fail(path, "it holds no audio (0 samples)")
    _check_rate(path, rate)
    _check_channels(path, audio.shape[1])
    finite = np.isfinite(audio)
    if not finite.all():
        # Checked before resampling, which would smear one bad sample over its neighbours.
        n_bad = int(audio.size - np.count_nonzero(finite))
        first = int(np.argmin(finite.all(axis=1)))
        raise _fail(
            path,
            f"it holds {n_bad} NaN or infinite sample value(s), the first at "
            f"{first / rate:.3f} s (sample {first}); repair or re-export it",
        )
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)  # mono plays centred: the same signal both sides
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def load_audio(
    path: str | os.PathLike[str], sample_rate: int, *, stem_index: int = 0
) -> np.ndarray:
    """Decode a file to float32 stereo at ``sample_rate``.

    Mono is duplicated to both channels; other rates are resampled (soxr, HQ). ``stem_index``
    picks the audio stream of a multi-stream container (see :data:`MUSDB_STREAMS`).

    Returns ``[shape=(n_samples, 2)]`` float32, C-contiguous.
    Raises :class:`AudioFileError` for anything wrong with the file.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    path = Path(path)
    _check_file(path)
    if _uses_soundfile(path):
        _check_stream_index(path, stem_index, 1)
        try:
            with sf.SoundFile(os.fspath(path)) as file:
                _check_rate(path, int(file.samplerate))  # before a damaged header's decode
                audio, rate = file.read(dtype="float32", always_2d=True), file.samplerate
                _check_complete(path, file, audio.shape[0])
        except sf.LibsndfileError as err:
            raise _sf_error(path, err) from err
    else:
        audio, rate = _ffmpeg_decode(path, _ffprobe(path), stem_index)
    return _to_stereo(path, audio, int(rate), sample_rate)


def load_musdb_stems(path: str | os.PathLike[str], sample_rate: int) -> dict[str, np.ndarray]:
    """Decode all five streams of a MUSDB18 ``.stem.mp4`` file.

    Returns ``{name: [shape=(n_samples, 2)] float32}`` keyed and ordered by
    :data:`MUSDB_STREAMS`, all of one length (the shortest stream's, should AAC frames make
    them differ) so that the mixture lines up with the sum of the stems.
    """
    path = Path(path)
    _check_file(path)
    probe = _ffprobe(path)
    if len(probe.streams) < len(MUSDB_STREAMS):
        raise _fail(
            path,
            f"it has {len(probe.streams)} audio stream(s), not the "
            f"{len(MUSDB_STREAMS)} of a MUSDB stem file ({', '.join(MUSDB_STREAMS)})",
        )
    stems = {}
    for index, name in enumerate(MUSDB_STREAMS):
        audio, rate = _ffmpeg_decode(path, probe, index)
        stems[name] = _to_stereo(path, audio, rate, sample_rate)
    n_samples = min(a.shape[0] for a in stems.values())
    return {name: np.ascontiguousarray(a[:n_samples]) for name, a in stems.items()}


def save_audio_atomic(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
    """Write ``audio [shape=(n_samples, n_channels)]`` so that ``path`` is never half-written.

    The format follows the suffix: ``.wav`` float32, ``.flac`` 24-bit, ``.ogg`` Vorbis. Audio
    louder than full scale is refused for flac and ogg, which would clip it (float wav keeps
    it whole), rather than clipped without a word. The file is written beside ``path`` under a
    temporary name, flushed to disk, and renamed over ``path`` in one step, so a reader (or a
    crash) sees the old file or the whole new one. A full disk is one sentence.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SAVE_SUBTYPES:
        raise AudioFileError(
            f'Cannot save "{path}": the suffix must be one of {", ".join(_SAVE_SUBTYPES)}.'
        )
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise ValueError(f"audio must be [shape=(n_samples, n_channels)], got {audio.shape}")
    if not np.isfinite(audio).all():
        raise AudioFileError(f'Cannot save "{path}": the audio holds NaN or infinite values.')
    peak = float(np.abs(audio).max())
    if suffix != ".wav" and peak > 1.0:
        raise AudioFileError(
            f'Cannot save "{path}": it peaks at {20 * np.log10(peak):+.1f} dBFS, above the full '
            f"scale that {suffix[1:]} holds, and would be clipped; save it as wav (32-bit float "
            "keeps it whole)."
        )
    container, subtype = _SAVE_SUBTYPES[suffix]
    try:
        with atomic_path(path) as temporary:
            sf.write(os.fspath(temporary), audio, sample_rate, format=container, subtype=subtype)
    except (OSError, sf.LibsndfileError) as err:
        raise AudioFileError(f'Cannot save "{path}": {describe_write_failure(path, err)}.') from err


def describe_write_failure(path: Path, err: Exception) -> str:
    """Why ``path`` could not be written, in words: libsndfile says only "System error"."""
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("."))
    if getattr(err, "errno", None) == errno.ENOSPC or shutil.disk_usage(folder).free < 2**20:
        return (
            f'the disk is full ("{folder}" has {shutil.disk_usage(folder).free / 1e6:.1f} MB free)'
        )
    if isinstance(err, OSError):
        return f"its folder is not writable ({err.strerror or err})"
    return f"writing failed ({err})"


def reads_in_blocks(path: str | os.PathLike[str]) -> bool:
    """Whether ``read_blocks`` reads the file (libsndfile's formats; ffmpeg's decode whole)."""
    return _uses_soundfile(Path(path))


def read_blocks(path: str | os.PathLike[str], n_frames: int) -> Iterator[np.ndarray]:
    """The file at its own rate and channels, ``n_frames`` at a time, so that a song of any
    length takes memory for one block: ``[shape=(n, n_channels)]`` float32 blocks.

    Checked as ``load_audio`` checks (rate, channels, NaN, truncation); a check that needs the
    whole file (truncation) raises after the last block, so a caller keeps nothing it wrote
    until the generator is exhausted. Only for files ``reads_in_blocks`` says yes to.

    Raises:
        AudioFileError: anything wrong with the file (one sentence).
    """
    path = Path(path)
    _check_file(path)
    try:
        with sf.SoundFile(os.fspath(path)) as file:
            _check_rate(path, int(file.samplerate))
            _check_channels(path, int(file.channels))
            n_read = 0
            while True:
                block = file.read(n_frames, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                finite = np.isfinite(block)
                if not finite.all():
                    first = n_read + int(np.argmin(finite.all(axis=1)))
                    raise _fail(
                        path,
                        f"it holds NaN or infinite sample values, the first at "
                        f"{first / file.samplerate:.3f} s (sample {first}); repair or re-export it",
                    )
                n_read += block.shape[0]
                yield block
            if n_read == 0:
                raise _fail(path, "it holds no audio (0 samples)")
            _check_complete(path, file, n_read)
    except sf.LibsndfileError as err:
        raise _sf_error(path, err) from err


def open_stem_writer(
    path: str | os.PathLike[str], sample_rate: int, n_channels: int
) -> sf.SoundFile:
    """A stem file open for writing block by block, in the format its suffix says (as
    ``save_audio_atomic`` writes it); the caller makes it whole (``stem_set``)."""
    suffix = Path(path).suffix.lower()
    container, subtype = _SAVE_SUBTYPES[suffix]
    return sf.SoundFile(
        os.fspath(path), "w", sample_rate, n_channels, subtype=subtype, format=container
    )
