"""Songs as stems for the training side's tests: tracks in memory, written as a song folder.

No torch (``livestems.models.data.datasets`` is numpy and soundfile), though the tests that use
these are torch tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from livestems.models.data.datasets import STEMS, Track

RATE = 44100


def noise_track(name: str, seconds: float, seed: int, silent: dict[str, slice] | None = None):
    """Noise in every stem, each stem at its own level; ``silent`` zeroes parts of stems."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    stems = {}
    for index, stem in enumerate(STEMS):
        audio = (0.1 * rng.standard_normal((n, 2))).astype(np.float32)
        audio *= 1 + index  # each stem its own level, to tell them apart
        if silent and stem in silent:
            audio[silent[stem]] = 0.0
        stems[stem] = audio
    return Track(name, stems, np.sum(list(stems.values()), axis=0, dtype=np.float32))


def tonal_song(name: str, seed: int, seconds: float = 1.5) -> Track:
    """Four stems a mask can tell apart: a sung-range tone, clicks, a low tone, a chord."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 44100)) / 44100
    vocals = 0.2 * np.sin(2 * np.pi * rng.uniform(300, 600) * t)
    drums = np.zeros_like(t)
    drums[:: 44100 // 8] = 1.0
    drums = np.convolve(drums, rng.standard_normal(300) * np.exp(-np.arange(300) / 40))[: t.size]
    bass = 0.3 * np.sin(2 * np.pi * rng.uniform(50, 90) * t)
    other = sum(0.05 * np.sin(2 * np.pi * f * t) for f in rng.uniform(1000, 4000, 3))
    stems = {}
    for stem, mono in zip(STEMS, (vocals, drums, bass, other), strict=True):
        stems[stem] = np.stack([mono, mono * 0.8], axis=1).astype(np.float32)
    return Track(name, stems, np.sum(list(stems.values()), axis=0, dtype=np.float32))


def write_song_folder(root: Path, track: Track, with_mixture: bool) -> Path:
    """``root/<track name>/<stem>.wav`` (and ``mixture.wav`` when asked), float WAV."""
    folder = root / track.name
    folder.mkdir(parents=True)
    for stem, audio in track.stems.items():
        sf.write(folder / f"{stem}.wav", audio, RATE, subtype="FLOAT")
    if with_mixture:
        sf.write(folder / "mixture.wav", track.mixture, RATE, subtype="FLOAT")
    return folder
