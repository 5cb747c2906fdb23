"""Scores: museval's BSSEval v4 (SDR, SIR, SAR, ISR) and SI-SDR per stem, for any estimator.

An *estimator* is a callable: a ``Track`` in, ``{stem: [shape=(n_samples, n_channels)]}`` out,
sample-aligned with the track's references. ``evaluate_tracks`` scores one estimator over
tracks, ``evaluate_estimators`` several on the same tracks (each track decoded once). The
estimators provided:

- ``streaming_estimator``: an ONNX model file through the stream processor, rendered as
  ``livestems separate`` renders it (``separate_signal``: what a user hears, latency cut).
- ``oracle_estimator``: the ideal ratio mask ``|S_j| / sum_k |S_k|`` per bin and channel,
  applied to the mixture's spectrum by the same processor and front end (STFT or PQMF
  subbands) at a preset: the ceiling of any mask model on that front end.
- ``mixture_estimator``: the mixture as every stem's estimate (the baseline to beat).
- ``torch_estimator``: a torch module that separates a whole waveform at once.

How scores are computed and aggregated, as museval does for MUSDB18 (``eval_mus_track``,
``TrackStore``, ``EvalStore``):

- BSSEval v4 (``museval.evaluate``, time-invariant distortion filters) on all of a track's
  stems at once, because interference is measured against the other references; windows
  and hops of 1 s (``int(seconds * rate)`` samples).
- A window in which any reference or any estimate is all zeros comes back NaN for every
  stem; a ratio whose numerator or denominator is zero comes back -inf or +inf, which
  ``TrackStore`` stores as NaN. Such frames are *excluded*: a track's figure is the median of
  its remaining frames, the split's figure the median over tracks that have any frame left.
  Excluded frames and tracks are counted per stem and metric and reported, never averaged in.
- museval refuses outright a track on which a whole reference or estimate is silent; here
  that stem's frames are all excluded and the other stems are still scored (``score_track``).
- The references BSSEval projects onto carry a seeded white dither at -70 dBFS
  (``DITHER_RMS``), except on digital silence (exact zeros stay zeros). MUSDB18's stems are
  AAC, band-limited to about 16 kHz, so the Gram matrix of their delayed copies (``n_stems *
  n_channels * 512`` square) is singular to float64's precision, and museval adds only
  ``eps`` (2e-16, absolute) to its diagonal: the projection onto one's own reference (SDR)
  survives that, the projection onto all of them (SIR, SAR, ISR) does not, and came out up to
  14 dB below SDR. The dither is a Tikhonov term about 1e-6 of the signals' energy: on
  MUSDB18-7 SIR and SAR stop moving from -80 dBFS down to -60 (within 0.06 dB) while SDR moves
  by less than 0.001 dB (a test asserts both on band-limited noise).
- ``TrackStore`` rounds each frame's value to 5 decimals; this module does not, so its figures
  differ from ``EvalStore``'s by at most 5e-6 dB (where no dither is needed).

SI-SDR (Le Roux et al., 2019) is computed over the whole track per stem, both channels as one
vector: ``10 log10(|a s|^2 / |a s - s_hat|^2)`` with ``a = <s_hat, s> / |s|^2``. A reference
whose mean square is below ``SILENT_MEAN_SQUARE`` (-100 dBFS) has no defined SI-SDR: it is
excluded and counted like a silent BSSEval frame. The error energy is floored at
``1e-12`` of the target's, so a perfect estimate scores 120 dB rather than infinity.

BSSEval is numpy linear algebra (each call solves systems of ``n_stems * n_channels * 512``
unknowns, about 7 s of one core for four stereo stems, plus about a second per second of
audio); it uses as many threads as the BLAS allows (``OPENBLAS_NUM_THREADS``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...realtime.dsp.front_end import FrontEnd, StftFrontEnd, SubbandFrontEnd
from ...realtime.dsp.presets import SpectralPreset, get_preset
from ...realtime.dsp.stft import SAMPLE_DTYPE
from ...realtime.engine.processor import StreamProcessor
from ...realtime.errors import UserError
from ...realtime.io.audio_file import AudioFileError
from ...realtime.runtime.onnx_model import OnnxHopModel
from ...realtime.runtime.separation import DEFAULT_CHUNK_SECONDS, render_stream, separate_signal
from ..data.datasets import DatasetError, Track, TrackRef

if TYPE_CHECKING:
    import torch

BSSEVAL_METRICS: tuple[str, ...] = ("SDR", "SIR", "SAR", "ISR")
METRICS: tuple[str, ...] = (*BSSEVAL_METRICS, "SI-SDR")
#: RMS of the white dither added to the references BSSEval projects onto (-70 dBFS): it
#: regularises the singular Gram matrix of band-limited stems (see the module's docstring).
DITHER_RMS = 10 ** (-70 / 20)
#: The dither's seed: the same noise for every track and every run, so scores repeat exactly.
DITHER_SEED = 2015
#: Mean square below which a reference counts as silent for SI-SDR: -100 dBFS.
SILENT_MEAN_SQUARE = 1e-10
#: SI-SDR's error energy is at least this fraction of the target's (caps it at 120 dB).
SI_SDR_FLOOR = 1e-12


def museval_version() -> str:
    """museval's version (imported here, not at the top: a lent GPU machine trains and
    validates by plain SDR without museval installed)."""
    from museval import version

    return str(version._version)


#: A track in, its stems' estimates out: ``{stem: [shape=(n_samples, n_channels)]}``.
Estimator = Callable[[Track], Mapping[str, np.ndarray]]
#: ``progress(index, n_tracks, track_name, {estimator: scores})`` after each track.
TrackProgress = Callable[[int, int, str, Mapping[str, "TrackScores"]], None]


# --------------------------------------------------------------------------------- scores


def _nanmedian(values: np.ndarray) -> float:
    """The median of the finite values; NaN when there are none (without numpy's warning)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


@dataclass(frozen=True)
class TrackScores:
    """One estimator's scores on one track.

    Attributes:
        name: the track's name.
        n_samples: samples scored.
        frames: ``{stem: {metric: [shape=(n_frames,)] float64}}`` for the BSSEval metrics, one
            value per window, NaN where the window is excluded (museval's NaN and +-inf).
        si_sdr: ``{stem: dB}`` over the whole track; NaN where the reference is silent.
        wall_s: seconds spent estimating and scoring this track.
    """

    name: str
    n_samples: int
    frames: dict[str, dict[str, np.ndarray]]
    si_sdr: dict[str, float]
    wall_s: float = 0.0

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.frames)

    @property
    def n_frames(self) -> int:
        first = next(iter(self.frames.values()))
        return int(first["SDR"].shape[0])

    def median(self, stem: str, metric: str) -> float:
        """The track's figure: median over its frames that are not excluded (NaN if none)."""
        if metric == "SI-SDR":
            return self.si_sdr[stem]
        return _nanmedian(self.frames[stem][metric])

    def excluded_frames(self, stem: str, metric: str = "SDR") -> int:
        """Frames of ``stem`` with no value for ``metric`` (silent reference or estimate)."""
        if metric == "SI-SDR":
            return int(math.isnan(self.si_sdr[stem]))
        return int(np.count_nonzero(np.isnan(self.frames[stem][metric])))


