"""Test signals in numpy (no torch): white noise, a music-like stereo mix, and the SNR."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 44100
#: What the PQMF bank's reconstruction reaches at least, aligned by its delay.
MIN_SNR_DB = 60.0


def white_noise(n_samples: int, n_channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.25 * rng.standard_normal((n_samples, n_channels))).astype(np.float32)


def music_like(seed: int, seconds: float = 2.0) -> np.ndarray:
    """Stereo [shape=(n_samples, 2), float32]: chords of harmonic tones with vibrato, decaying
    noise bursts on the beat (a drum) and a low sine (a bass), peak 0.9."""
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * SAMPLE_RATE)
    t = np.arange(n_samples) / SAMPLE_RATE
    mix = np.zeros((n_samples, 2))
    for f0, pan in ((220.0, (0.8, 0.5)), (329.63, (0.4, 0.7)), (554.37, (0.5, 0.5))):
        vibrato = 1.0 + 0.006 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(f0 * vibrato) / SAMPLE_RATE
        harmonics = range(1, min(16, int(SAMPLE_RATE / 2 / f0)))
        tone = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in harmonics)
        mix += 0.15 * np.outer(tone, pan)
    drum = np.zeros(n_samples)
    burst_length = int(0.15 * SAMPLE_RATE)
    for start in range(0, n_samples, SAMPLE_RATE // 4):
        burst = rng.standard_normal(burst_length) * np.exp(-np.arange(burst_length) / 1300.0)
        end = min(n_samples, start + burst_length)
        drum[start:end] += burst[: end - start]
    mix += 0.5 * drum[:, None]
    mix += 0.4 * np.sin(2 * np.pi * 55.0 * t)[:, None]
    return (0.9 * mix / np.abs(mix).max()).astype(np.float32)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    error = estimate.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum(error**2)))
