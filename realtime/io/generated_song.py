"""The one generated test song: a stand-in for music that no licence restricts.

Thread contract: none needed; pure functions of their arguments (main thread in practice).

Benchmarks, the window's soak and the tests play it when they need a song and the bundled demo
is not the point: a bass line, a chord that changes every half second and hi-hat noise bursts,
seeded, at any rate and length. ``write_generated_song`` writes one a few seconds at a time, so
an hour of it never sits in memory (the memory benchmark).
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

__all__ = ["generated_song", "write_generated_song"]

_ROOTS_HZ = np.array([110.0, 146.8, 130.8, 98.0])


def generated_song(
    seconds: float, sample_rate: int = 44100, seed: int = 0, *, start: int = 0
) -> np.ndarray:
    """[shape=(n_samples, 2), float32], peaks at 0.5: ``seconds`` of the song from sample
    ``start`` on (the same samples whichever pieces it is generated in, except the noise, which
    depends on the seed and the piece)."""
    rng = np.random.default_rng([seed, start])
    t = (start + np.arange(round(seconds * sample_rate))) / sample_rate
    beat = np.floor(t * 2).astype(int)
    roots = _ROOTS_HZ[beat % 4]
    song = np.zeros((t.size, 2))
    song[:, 0] += 0.4 * np.sin(2 * np.pi * roots / 2 * t)
    for ratio in (1.0, 1.26, 1.5, 2.0):
        song[:, 1] += 0.12 * np.sin(2 * np.pi * roots * 2 * ratio * t)
    hat = (t * 8) % 1.0 < 0.05
    song[hat] += 0.2 * rng.standard_normal((int(hat.sum()), 2))
    # a fixed scale, not the piece's own peak: pieces written one after another join up
    return (0.5 * song / 1.2).astype(np.float32)


def write_generated_song(
    path: str | os.PathLike[str],
    seconds: float,
    sample_rate: int = 44100,
    seed: int = 0,
    subtype: str = "PCM_16",
) -> None:
    """The song written to ``path`` ten seconds at a time."""
    n_total, block = round(seconds * sample_rate), 10 * sample_rate
    with sf.SoundFile(path, "w", sample_rate, 2, subtype=subtype) as file:
        for start in range(0, n_total, block):
            n = min(block, n_total - start)
            file.write(generated_song(n / sample_rate, sample_rate, seed, start=start))