@dataclass(frozen=True)
class EvalResult:
    """One estimator's scores on a set of tracks, and their aggregates.

    Attributes:
        stems: the stems scored, in the tracks' order.
        tracks: per-track scores, in the order evaluated.
        window_s, hop_s: BSSEval's window and hop in seconds.
    """

    stems: tuple[str, ...]
    tracks: tuple[TrackScores, ...]
    window_s: float = 1.0
    hop_s: float = 1.0

    def aggregate(self, stem: str, metric: str) -> float:
        """Median over tracks of the tracks' figures, skipping tracks with no frame left."""
        return _nanmedian(np.array([track.median(stem, metric) for track in self.tracks]))

    def excluded_tracks(self, stem: str, metric: str) -> int:
        """Tracks without any value for ``stem`` and ``metric``, left out of the median."""
        return sum(math.isnan(track.median(stem, metric)) for track in self.tracks)

    def excluded_frames(self, stem: str, metric: str = "SDR") -> int:
        return sum(track.excluded_frames(stem, metric) for track in self.tracks)

    @property
    def n_frames(self) -> int:
        return sum(track.n_frames for track in self.tracks)

    def mean_over_stems(self, metric: str) -> float:
        """The mean of the stems' aggregates (over the stems that have one)."""
        values = [self.aggregate(stem, metric) for stem in self.stems]
        finite = [value for value in values if math.isfinite(value)]
        return float(np.mean(finite)) if finite else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: aggregates per stem, the mean of the stems, and per-track figures with
        their frames; ``None`` where a value is excluded."""
        stems = {}
        for stem in self.stems:
            stems[stem] = {
                **{metric: _json_float(self.aggregate(stem, metric)) for metric in METRICS},
                "frames": self.n_frames,
                "frames_excluded": {m: self.excluded_frames(stem, m) for m in BSSEVAL_METRICS},
                "tracks_excluded": {m: self.excluded_tracks(stem, m) for m in METRICS},
            }
        tracks = []
        for track in self.tracks:
            per_stem = {}
            for stem in self.stems:
                per_stem[stem] = {
                    **{metric: _json_float(track.median(stem, metric)) for metric in METRICS},
                    "frames_excluded": {m: track.excluded_frames(stem, m) for m in BSSEVAL_METRICS},
                    "frames": {
                        m: [_json_float(v) for v in track.frames[stem][m]] for m in BSSEVAL_METRICS
                    },
                }
            tracks.append(
                {
                    "name": track.name,
                    "n_samples": track.n_samples,
                    "n_frames": track.n_frames,
                    "wall_s": round(track.wall_s, 3),
                    "stems": per_stem,
                }
            )
        return {
            "stems": stems,
            "mean": {metric: _json_float(self.mean_over_stems(metric)) for metric in METRICS},
            "tracks": tracks,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EvalResult:
        """The inverse of ``to_dict`` (per-window figures included), for a table that carries
        rows scored in an earlier run."""
        stems = tuple(values["stems"])
        tracks = []
        for track in values["tracks"]:
            frames = {
                stem: {
                    metric: np.array(
                        [math.nan if v is None else v for v in figures["frames"][metric]]
                    )
                    for metric in BSSEVAL_METRICS
                }
                for stem, figures in track["stems"].items()
            }
            si_sdr = {
                stem: math.nan if figures["SI-SDR"] is None else float(figures["SI-SDR"])
                for stem, figures in track["stems"].items()
            }
            tracks.append(
                TrackScores(track["name"], track["n_samples"], frames, si_sdr, track["wall_s"])
            )
        return cls(stems, tuple(tracks))

    def markdown_table(self) -> str:
        """Rows: the stems and their mean; columns: the metrics and the frames excluded."""
        header = "| stem | " + " | ".join(METRICS) + " | frames excluded |"
        lines = [header, "|---" + "|---:" * (len(METRICS) + 1) + "|"]
        for stem in self.stems:
            cells = [format_db(self.aggregate(stem, metric)) for metric in METRICS]
            excluded = f"{self.excluded_frames(stem)} of {self.n_frames}"
            lines.append(f"| {stem} | " + " | ".join(cells) + f" | {excluded} |")
        mean = [format_db(self.mean_over_stems(metric)) for metric in METRICS]
        lines.append("| **mean** | " + " | ".join(mean) + " | |")
        return "\n".join(lines)


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def format_db(value: float) -> str:
    """A figure in dB for a table: two decimals, "n/a" where it is excluded."""
    return f"{value:.2f}" if math.isfinite(value) else "n/a"


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB over a whole signal, all channels as one vector.

    Args:
        reference, estimate: [shape=(n_samples, n_channels)]

    Returns:
        dB; NaN when the reference is silent (mean square below ``SILENT_MEAN_SQUARE``).
    """
    s = np.asarray(reference, dtype=np.float64).ravel()
    s_hat = np.asarray(estimate, dtype=np.float64).ravel()
    energy = float(np.dot(s, s))
    if energy <= SILENT_MEAN_SQUARE * s.size:
        return math.nan
    target = (float(np.dot(s_hat, s)) / energy) * s
    target_energy = float(np.dot(target, target))
    if target_energy == 0.0:
        # Silence or an estimate orthogonal to the reference: the floor, -120 dB.
        return 10.0 * math.log10(SI_SDR_FLOOR)
    error = s_hat - target
    # A perfect estimate scores the cap, 120 dB, not infinity.
    error_energy = max(float(np.dot(error, error)), SI_SDR_FLOOR * target_energy)
    return 10.0 * math.log10(target_energy / error_energy)


