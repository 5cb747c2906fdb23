"""Micro-benchmark: the per-hop cost of the spectral path (STFT, masks, iSTFT) per preset.

Thread contract: runs on the caller's thread; nothing else runs in it.

Run it with ``python -m livestems.realtime.benchmarks.stft``. For each preset it times the
stream processor with the identity model over whole hops (the worker's unit of work), and the
same work spread over four stems (the iSTFT runs once per stem), and prints median, p99 and
maximum per hop in microseconds, and the median as a fraction of the hop's duration: the share
of real time the front end takes from the model's budget. As a baseline measured in the same
run, it times the bare FFTs alone (one rfft per channel, one irfft per stem and channel, same
sizes, no framing or overlap-add), and prints the ratio: the price of the streaming machinery.
Figures, not a pass/fail: it is not a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..dsp.presets import PRESETS, SpectralPreset
from ..engine.processor import IdentityHopModel, StreamProcessor


class _FourStemIdentity(IdentityHopModel):
    """Four stems with masks of one: the front end's cost for a four-stem model."""

    stems = ("vocals", "drums", "bass", "other")

    def __init__(self, preset: SpectralPreset, n_channels: int = 2) -> None:
        self._masks = np.ones((4, n_channels, preset.n_bins), dtype=np.float32)


def time_per_hop(processor: StreamProcessor, n_hops: int, seed: int = 0) -> np.ndarray:
    """Seconds per call of ``process`` on one hop of noise, ``n_hops`` times after a warm-up."""
    hop = processor.preset.hop
    rng = np.random.default_rng(seed)
    block = rng.uniform(-0.5, 0.5, (hop, processor.n_channels)).astype(np.float32)
    for _ in range(50):
        processor.process(block)
    timings = np.empty(n_hops)
    for index in range(n_hops):
        start = time.perf_counter()
        processor.process(block)
        timings[index] = time.perf_counter() - start
    return timings


def time_bare_ffts(preset: SpectralPreset, n_stems: int, n_hops: int) -> np.ndarray:
    """Seconds per hop of the FFTs alone, into preallocated outputs, as the baseline."""
    frames = np.random.default_rng(1).standard_normal((2, preset.n_fft)).astype(np.float32)
    spectrum = np.empty((2, preset.n_bins), dtype=np.complex64)
    stem_spectra = np.ones((n_stems * 2, preset.n_bins), dtype=np.complex64)
    stem_frames = np.empty((n_stems * 2, preset.n_fft), dtype=np.float32)
    timings = np.empty(n_hops)
    for index in range(-50, n_hops):
        start = time.perf_counter()
        np.fft.rfft(frames, axis=-1, out=spectrum)  # type: ignore[arg-type]
        np.fft.irfft(stem_spectra, n=preset.n_fft, axis=-1, out=stem_frames)  # type: ignore[arg-type]
        if index >= 0:
            timings[index] = time.perf_counter() - start
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--hops", type=int, default=3000, help="timed hops per configuration")
    args = parser.parse_args(argv)
    print(f"{'preset':<7} {'stems':>5} {'hop':>5} {'p50 us':>8} {'p99 us':>8} {'max us':>8}"
          f" {'p50/hop':>8} {'FFTs us':>8} {'x FFTs':>7}")  # fmt: skip
    for preset in PRESETS.values():
        for model in (IdentityHopModel(preset), _FourStemIdentity(preset)):
            processor = StreamProcessor(model, preset)
            processor.prepare(preset.sample_rate, preset.hop)
            timings = time_per_hop(processor, args.hops) * 1e6
            hop_us = 1e6 * preset.hop / preset.sample_rate
            p50, p99 = np.percentile(timings, [50, 99])
            baseline = float(np.median(time_bare_ffts(preset, len(model.stems), args.hops))) * 1e6
            print(
                f"{preset.name:<7} {len(model.stems):>5} {preset.hop:>5} {p50:8.1f} {p99:8.1f}"
                f" {timings.max():8.1f} {p50 / hop_us:8.4f} {baseline:8.1f}"
                f" {p50 / baseline:7.2f}"
            )


if __name__ == "__main__":
    main()
