"""Telemetry: what the engine measures, for the window and the benchmarks, read without locks.

Thread contract:

- The **worker thread** writes compute times, per-stem levels and per-stem spectra (through
  ``record_compute`` and ``record_output``); it allocates nothing after construction except
  numpy's FFT scratch for the spectra.
- The **audio callback** writes the under-run count, the worst lateness and the samples played
  (``record_underrun``, ``record_block``): integer stores, no allocation.
- **Readers** (GUI timer, benchmarks, the terminal status line) call ``snapshot()``, which
  copies everything out. Nothing is locked: each writer bumps ``sequence`` after a group of
  stores, and ``snapshot`` retries while it changes, so a snapshot is consistent for the
  worker's group; the callback's counters are single integer stores, atomic under the GIL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPECTRUM_SIZE = 1024  # samples per spectrogram column (about 23 ms at 44.1 kHz)
COMPUTE_HISTORY = 4096  # per-hop compute times kept for percentiles
LEVEL_FLOOR_DB = -120.0


@dataclass(frozen=True)
class TelemetrySnapshot:
    samples_played: int
    underruns: int
    worst_lateness_samples: int
    device_xruns: int
    hops: int
    hop_seconds: np.ndarray  # [shape=(min(hops, COMPUTE_HISTORY),)], newest last
    stem_rms_db: np.ndarray  # [shape=(n_stems,)]
    stem_peak_db: np.ndarray  # [shape=(n_stems,)]
    stem_spectra_db: np.ndarray  # [shape=(n_stems, SPECTRUM_SIZE // 2 + 1)]
    spectrum_count: int  # how many spectra have been computed (a new column when it grows)
    out_ring_fill: int

    def hop_percentiles_ms(self) -> tuple[float, float, float]:
        """p50, p99 and max compute time per hop, in milliseconds (NaN before any hop)."""
        if not self.hop_seconds.size:
            return float("nan"), float("nan"), float("nan")
        p50, p99 = np.percentile(self.hop_seconds, [50, 99]) * 1000.0
        return float(p50), float(p99), float(self.hop_seconds.max() * 1000.0)


class Telemetry:
    """Args:
    n_stems: stems measured.
    n_channels: channels per stem.
    """

    def __init__(self, n_stems: int, n_channels: int) -> None:
        self.n_stems = n_stems
        self.sequence = 0
        self.samples_played = 0
        self.underruns = 0
        self.worst_lateness_samples = 0
        self.device_xruns = 0
        self.hops = 0
        self.out_ring_fill = 0
        self._hop_seconds = np.zeros(COMPUTE_HISTORY)
        self._rms_db = np.full(n_stems, LEVEL_FLOOR_DB)
        self._peak_db = np.full(n_stems, LEVEL_FLOOR_DB)
        n_bins = SPECTRUM_SIZE // 2 + 1
        self._spectra_db = np.full((n_stems, n_bins), LEVEL_FLOOR_DB)
        self.spectrum_count = 0
        # The newest SPECTRUM_SIZE samples of each stem, mono, for the next spectrum.
        self._history = np.zeros((n_stems, 2 * SPECTRUM_SIZE), dtype=np.float32)
        self._history_end = SPECTRUM_SIZE
        self._since_spectrum = 0
        self._window = np.hanning(SPECTRUM_SIZE).astype(np.float32)
        self._windowed = np.zeros((n_stems, SPECTRUM_SIZE), dtype=np.float32)
        self._spectrum = np.zeros((n_stems, n_bins), dtype=np.complex64)

    # -- audio callback ---------------------------------------------------------------------

    def record_block(self, samples: int, out_ring_fill: int) -> None:
        self.samples_played += samples
        self.out_ring_fill = out_ring_fill

    def record_underrun(self, missing_samples: int) -> None:
        self.underruns += 1
        if missing_samples > self.worst_lateness_samples:
            self.worst_lateness_samples = missing_samples

    # -- worker -----------------------------------------------------------------------------

    def record_compute(self, seconds_per_hop: float, n_hops: int) -> None:
        for _ in range(n_hops):
            self._hop_seconds[self.hops % COMPUTE_HISTORY] = seconds_per_hop
            self.hops += 1
        self.sequence += 1

    def record_output(self, stems: np.ndarray, spectrum_every: int) -> None:
        """Levels of a chunk of output, and a new spectrum column every ``spectrum_every``
        samples.

        Args:
            stems: [shape=(n_samples, n_stems, n_channels)], as the worker produced them.
        """
        n_samples = stems.shape[0]
        if n_samples == 0:
            return
        power = np.mean(np.square(stems, dtype=np.float64), axis=(0, 2))
        np.multiply(10.0, np.log10(np.maximum(power, 1e-12)), out=self._rms_db)
        peak = np.max(np.abs(stems), axis=(0, 2))
        np.multiply(20.0, np.log10(np.maximum(peak, 1e-6)), out=self._peak_db)
        self._append_history(stems)
        self._since_spectrum += n_samples
        if self._since_spectrum >= spectrum_every:
            self._since_spectrum = 0
            end = self._history_end
            np.multiply(
                self._history[:, end - SPECTRUM_SIZE : end], self._window, out=self._windowed
            )
            np.fft.rfft(self._windowed, axis=-1, out=self._spectrum)  # type: ignore[arg-type]
            magnitude = np.abs(self._spectrum) * (2.0 / self._window.sum())
            np.multiply(20.0, np.log10(np.maximum(magnitude, 1e-6)), out=self._spectra_db)
            self.spectrum_count += 1
        self.sequence += 1

    def _append_history(self, stems: np.ndarray) -> None:
        n_samples = min(stems.shape[0], SPECTRUM_SIZE)
        if self._history_end + n_samples > self._history.shape[1]:
            keep = SPECTRUM_SIZE
            self._history[:, :keep] = self._history[:, self._history_end - keep : self._history_end]
            self._history_end = keep
        end = self._history_end
        # (n_samples, n_stems, n_channels) -> (n_stems, n_samples): mono per stem
        np.mean(stems[-n_samples:], axis=2, out=self._history[:, end : end + n_samples].T)
        self._history_end += n_samples

    # -- readers ----------------------------------------------------------------------------

    def snapshot(self) -> TelemetrySnapshot:
        while True:
            before = self.sequence
            hops = self.hops
            if hops <= COMPUTE_HISTORY:
                hop_seconds = self._hop_seconds[:hops].copy()
            else:
                start = hops % COMPUTE_HISTORY
                hop_seconds = np.concatenate([self._hop_seconds[start:], self._hop_seconds[:start]])
            snapshot = TelemetrySnapshot(
                samples_played=self.samples_played,
                underruns=self.underruns,
                worst_lateness_samples=self.worst_lateness_samples,
                device_xruns=self.device_xruns,
                hops=hops,
                hop_seconds=hop_seconds,
                stem_rms_db=self._rms_db.copy(),
                stem_peak_db=self._peak_db.copy(),
                stem_spectra_db=self._spectra_db.copy(),
                spectrum_count=self.spectrum_count,
                out_ring_fill=self.out_ring_fill,
            )
            if self.sequence == before:
                return snapshot