def score_track(
    track: Track,
    estimates: Mapping[str, np.ndarray],
    *,
    window_s: float = 1.0,
    hop_s: float = 1.0,
) -> TrackScores:
    """BSSEval v4 per window and SI-SDR for every stem of ``track``.

    Args:
        estimates: ``{stem: [shape=(n_samples, n_channels)]}``, one per stem of the track,
            aligned with it.
    """
    import museval  # here: the training machines validate without it
    from museval.metrics import Framing

    stems = tuple(track.stems)
    shape = track.mixture.shape
    for stem in stems:
        if stem not in estimates:
            raise ValueError(f"the estimator gave no {stem!r} for {track.name!r}")
        if np.shape(estimates[stem]) != shape:
            raise ValueError(
                f"the estimator's {stem!r} for {track.name!r} has shape "
                f"{np.shape(estimates[stem])}, the track {shape}"
            )
    # float64, as musdb hands museval its audio.
    references = np.stack([track.stems[stem] for stem in stems]).astype(np.float64)
    estimated = np.stack([estimates[stem] for stem in stems]).astype(np.float64)
    win, hop = int(window_s * track.sample_rate), int(hop_s * track.sample_rate)
    # museval refuses a track on which a whole reference or estimate is silent. A silent
    # reference adds nothing to the projections, so the other stems are scored against the
    # others; a silent estimate depends on nothing else (v4 scores estimate j from it and the
    # references alone), so it stands in as its own reference for the call. Either way that
    # stem's frames are all excluded, as they would be frame by frame.
    silent = [
        _museval_silent(references[i]) or _museval_silent(estimated[i]) for i in range(len(stems))
    ]
    scored = [i for i in range(len(stems)) if not _museval_silent(references[i])]
    n_frames = Framing(win, hop, track.n_samples).nwin
    values = np.full((4, len(stems), n_frames), np.nan)
    if scored:
        stand_ins = [references[i] if silent[i] else estimated[i] for i in scored]
        projected = references[scored]
        # Not on digital silence: museval's silent windows must stay silent to be excluded.
        dither = np.random.default_rng(DITHER_SEED).standard_normal(projected.shape)
        projected = projected + DITHER_RMS * dither * (projected != 0)
        sdr, isr, sir, sar = museval.evaluate(projected, np.stack(stand_ins), win=win, hop=hop)
        values[:, scored] = np.stack([sdr, sir, sar, isr])
    values[:, silent] = np.nan
    # +-inf as NaN, as museval's TrackStore stores them.
    values[~np.isfinite(values)] = np.nan
    frames = {
        stem: {metric: values[m, i] for m, metric in enumerate(BSSEVAL_METRICS)}
        for i, stem in enumerate(stems)
    }
    si = {stem: si_sdr(references[i], estimated[i]) for i, stem in enumerate(stems)}
    return TrackScores(track.name, track.n_samples, frames, si)


