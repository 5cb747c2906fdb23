"""Augmentations that real recordings need, beyond gain, channel swap and remixing.

- **Pitch and tempo per source** (``pitch_tempo_variants``): each song's stems are rendered
  again, once, through Rubber Band (pedalboard's ``time_stretch``: a time-stretcher made for
  music, formant- and transient-aware, unlike a plain phase vocoder), each variant at its own
  pitch shift and tempo drawn from the song's name, and cached on disk by content. A training
  sample then takes each source from the original or from a variant; since the mixture is always
  the sum of the sources, the stems still sum to it.
- **Random EQ per source** (``eq_curve``): a low shelf, a high shelf and a peak, as smooth dB
  curves on a log-frequency axis, multiplied into the source's spectrum (an EQ is a linear
  filter, so the mixture of equalised sources is still the sum of the targets).
- **Stereo width per source** (``channel_matrix``): mid/side with the side scaled, together with
  the channel swap, as one 2x2 matrix on the channels.
- **LimitAug-style limiting of the mixture** (``limiter_gains``): the mixture is pushed by a
  random gain into a limiter whose ceiling is the excerpt's loudest frame (fast attack, slow
  release, on the frame envelope), as mastered songs are; the limiter's gain acts on every
  source alike, so the targets still sum to the limited mixture.

Every random number comes from the batch's own generator, so a batch stays a pure function of
(seed, epoch, index, rank) and ``--resume`` stays exact.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

import numpy as np

from ...realtime.io.atomic_file import atomic_write
from .datasets import Track, cache_dir


def eq_curve(rng: np.random.Generator, frequencies_hz: np.ndarray, max_db: float) -> np.ndarray:
    """A random EQ's linear gain at ``frequencies_hz`` (any shape).

    A low shelf (corner 60-400 Hz), a high shelf (2-10 kHz) and a peak (150 Hz-6 kHz, one half
    to two octaves wide), each with a gain uniform in [-max_db, max_db].
    """
    octaves = np.log2(np.maximum(frequencies_hz, 10.0))
    low_corner, high_corner = (
        rng.uniform(np.log2(60), np.log2(400)),
        rng.uniform(np.log2(2000), np.log2(10000)),
    )
    peak_centre, peak_width = rng.uniform(np.log2(150), np.log2(6000)), rng.uniform(0.5, 2.0)
    low_db, high_db, peak_db = rng.uniform(-max_db, max_db, size=3)
    # shelves: a logistic step one octave wide at the corner; the peak: a Gaussian in octaves
    curve_db = low_db / (1 + np.exp(4 * (octaves - low_corner)))
    curve_db += high_db / (1 + np.exp(-4 * (octaves - high_corner)))
    curve_db += peak_db * np.exp(-0.5 * ((octaves - peak_centre) / (peak_width / 2)) ** 2)
    return np.asarray(10.0 ** (curve_db / 20.0), dtype=np.float32)


def channel_matrix(gain: float, swap: bool, width: float) -> np.ndarray:
    """[shape=(2, 2)]: (left, right) out = matrix @ (left, right) in; gain, swap and width."""
    # mid = (l + r) / 2, side = (l - r) / 2; out = mid +- width * side
    half = 0.5 * np.array([[1 + width, 1 - width], [1 - width, 1 + width]])
    if swap:
        half = half[::-1]
    return np.asarray(gain * half, dtype=np.float32)


def limiter_gains(frame_energy: np.ndarray, push_db: float, release_frames: float) -> np.ndarray:
    """Per-frame gains of a limiter that raises the mixture by ``push_db`` and holds its
    loudest frame at the level it had.

    Args:
        frame_energy: [shape=(n_frames,)], the mixture's energy per frame.
        push_db: the gain into the limiter.
        release_frames: frames for the gain reduction to recover by 1/e.

    Returns:
        [shape=(n_frames,)] float32: the push times the gain reduction (instant attack,
        exponential release), never above the push.
    """
    level = np.sqrt(np.maximum(frame_energy, 1e-20))
    ceiling = float(level.max())
    push = 10.0 ** (push_db / 20.0)
    wanted = np.minimum(1.0, ceiling / (push * level))  # the reduction each frame needs
    recovery = np.exp(-1.0 / max(release_frames, 1e-3))
    reduction = np.empty_like(wanted)
    current = 1.0
    for frame, need in enumerate(wanted):
        # attack at once; otherwise recover towards 1 exponentially
        current = min(need, 1.0 - (1.0 - current) * recovery)
        reduction[frame] = current
    return np.asarray(push * reduction, dtype=np.float32)


def _variant_parameters(
    name: str, stem: int, variant: int, pitch_semitones: float, tempo_change: float
) -> tuple[float, float]:
    """(semitones, tempo factor) of one variant: a function of the song's name, so the same
    song gets the same variants in every run and on every rank."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), stem, variant])
    semitones = float(rng.uniform(-pitch_semitones, pitch_semitones))
    tempo = float(1.0 + rng.uniform(-tempo_change, tempo_change))
    return round(semitones, 3), round(tempo, 4)


def _stretch(audio: np.ndarray, sample_rate: int, semitones: float, tempo: float) -> np.ndarray:
    """[shape=(n_samples, 2)] -> the same audio at ``tempo`` times the speed, ``semitones`` up."""
    key = hashlib.sha256(audio.tobytes()).hexdigest()[:24]
    entry = cache_dir() / "variants" / f"{key}-{semitones:+.3f}-{tempo:.4f}.npy"
    if entry.exists():
        try:
            return np.load(entry).astype(np.float32)
        except (OSError, ValueError, EOFError):
            entry.unlink(missing_ok=True)
    try:
        from pedalboard import time_stretch
    except ImportError as error:
        from ..families.config import ConfigError

        raise ConfigError(
            "Pitch and tempo augmentation needs pedalboard (Rubber Band): "
            "pip install 'livestems[train]'."
        ) from error
    stretched = time_stretch(
        np.ascontiguousarray(audio.T),
        float(sample_rate),
        stretch_factor=tempo,
        pitch_shift_in_semitones=semitones,
        high_quality=True,
    )
    # what the cache holds, float16, is what every run trains on: the first run too, so that a
    # run and its resumption (which reads the cache) see the same numbers
    stored = np.ascontiguousarray(stretched.T, dtype=np.float16)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(entry) as handle:
            np.save(handle, stored)
    except OSError:
        pass  # a read-only cache only costs time
    return stored.astype(np.float32)


def pitch_tempo_variants(
    tracks: Sequence[Track], n_variants: int, pitch_semitones: float, tempo_change: float
) -> list[list[list[np.ndarray]]]:
    """``[song][stem][variant]``: each stem of each song at ``n_variants`` pitches and tempos,
    [shape=(n_samples_variant, 2)] float32 (a tempo change changes the length)."""
    variants = []
    for track in tracks:
        per_stem = []
        for stem, audio in enumerate(track.stems.values()):
            renders = []
            for variant in range(n_variants):
                semitones, tempo = _variant_parameters(
                    track.name, stem, variant, pitch_semitones, tempo_change
                )
                renders.append(_stretch(audio, track.sample_rate, semitones, tempo))
            per_stem.append(renders)
        variants.append(per_stem)
    return variants
