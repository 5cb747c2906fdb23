"""Separating songs offline: one signal or file in, one file per stem out, rendered offline.

Thread contract: main thread only. Everything here blocks (decoding, onnxruntime, writing
files) and allocates freely; it builds its own ``StreamProcessor`` and owns it while a file
renders. Nothing here runs in, or next to, an audio callback.

A song renders through the very processor the live engine uses (DESIGN.md: what you hear live
and what you render are the same samples), on its whole-sequence path: the streaming analysis
and synthesis run hop by hop, and the model runs once per chunk of ``chunk_seconds`` with its
state carried from chunk to chunk (``StreamProcessor.process_sequence_into``). The output equals
the live path's to onnxruntime's batch-versus-step rounding.

What a user gets, and why:

- **Rate and channels of the input.** The song is decoded at its own rate, resampled to the
  model's rate (soxr, HQ, as ``load_audio`` does) and the stems are resampled back, so each stem
  has exactly the input's rate and number of samples and lines up with it sample for sample in
  an editor. A mono song gives mono stems (the model's stereo output, averaged); a mono model
  separates the two channels of a stereo song one after the other.
- **Alignment.** The processor delays its output by ``latency_samples``; by default the tail is
  flushed with that many zeros and the delay is cut from the start, so stem sample ``t`` belongs
  to input sample ``t``. With ``align=False`` (``--no-align``) the stems are what was heard
  live: ``latency_samples`` (at the model's rate) of silence first, and that much longer.
- **Files.** ``OUT/<song>/<stem>.wav`` (float32) or ``.flac`` (24-bit), where ``<song>`` is the
  file name without its audio suffix (``.stem.mp4`` counts as one). A song's folder is written as
  a set (``stem_set``): into a temporary folder beside it, swapped in by one rename, so it holds
  one run's whole set or the previous one. Two inputs with the same song name get ``<song> (2)``
  and so on (a number no other input's name has), and the summary says so.
- **Nothing lost.** Before any work: the output folder is made and written to once, and a run
  that would replace a folder holding one of its inputs, or files that are not stems, is
  refused. Before each song: the disk must have room for its stems.
- **Many inputs.** Folders expand to their audio files (not recursively, sorted). A file that
  cannot be separated ends in one sentence on stderr, the others are still separated, and the
  exit status is 1.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import soundfile as sf
import soxr

from .. import arguments
from ..dsp.stft import SAMPLE_DTYPE
from ..engine.processor import StreamProcessor
from ..errors import UserError
from ..io.audio_file import (
    audio_info,
    describe_write_failure,
    load_audio,
    open_stem_writer,
    read_blocks,
    reads_in_blocks,
    save_audio_atomic,
)
from ..io.stem_set import check_inputs_survive, check_replaceable, clean_stale, stem_set
from .onnx_model import OnnxHopModel

__all__ = [
    "AUDIO_SUFFIXES",
    "ProgressBar",
    "SeparationReport",
    "check_disk_space",
    "check_output_folder",
    "expand_inputs",
    "render_stream",
    "separate_file",
    "separate_signal",
    "song_name",
    "unique_names",
]

#: Suffixes a folder argument expands to (any file given by name is tried whatever its suffix).
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4")
FORMATS: tuple[str, ...] = ("wav", "flac")
#: Model frames per onnxruntime call, in seconds of audio. On CPU about half a second (some 90
#: frames of the ``live`` preset) was fastest: much longer runs fall out of the cache.
DEFAULT_CHUNK_SECONDS = 0.5

#: ``progress(done_s, total_s)``: seconds of audio rendered so far, out of the file's total.
ProgressCallback = Callable[[float, float], None]


@dataclass(frozen=True)
class SeparationReport:
    """What ``separate_file`` did.

    Attributes:
        source: the input file.
        outputs: stem name -> the file written, in the model's stem order.
        duration_s: seconds of audio in the input.
        wall_s: seconds the separation took (decoding and writing included).
        sample_rate: rate of the files written (the input's).
        latency_samples: the processor's delay at the model's rate (cut when ``aligned``).
        aligned: whether stem sample ``t`` is input sample ``t``.
    """

    source: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    duration_s: float = 0.0
    wall_s: float = 0.0
    sample_rate: int = 0
    latency_samples: int = 0
    aligned: bool = True

    @property
    def real_time_factor(self) -> float:
        """Wall-clock seconds per second of audio (below 1: faster than real time)."""
        return self.wall_s / self.duration_s if self.duration_s else math.inf


def song_name(path: Path) -> str:
    """The file name without its audio suffix: ``a/Song.stem.mp4`` -> ``Song``."""
    name = path.name
    if name.lower().endswith(".stem.mp4"):
        return name[: -len(".stem.mp4")]
    return path.stem or name


def render_stream(
    processor: StreamProcessor,
    signal: np.ndarray,
    chunk: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The processor's output for ``signal`` then ``latency_samples`` of zeros, from a reset.

    Args:
        processor: prepared for blocks of ``chunk`` samples or more.
        signal: [shape=(n_samples, n_channels), float32] at the model's rate.
        chunk: samples per ``process_sequence_into`` call (one model call each).
        progress: called with the input samples done so far.

    Returns:
        [shape=(n_samples + latency_samples, n_stems * n_channels), float32], stem-major per
        sample, delayed by ``latency_samples``.
    """
    processor.reset()
    n_samples, latency = signal.shape[0], processor.latency_samples
    n_signals = len(processor.stems) * processor.n_channels
    flat = np.empty((n_samples + latency, n_signals), SAMPLE_DTYPE)
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        processor.process_sequence_into(signal[start:stop], flat[start:stop])
        if progress is not None:
            progress(stop)
    # The tail: the last latency_samples of output need that many samples after the song.
    tail = np.zeros((latency, signal.shape[1]), SAMPLE_DTYPE)
    processor.process_sequence_into(tail, flat[n_samples:])
    return flat


def separate_signal(
    model: OnnxHopModel,
    audio: np.ndarray,
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    align: bool = True,
    progress: Callable[[int, int], None] | None = None,
    postfilter: bool = False,
) -> np.ndarray:
    """The model's stems for a signal at the model's rate, through the stream processor
    (``postfilter``: with the Wiener post-filter, ``StreamProcessor``'s argument).

    Args:
        model: the model; it is reset before the signal (and between channels of a mono
            model) and after it.
        audio: [shape=(n_samples, n_channels), float32] at the model's rate; a stereo model
            needs two channels, a mono model separates each channel in turn.
        chunk_seconds: audio per model call.
        align: cut the processor's latency, so that stem sample ``t`` is input sample ``t``.
        progress: called with (samples done, samples in all), counted over all passes.

    Returns:
        [shape=(n_stems, n_out, n_channels), float32], stems first as the processor gives
        them (README.md, "Conventions"): ``n_out`` is ``n_samples``, or ``n_samples +
        latency_samples`` with ``align=False``.
    """
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    meta = model.metadata
    rate = meta.sample_rate
    n_samples = audio.shape[0]
    # A mono model takes the channels one at a time; a mono song goes to a stereo model as the
    # same signal on both sides (as load_audio gives it).
    passes = [audio] if meta.n_channels == 2 else [audio[:, [c]] for c in range(audio.shape[1])]
    processor = StreamProcessor.for_model(model, postfilter)
    chunk = max(meta.preset.hop, round(chunk_seconds * rate))
    processor.prepare(rate, chunk)
    total = n_samples * len(passes)

    n_stems = len(model.stems)
    rendered = []
    for index, signal in enumerate(passes):

        def report_progress(done: int, before: int = index * n_samples) -> None:
            if progress is not None:
                progress(before + done, total)

        flat = render_stream(processor, signal, chunk, report_progress)
        # (n_out, n_stems * n_channels) -> (n_out, n_stems, n_channels)
        rendered.append(flat.reshape(flat.shape[0], n_stems, meta.n_channels))
    model.reset()
    # The channels of a mono model's passes side by side: (n_out, n_stems, n_passes)
    stems = rendered[0] if len(rendered) == 1 else np.concatenate(rendered, axis=2)
    if align:
        latency = processor.latency_samples
        stems = stems[latency : latency + n_samples]
    return stems.transpose(1, 0, 2)


def separate_file(
    path: str | os.PathLike[str],
    model: OnnxHopModel,
    out_dir: str | os.PathLike[str],
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    format: str = "wav",
    align: bool = True,
    progress: ProgressCallback | None = None,
    name: str | None = None,
    postfilter: bool = False,
) -> SeparationReport:
    """Separate one song into ``out_dir/<name>/<stem>.<format>``.

    Args:
        path: an audio file of any rate, mono or stereo (anything ``load_audio`` reads).
        model: the model; it is reset before the song (and between channels of a mono model).
        out_dir: the folder for the song's folder; made if missing.
        chunk_seconds: audio per model call.
        format: ``wav`` (float32) or ``flac`` (24-bit).
        align: cut the processor's latency so that stem sample ``t`` is input sample ``t``;
            ``False`` keeps it (stems as heard live, that much longer).
        progress: called with (seconds done, seconds in all) of audio as chunks finish.
        name: the song's folder name; by default ``song_name(path)``.

    Returns:
        what was written, and how fast.

    Raises:
        AudioFileError: the file cannot be read, or a stem cannot be written (one sentence).
    """
    if format not in FORMATS:
        raise UserError(f"Unknown format {format!r}: choose one of {', '.join(FORMATS)}.")
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    started = time.perf_counter()
    path = Path(path)
    meta = model.metadata
    rate = meta.sample_rate
    song_dir = Path(out_dir) / (name or song_name(path))
    # Everything that can refuse the song does so before the (long) separation.
    check_inputs_survive([song_dir], [path])
    check_replaceable(song_dir)
    info = audio_info(path)
    check_disk_space(Path(out_dir), info.n_samples, info.n_channels, len(model.stems), format)
    native_rate = info.sample_rate
    if meta.n_channels == 2 and reads_in_blocks(path):
        try:
            _stream_file(path, model, song_dir, format, align, chunk_seconds, progress, postfilter)
        except OSError as error:
            raise UserError(
                f'Cannot write the stems into "{song_dir}" ({error.strerror or error}).'
            ) from error
        return SeparationReport(
            source=path,
            outputs={stem: song_dir / f"{stem}.{format}" for stem in model.stems},
            duration_s=info.n_samples / native_rate,
            wall_s=time.perf_counter() - started,
            sample_rate=native_rate,
            latency_samples=model.front_end().latency_samples,
            aligned=align,
        )
    # Decoded at its own rate (exact length), so the stems can be given back at that rate.
    audio = load_audio(path, native_rate)
    n_native = audio.shape[0]
    duration_s = n_native / native_rate
    if format != "wav" and np.abs(audio).max() > 1.0:
        # Refused before the work: 24-bit flac would clip stems this loud.
        raise UserError(
            f'"{path}" is louder than full scale, which {format} stems would clip; '
            "use --format wav (32-bit float keeps them whole)."
        )
    if native_rate != rate:
        audio = np.ascontiguousarray(
            soxr.resample(audio, native_rate, rate, quality="HQ"), dtype=SAMPLE_DTYPE
        )
    # A mono song goes to a mono model once, not once per (identical) channel.
    if meta.n_channels == 1 and info.n_channels == 1:
        audio = audio[:, :1]

    def report_progress(done: int, total: int) -> None:
        if progress is not None:
            progress(duration_s * done / total, duration_s)

    stems = separate_signal(
        model,
        audio,
        chunk_seconds=chunk_seconds,
        align=align,
        progress=report_progress,
        postfilter=postfilter,
    )
    n_stems = len(model.stems)
    latency = model.front_end().latency_samples
    if info.n_channels == 1 and stems.shape[2] == 2:
        stems = stems.mean(axis=2, keepdims=True, dtype=SAMPLE_DTYPE)
    if native_rate != rate:
        n_out = stems.shape[1]
        # (n_stems, n_out, n_channels) -> (n_out, n_stems * n_channels): soxr's channels
        flat = np.ascontiguousarray(stems.transpose(1, 0, 2)).reshape(n_out, -1)
        flat_stems = soxr.resample(flat, rate, native_rate, quality="HQ")
        n_back = n_native if align else round(n_out * native_rate / rate)
        stems = _fit_length(flat_stems, n_back).reshape(n_back, n_stems, -1).transpose(1, 0, 2)

    try:
        with stem_set(song_dir) as fresh:
            for index, stem in enumerate(model.stems):
                file_name = f"{stem}.{format}"
                save_audio_atomic(
                    fresh / file_name, np.ascontiguousarray(stems[index]), native_rate
                )
    except OSError as error:
        raise UserError(
            f'Cannot write the stems into "{song_dir}" ({error.strerror or error}).'
        ) from error
    outputs = {stem: song_dir / f"{stem}.{format}" for stem in model.stems}
    return SeparationReport(
        source=path,
        outputs=outputs,
        duration_s=duration_s,
        wall_s=time.perf_counter() - started,
        sample_rate=native_rate,
        latency_samples=latency,
        aligned=align,
    )


def _stream_file(
    path: Path,
    model: OnnxHopModel,
    song_dir: Path,
    format: str,
    align: bool,
    chunk_seconds: float,
    progress: ProgressCallback | None,
    postfilter: bool = False,
) -> None:
    """``separate_file`` for a stereo model and a file libsndfile reads, block by block: the
    song is read, resampled, separated, resampled back and written a chunk at a time, so that
    memory does not grow with the song's length (an hour's DJ mix separates on a laptop).

    The samples are those of the whole-song path: the same processor from a reset, the
    latency cut from the start (``align``) and flushed with zeros at the end; the streaming
    resamplers (soxr) match one-shot resampling to float rounding.
    """
    meta = model.metadata
    rate, n_stems = meta.sample_rate, len(model.stems)
    info = audio_info(path)
    native_rate, n_native, mono = info.sample_rate, info.n_samples, info.n_channels == 1
    n_out_channels = 1 if mono else 2
    processor = StreamProcessor(model, meta.preset, 2, model.front_end(), postfilter)
    chunk = max(meta.preset.hop, round(chunk_seconds * rate))
    processor.prepare(rate, chunk)
    processor.reset()
    latency = processor.latency_samples
    resample_in = resample_out = None
    if native_rate != rate:
        resample_in = soxr.ResampleStream(native_rate, rate, 2, dtype="float32", quality="HQ")
        resample_out = soxr.ResampleStream(
            rate, native_rate, n_stems * n_out_channels, dtype="float32", quality="HQ"
        )
    # What the whole-song path gives: the song's length (aligned), or the song and the
    # latency (not aligned), at the song's rate.
    n_model = round(n_native * rate / native_rate)
    n_target = n_native if align else round((n_model + latency) * native_rate / rate)
    to_cut = latency if align else 0
    n_written = 0
    flat = np.empty((chunk, n_stems * 2), SAMPLE_DTYPE)

    def write(stems: np.ndarray) -> None:
        """Stems at the song's rate, [shape=(n, n_stems * n_out_channels)], stem-major."""
        nonlocal n_written
        stems = stems[: n_target - n_written]
        if format != "wav" and stems.size and np.abs(stems).max() > 1.0:
            raise UserError(
                f'The stems of "{path}" are louder than full scale, which {format} would clip; '
                "use --format wav (32-bit float keeps them whole)."
            )
        for index, writer in enumerate(writers):
            writer.write(stems[:, index * n_out_channels : (index + 1) * n_out_channels])
        n_written += stems.shape[0]

    def separate(signal: np.ndarray) -> None:
        """Model-rate stereo through the processor, in chunks it was prepared for."""
        nonlocal to_cut
        for start in range(0, signal.shape[0], chunk):
            piece = signal[start : start + chunk]
            out = flat[: piece.shape[0]]
            processor.process_sequence_into(piece, out)
            cut = min(to_cut, out.shape[0])
            to_cut -= cut
            stems = out[cut:]
            if mono:
                # (n, n_stems * 2) -> (n, n_stems, 2) -> the two channels averaged
                stems = stems.reshape(-1, n_stems, 2).mean(axis=2, dtype=SAMPLE_DTYPE)
            write(stems if resample_out is None else resample_out.resample_chunk(stems))

    with stem_set(song_dir) as fresh:
        writers = [
            open_stem_writer(fresh / f"{stem}.{format}", native_rate, n_out_channels)
            for stem in model.stems
        ]
        try:
            n_read = 0
            for block in read_blocks(path, chunk):
                if format != "wav" and np.abs(block).max() > 1.0:
                    raise UserError(
                        f'"{path}" is louder than full scale, which {format} stems would '
                        "clip; use --format wav (32-bit float keeps them whole)."
                    )
                stereo = np.repeat(block, 2, axis=1) if mono else block
                separate(stereo if resample_in is None else resample_in.resample_chunk(stereo))
                n_read += block.shape[0]
                if progress is not None:
                    progress(n_read / native_rate, n_native / native_rate)
            if resample_in is not None:
                separate(resample_in.resample_chunk(np.zeros((0, 2), SAMPLE_DTYPE), last=True))
            # The tail: the last latency_samples of output need that many samples after the song.
            separate(np.zeros((latency, 2), SAMPLE_DTYPE))
            if resample_out is not None:
                empty = np.zeros((0, n_stems * n_out_channels), SAMPLE_DTYPE)
                write(resample_out.resample_chunk(empty, last=True))
            if n_written < n_target:  # a resampler's rounding
                write(np.zeros((n_target - n_written, n_stems * n_out_channels), SAMPLE_DTYPE))
        except (OSError, sf.LibsndfileError) as error:
            raise UserError(
                f'Cannot write the stems into "{song_dir}": '
                f"{describe_write_failure(song_dir, error)}."
            ) from error
        finally:
            for writer in writers:
                writer.close()
    model.reset()


def _fit_length(signal: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut or zero-pad ``signal`` [shape=(n, ...)] to ``n_samples`` (a resampler's rounding)."""
    if signal.shape[0] >= n_samples:
        return signal[:n_samples]
    padded = np.zeros((n_samples, *signal.shape[1:]), dtype=signal.dtype)
    padded[: signal.shape[0]] = signal
    return padded


# ------------------------------------------------------------------------------ inputs, model


def expand_inputs(arguments: Iterable[str | os.PathLike[str]]) -> list[Path | UserError]:
    """Each file argument as is; each folder as its audio files (sorted, not recursive, no
    hidden files), or an error in its place when it has none."""
    expanded: list[Path | UserError] = []
    for argument in arguments:
        path = Path(argument)
        if not path.is_dir():
            expanded.append(path)
            continue
        found = sorted(
            child
            for child in path.iterdir()
            if child.is_file()
            and not child.name.startswith(".")
            and child.suffix.lower() in AUDIO_SUFFIXES
        )
        if not found:
            kinds = ", ".join(suffix.lstrip(".") for suffix in AUDIO_SUFFIXES)
            expanded.append(UserError(f'The folder "{path}" holds no audio files ({kinds}).'))
        expanded.extend(found)
    return expanded


def unique_names(paths: Sequence[Path]) -> list[str]:
    """Song folder names, one per path, no two alike: a repeated name gets `` (2)``, `` (3)``...,
    skipping every number that is another input's own name (``a/song``, ``b/song`` and
    ``song (2)`` give ``song``, ``song (3)``, ``song (2)``). Compared without case, so that no two
    collide on a file system that ignores it (macOS, Windows)."""
    own = [song_name(path) for path in paths]
    taken = {name.casefold() for name in own}
    used: set[str] = set()
    names = []
    for name in own:
        chosen, number = name, 1
        while chosen.casefold() in used:
            number += 1
            chosen = f"{name} ({number})"
            if chosen.casefold() in taken:
                chosen = name  # another input's own name: try the next number
        used.add(chosen.casefold())
        names.append(chosen)
    return names


def check_output_folder(out_dir: str | os.PathLike[str]) -> Path:
    """Make ``out_dir`` (with its parents) and write a file into it once, so that a song is
    never separated only to find it cannot be written; stale temporaries of killed runs are
    removed. Returns the folder; raises ``UserError`` (one sentence) when it cannot be used."""
    folder = arguments.writable_folder(out_dir)
    try:
        clean_stale(folder)
    except OSError as error:
        raise UserError(
            f'Cannot clean the output folder "{folder}" ({error.strerror or error}).'
        ) from error
    return folder


#: Bytes per sample of a stem file, by format; flac's 24 bits are its worst case (noise).
_BYTES_PER_SAMPLE = {"wav": 4, "flac": 3}
#: Room left over beyond the estimate: headers, and a file system's own reserve.
_DISK_MARGIN_BYTES = 2**20


def check_disk_space(
    out_dir: Path, n_samples: int, n_channels: int, n_stems: int, format: str
) -> None:
    """Refuse (one sentence) a song whose stems would not fit on the output folder's disk."""
    needed = n_samples * n_channels * n_stems * _BYTES_PER_SAMPLE[format] + _DISK_MARGIN_BYTES
    existing = next(folder for folder in (out_dir, *out_dir.parents) if folder.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise UserError(
            f"Not enough disk space: the stems need about {needed / 1e6:.0f} MB and "
            f'"{existing}" has {free / 1e6:.0f} MB free; free some or choose another -o.'
        )


# -------------------------------------------------------------------------------- progress


class ProgressBar:
    """One ``\\r`` line per file on a terminal: percent, speed in times real time, and ETA.

    Args:
        label: what is being rendered (the file's name).
        stream: where to draw (stderr).
        min_interval_s: redraw at most this often.
    """

    def __init__(self, label: str, stream: TextIO, min_interval_s: float = 0.1) -> None:
        self.label = label
        self.stream = stream
        self.min_interval_s = min_interval_s
        self._started = time.perf_counter()
        self._drawn = -math.inf
        self._width = 0

    def __call__(self, done_s: float, total_s: float) -> None:
        now = time.perf_counter()
        if now - self._drawn < self.min_interval_s and done_s < total_s:
            return
        self._drawn = now
        elapsed = now - self._started
        fraction = done_s / total_s if total_s else 1.0
        speed = done_s / elapsed if elapsed > 0 else 0.0
        eta = (total_s - done_s) / speed if speed > 0 else math.inf
        eta_text = "--:--" if math.isinf(eta) else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        line = f"{self.label}  {fraction:4.0%}  {speed:6.1f}x real time  ETA {eta_text}"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        """Clear the line, so that what follows starts on a clean one."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


# ------------------------------------------------------------------------------- command