def _museval_silent(signal: np.ndarray) -> bool:
    """museval's test for a silent source: its channels sum to zero at every sample."""
    return bool(np.all(np.sum(signal, axis=-1) == 0))


def _load(item: Track | TrackRef) -> Track:
    if isinstance(item, Track):
        return item
    try:
        return item.load_for_scoring()  # float32 references, whatever the cache holds
    except AudioFileError as error:
        raise DatasetError(f"Track {item.name!r} cannot be read: {error}") from error


def _trimmed(track: Track, max_seconds: float | None) -> Track:
    if max_seconds is None:
        return track
    n_samples = min(track.n_samples, round(max_seconds * track.sample_rate))
    stems = {stem: audio[:n_samples] for stem, audio in track.stems.items()}
    return Track(track.name, stems, track.mixture[:n_samples], track.sample_rate)


def evaluate_estimators(
    estimators: Mapping[str, Estimator],
    tracks: Iterable[Track | TrackRef],
    *,
    window_s: float = 1.0,
    hop_s: float = 1.0,
    max_seconds: float | None = None,
    progress: TrackProgress | None = None,
) -> dict[str, EvalResult]:
    """Score several estimators on the same tracks, each track decoded once.

    Args:
        estimators: name -> estimator.
        tracks: tracks, or references that load them (loaded one at a time).
        window_s, hop_s: BSSEval's window and hop.
        max_seconds: score only the first seconds of each track (quick checks); ``None``:
            whole tracks.
        progress: called after each track with every estimator's scores on it.
    """
    items = list(tracks)
    scores: dict[str, list[TrackScores]] = {name: [] for name in estimators}
    stems: tuple[str, ...] = ()
    for index, item in enumerate(items):
        track = _trimmed(_load(item), max_seconds)
        stems = stems or tuple(track.stems)
        if tuple(track.stems) != stems:
            raise DatasetError(
                f"Track {track.name!r} has stems {', '.join(track.stems)} but the first had "
                f"{', '.join(stems)}: score tracks of one data set together."
            )
        on_track = {}
        for name, estimate in estimators.items():
            started = time.perf_counter()
            result = score_track(track, estimate(track), window_s=window_s, hop_s=hop_s)
            result = TrackScores(
                result.name,
                result.n_samples,
                result.frames,
                result.si_sdr,
                time.perf_counter() - started,
            )
            scores[name].append(result)
            on_track[name] = result
        if progress is not None:
            progress(index, len(items), track.name, on_track)
    return {
        name: EvalResult(stems, tuple(per_track), window_s, hop_s)
        for name, per_track in scores.items()
    }


