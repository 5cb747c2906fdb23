"""What averaging several models' stems would score: a measurement, not a shipped feature.

A blend of separators (the mean of their stems, each cut to line up with the references) often
scores above its best member, because their errors differ. This scores each model through the
stream processor, as ``livestems eval`` does, and each asked-for blend of them, on the same
tracks in one pass (each model runs once per track; a blend reuses its members' stems):

    python -m livestems.models.evaluation.blend cws=realtime/bundled/cws-live.onnx \
        bsrnn=realtime/bundled/bsrnn-live.onnx --blend cws+bsrnn --musdb PATH

Models of different front ends and latencies blend too: each member's stems are already cut to
the references' timeline. Live, a blend would need every member per hop and its outputs delayed
to the slowest member's latency; the README says what it measured and why none ships.

Two more ways to spend compute on the same model, measured the same way and not shipped either
(the README has the figures): ``--swapped NAME`` adds ``NAME-swapped``, the model run on the
mixture with left and right exchanged (its stems exchanged back), so ``--blend NAME+NAME-swapped``
is test-time augmentation; ``--spatial NAME`` adds ``NAME-spatial``, the model's stems through a
causal multichannel Wiener filter whose spatial covariances are averaged over the past
(``spatial_wiener``), where the processor's ``--wiener`` has one frame only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.signal import istft, stft

from ...realtime.dsp.wiener import wiener_from_covariances
from ...realtime.errors import UserError
from ..data.datasets import Track, musdb_tracks
from .evaluate import Estimator, evaluate_estimators, streaming_estimator


def once_per_track(estimate: Estimator) -> Estimator:
    """``estimate``, keeping its last track's stems: what reads a member again for the same
    track (a blend, ``spatial_estimator``) reuses the stems the member was scored with instead
    of running the model again."""
    # Keyed by the track object, not its name: swapped_estimator hands the model another
    # Track of the same name (the mirrored mix). Holding it keeps its id from being reused.
    last: list[tuple[Track, Mapping[str, np.ndarray]]] = []

    def cached(track: Track) -> Mapping[str, np.ndarray]:
        if not last or last[0][0] is not track:
            last[:] = [(track, estimate(track))]
        return last[0][1]

    return cached


def blend_estimators(
    members: Mapping[str, Estimator], blends: Sequence[Sequence[str]]
) -> dict[str, Estimator]:
    """The members and each blend (the mean of its members' stems), as estimators that run each
    member once per track.

    Args:
        members: name -> estimator.
        blends: each a sequence of two or more member names.

    Returns:
        name -> estimator: the members under their names, each blend as ``a+b(+...)``. Call them
        in that order for each track (as ``evaluate_estimators`` does): a blend reads the stems
        its members gave for the same track.
    """
    for blend in blends:
        unknown = [name for name in blend if name not in members]
        if unknown:
            raise UserError(
                f"The blend {'+'.join(blend)} names {', '.join(unknown)}, which is not a model "
                f"given: the models are {', '.join(members)}."
            )
        if len(set(blend)) < 2:
            raise UserError(f"The blend {'+'.join(blend)} needs two or more different models.")
    # Each member keeps its last track's stems: a blend reads them, or runs a member that was
    # not scored on its own.
    cached = {name: once_per_track(estimate) for name, estimate in members.items()}

    def blended(names: Sequence[str]) -> Estimator:
        def estimate(track: Track) -> Mapping[str, np.ndarray]:
            outputs = [cached[name](track) for name in names]
            return {stem: np.mean([out[stem] for out in outputs], axis=0) for stem in outputs[0]}

        return estimate

    estimators: dict[str, Estimator] = dict(cached)
    for blend in blends:
        estimators["+".join(blend)] = blended(tuple(blend))
    return estimators


def swapped_estimator(estimate: Estimator) -> Estimator:
    """``estimate`` run on the mixture with its two channels exchanged, and its stems exchanged
    back: for a model that is not symmetric in left and right, a second opinion on the same
    song."""

    def swapped(track: Track) -> Mapping[str, np.ndarray]:
        if track.mixture.shape[1] != 2:
            raise UserError(f"{track.name} is not stereo, so its channels cannot be exchanged.")
        mirrored = Track(
            track.name,
            {stem: audio[:, ::-1] for stem, audio in track.stems.items()},
            np.ascontiguousarray(track.mixture[:, ::-1]),
            track.sample_rate,
        )
        return {stem: audio[:, ::-1] for stem, audio in estimate(mirrored).items()}

    return swapped


#: The spatial Wiener filter's frame (about 23 ms at 44.1 kHz) and hop: a quarter frame.
SPATIAL_FRAME = 1024
SPATIAL_HOP = 256


def spatial_wiener(
    mixture: np.ndarray,
    stems: Mapping[str, np.ndarray],
    sample_rate: int,
    memory_s: float = 1.0,
    eps: float = 1e-10,
) -> dict[str, np.ndarray]:
    """Stems re-estimated by a causal multichannel Wiener filter, as Open-Unmix's post-filter
    but with its statistics from the past only.

    Per bin and frame, stem j's power ``v_j`` is its estimate's mean power over the channels and
    its spatial covariance ``R_j`` is the sum of its estimates' outer products ``y_j y_j^H`` over
    the frames so far, each weighted by ``exp(-age / memory_s)``, over the same sum of ``v_j``;
    the filtered stem is ``v_j R_j (sum_k v_k R_k + eps I)^-1 x``. Frame ``t`` reads frames
    ``<= t`` only, so the filter adds no look-ahead beyond its frame's.

    Args:
        mixture: [shape=(n_samples, n_channels)]
        stems: ``{stem: [shape=(n_samples, n_channels)]}``, a model's estimates on the same
            timeline.
        sample_rate: of both.
        memory_s: the time constant of the covariances' average.

    Returns:
        ``{stem: [shape=(n_samples, n_channels)] float64}``.
    """

    def spectrum(audio: np.ndarray) -> np.ndarray:  # (frames, bins, channels)
        frames = stft(
            np.asarray(audio, dtype=np.float64).T,
            nperseg=SPATIAL_FRAME,
            noverlap=SPATIAL_FRAME - SPATIAL_HOP,
            boundary="zeros",
            padded=True,
        )[2]
        return frames.transpose(2, 1, 0)

    names = list(stems)
    x = spectrum(mixture)
    estimates = np.stack([spectrum(stems[name]) for name in names])  # (stems, frames, bins, ch)
    n_frames, n_bins, n_channels = x.shape
    decay = np.exp(-SPATIAL_HOP / (memory_s * sample_rate))
    covariance_sum = np.zeros((len(names), n_bins, n_channels, n_channels), dtype=complex)
    power_sum = np.zeros((len(names), n_bins))
    filtered = np.zeros_like(estimates)
    for frame in range(n_frames):
        y = estimates[:, frame]  # (stems, bins, ch)
        power = np.mean(np.abs(y) ** 2, axis=-1)
        covariance_sum = decay * covariance_sum + y[..., :, None] * y.conj()[..., None, :]
        power_sum = decay * power_sum + power
        spatial = covariance_sum / (power_sum[..., None, None] + eps)
        filtered[:, frame] = wiener_from_covariances(
            power[..., None, None] * spatial, x[frame], eps
        )
    n_samples = len(mixture)
    out = {}
    for index, name in enumerate(names):
        audio = istft(
            filtered[index].transpose(2, 1, 0),
            nperseg=SPATIAL_FRAME,
            noverlap=SPATIAL_FRAME - SPATIAL_HOP,
            boundary=True,
        )[1].T
        out[name] = np.zeros((n_samples, n_channels))
        out[name][: min(n_samples, len(audio))] = audio[:n_samples]
    return out


def spatial_estimator(estimate: Estimator, memory_s: float = 1.0) -> Estimator:
    """``estimate``'s stems through ``spatial_wiener``."""

    def filtered(track: Track) -> Mapping[str, np.ndarray]:
        return spatial_wiener(track.mixture, estimate(track), track.sample_rate, memory_s)

    return filtered


def _named_model(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=MODEL.onnx")
    return name, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.evaluation.blend",
        description="score models and blends of them (the mean of their stems) with BSSEval",
    )
    parser.add_argument("models", nargs="+", type=_named_model, help="NAME=MODEL.onnx")
    parser.add_argument("--blend", action="append", default=[], help="NAME+NAME[+...]")
    parser.add_argument(
        "--swapped",
        action="append",
        default=[],
        metavar="NAME",
        help="also score NAME-swapped: NAME on the channel-swapped mixture, swapped back",
    )
    parser.add_argument(
        "--spatial",
        action="append",
        default=[],
        metavar="NAME",
        help="also score NAME-spatial: NAME's stems through the causal spatial Wiener filter",
    )
    parser.add_argument(
        "--spatial-memory-s",
        type=float,
        default=1.0,
        help="time constant of the spatial Wiener filter's covariance average (default 1 s)",
    )
    parser.add_argument("--musdb", default=os.environ.get("LIVESTEMS_MUSDB"))
    parser.add_argument("--split", default="valid")
    parser.add_argument("--tracks", type=int, help="only the split's first N tracks")
    args = parser.parse_args(argv)
    try:
        if not args.musdb:
            raise UserError("Give --musdb PATH (or set LIVESTEMS_MUSDB).")
        members = {name: streaming_estimator(path, "cpu") for name, path in args.models}
        for variant, names in (("swapped", args.swapped), ("spatial", args.spatial)):
            for name in names:
                if name not in members:
                    raise UserError(
                        f"--{variant} names {name}, which is not a model given: the models are "
                        f"{', '.join(members)}."
                    )
        # -swapped runs its model once more per track (on the mirrored mix, so from the model
        # itself); -spatial filters the stems its member was just scored with (members are
        # called first, in order, for each track).
        cached = {name: once_per_track(estimate) for name, estimate in members.items()}
        variants: dict[str, Estimator] = {}
        for name in args.swapped:
            variants[f"{name}-swapped"] = swapped_estimator(members[name])
        for name in args.spatial:
            variants[f"{name}-spatial"] = spatial_estimator(cached[name], args.spatial_memory_s)
        members = {**cached, **variants}
        estimators = blend_estimators(members, [text.split("+") for text in args.blend])
        tracks = musdb_tracks(args.musdb, args.split)[: args.tracks]
        results = evaluate_estimators(estimators, tracks)
    except UserError as error:
        print(f"livestems blend: {error}", file=sys.stderr)
        return 1
    stems = next(iter(results.values())).stems
    print(f"| system | {' | '.join(stems)} | mean |")
    print(f"|---|{'---:|' * (len(stems) + 1)}")
    for name, result in results.items():
        cells = " | ".join(f"{result.aggregate(stem, 'SDR'):.2f}" for stem in stems)
        print(f"| {name} | {cells} | {result.mean_over_stems('SDR'):.2f} |")
    print(
        f"\nSDR in dB (museval BSSEval v4, median over 1 s frames, then over the {len(tracks)} "
        f"tracks of the {args.split} split), every model through the stream processor."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