def evaluate_tracks(
    estimate: Estimator,
    tracks: Iterable[Track | TrackRef],
    *,
    window_s: float = 1.0,
    hop_s: float = 1.0,
    max_seconds: float | None = None,
    progress: Callable[[int, int, TrackScores], None] | None = None,
) -> EvalResult:
    """Score one estimator on tracks (see ``evaluate_estimators``)."""

    def report(index: int, n_tracks: int, name: str, on_track: Mapping[str, TrackScores]) -> None:
        if progress is not None:
            progress(index, n_tracks, on_track[""])

    results = evaluate_estimators(
        {"": estimate},
        tracks,
        window_s=window_s,
        hop_s=hop_s,
        max_seconds=max_seconds,
        progress=report,
    )
    return results[""]


# ----------------------------------------------------------------------------- estimators


def check_model_fits(model: OnnxHopModel, stems: Sequence[str], sample_rate: int) -> None:
    """Refuse, in one sentence, a model that cannot be scored on tracks with these stems."""
    meta = model.metadata
    missing = [stem for stem in stems if stem not in meta.stems]
    if missing:
        raise UserError(
            f'Model "{model.path}" separates {", ".join(meta.stems)}, but the tracks need '
            f"{', '.join(stems)}: score a model trained for these stems."
        )
    if meta.sample_rate != sample_rate:
        raise UserError(
            f'Model "{model.path}" runs at {meta.sample_rate} Hz but the tracks are at '
            f"{sample_rate} Hz: score it on tracks at its rate."
        )


def streaming_estimator(
    model: str | os.PathLike[str] | OnnxHopModel,
    provider: str = "auto",
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    cpu_threads: int = 1,
) -> Estimator:
    """An ONNX model file through the stream processor, as ``livestems separate`` renders it.

    The processor runs the model once per ``chunk_seconds`` of audio with its state carried
    across (equal to the live hop-by-hop path to onnxruntime's rounding), flushes the tail with
    ``latency_samples`` of zeros and cuts that delay from the start, so each stem lines up with
    its reference.

    Args:
        model: a model file, or a loaded model.
        provider: onnxruntime's execution provider (``auto``, ``cpu``, ``cuda``).
    """
    if not isinstance(model, OnnxHopModel):
        model = OnnxHopModel(model, provider=provider, cpu_threads=cpu_threads)
    loaded = model

    def estimate(track: Track) -> dict[str, np.ndarray]:
        check_model_fits(loaded, tuple(track.stems), track.sample_rate)
        mixture = np.ascontiguousarray(track.mixture, dtype=SAMPLE_DTYPE)
        stems = separate_signal(loaded, mixture, chunk_seconds=chunk_seconds)
        return {stem: stems[index] for index, stem in enumerate(loaded.stems)}

    return estimate


class OracleHopModel:
    """The processor's ``HopModel`` for the ideal ratio mask.

    The processor is fed the mixture and every stem side by side as channels (``(1 + n_stems)
    * n_channels`` of them, the mixture first), so that each frame's spectra of the stems come
    with the mixture's, on the same timeline by construction. The masks are ``|S_j| / sum_k
    |S_k|`` on the mixture's channels and zero on the stems' (whose output is discarded); a
    bin where every stem is silent is shared equally, so the estimates still sum to the mix.

    Args:
        stems: the stems' names.
        n_channels: audio channels of the mixture.
        n_bands: subbands of the front end (1: the full-band STFT); feature channels are
            band-major, ``k * n_signals + c``, as ``SubbandFrontEnd`` stacks them.
    """

    def __init__(self, stems: Sequence[str], n_channels: int, n_bands: int = 1) -> None:
        self.stems = tuple(stems)
        self.n_channels = n_channels
        self.n_bands = n_bands

    def reset(self) -> None:
        """Stateless: nothing to clear."""

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        return self.run(spectrum[None])[0]

    def run(self, spectra: np.ndarray) -> np.ndarray:
        n_frames, n_features, n_bins = spectra.shape
        n_stems, n_channels, n_bands = len(self.stems), self.n_channels, self.n_bands
        # (n_frames, n_features, n_bins) -> (n_frames, n_bands, 1 + n_stems, n_channels,
        # n_bins): the features split into band, signal (mixture first) and channel
        by_signal = spectra.reshape(n_frames, n_bands, 1 + n_stems, n_channels, n_bins)
        magnitudes = np.abs(by_signal[:, :, 1:])
        total = magnitudes.sum(axis=2, keepdims=True)
        ratio = np.full_like(magnitudes, 1.0 / n_stems)
        np.divide(magnitudes, total, out=ratio, where=total > 0)
        masks = np.zeros((n_frames, n_stems, n_bands, 1 + n_stems, n_channels, n_bins), "f4")
        # (n_frames, n_bands, n_stems, n_channels, n_bins) -> (n_frames, n_stems, n_bands,
        # n_channels, n_bins): stems first, onto the mixture's channels
        masks[:, :, :, 0] = ratio.transpose(0, 2, 1, 3, 4)
        return masks.reshape(n_frames, n_stems, n_features, n_bins)


def _oracle_path(preset: SpectralPreset, n_signals: int, n_bands: int) -> FrontEnd:
    if n_bands == 1:
        return StftFrontEnd(preset, n_signals)
    return SubbandFrontEnd(preset, n_signals, n_bands)


def oracle_estimator(
    preset: str | SpectralPreset = "live",
    n_bands: int = 1,
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> Estimator:
    """The ideal ratio mask through the stream processor at ``preset``.

    Args:
        preset: the frame geometry (a model's, to give that model's ceiling).
        n_bands: 1 for the full-band STFT (``lstm``), K for a PQMF subband front end (``cws``).
    """
    spectral_preset = get_preset(preset) if isinstance(preset, str) else preset

    def estimate(track: Track) -> dict[str, np.ndarray]:
        if track.sample_rate != spectral_preset.sample_rate:
            raise UserError(
                f"Preset {spectral_preset.name!r} runs at {spectral_preset.sample_rate} Hz but "
                f"track {track.name!r} is at {track.sample_rate} Hz."
            )
        stems = tuple(track.stems)
        n_samples, n_channels = track.mixture.shape
        n_signals = (1 + len(stems)) * n_channels
        path = _oracle_path(spectral_preset, n_signals, n_bands)
        model = OracleHopModel(stems, n_channels, n_bands)
        processor = StreamProcessor(model, spectral_preset, n_signals, path)
        chunk = max(spectral_preset.hop, round(chunk_seconds * spectral_preset.sample_rate))
        processor.prepare(spectral_preset.sample_rate, chunk)
        # (n_samples, (1 + n_stems) * n_channels): the mixture, then each stem
        signals = np.concatenate([track.mixture, *track.stems.values()], axis=1)
        flat = render_stream(processor, np.ascontiguousarray(signals, SAMPLE_DTYPE), chunk)
        latency = processor.latency_samples
        # (n_samples, n_stems * n_signals) -> (n_samples, n_stems, 1 + n_stems, n_channels);
        # each stem's estimate is its output on the mixture's channels
        out = flat[latency : latency + n_samples].reshape(
            n_samples, len(stems), 1 + len(stems), n_channels
        )
        return {stem: out[:, index, 0] for index, stem in enumerate(stems)}

    return estimate


def mixture_estimator() -> Estimator:
    """The mixture as every stem's estimate: the baseline a separator has to beat."""

    def estimate(track: Track) -> dict[str, np.ndarray]:
        return {stem: track.mixture for stem in track.stems}

    return estimate


def torch_estimator(
    module: torch.nn.Module,
    device: str = "cpu",
    *,
    stems: Sequence[str] | None = None,
    latency_samples: int | None = None,
) -> Estimator:
    """A torch module that separates a whole waveform at once.

    ``module(waveform)`` takes [shape=(1, n_channels, n_samples)] and gives [shape=(1,
    n_stems, n_channels, n_samples)], delayed by ``latency_samples`` (a causal model's output
    is, as the stream's would be): the mixture is followed by that many zeros and the delay is
    cut, so the stems line up with the references.

    Args:
        module: in evaluation mode; run without gradients.
        device: where to run it.
        stems: the output's stems in order; by default ``module.stems``.
        latency_samples: the output's delay; by default ``module.latency_samples``, else 0.
    """
    import torch

    names = tuple(stems if stems is not None else getattr(module, "stems"))  # noqa: B009
    delay = int(
        latency_samples if latency_samples is not None else getattr(module, "latency_samples", 0)
    )

    def estimate(track: Track) -> dict[str, np.ndarray]:
        n_samples, n_channels = track.mixture.shape
        padded = np.zeros((n_samples + delay, n_channels), dtype=SAMPLE_DTYPE)
        padded[:n_samples] = track.mixture
        # (n_samples, n_channels) -> (1, n_channels, n_samples)
        waveform = torch.from_numpy(np.ascontiguousarray(padded.T)).to(device)[None]
        with torch.no_grad():
            separated = module(waveform)
        out = separated[0].detach().to("cpu", torch.float32).numpy()
        expected = (len(names), n_channels, n_samples + delay)
        if out.shape != expected:
            raise ValueError(f"the module gave shape {out.shape}, expected {expected}")
        # (n_stems, n_channels, n_samples) -> per stem (n_samples, n_channels), delay cut
        return {stem: out[index, :, delay:].T for index, stem in enumerate(names)}

    return estimate
