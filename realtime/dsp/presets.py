"""Spectral presets: the frame geometry that fixes a model's algorithmic latency.

Thread contract: plain immutable data and pure functions. Windows are computed once, when a
processor is prepared, never on the audio path.

A preset belongs to the *model* (a model is trained for one frame geometry), not to the run.
Three are defined in DESIGN.md ("Spectral front end and latency"); two more are here to price
what ``studio`` gains by (README, "What latency is worth"):

- ``studio``: symmetric 4096-sample Hann analysis window, hop 1024, the same window for
  synthesis (weighted overlap-add normalised so that analysis x synthesis sums to one).
- ``stage``: ``studio``'s 4096-sample analysis window made asymmetric, with a 1024-sample
  synthesis window and hop 512: 23 ms, the delay of standing 8 m from the drummer. It asks how
  much of ``studio``'s gain a model keeps at a quarter of its delay, with ``studio``'s
  frequency resolution and half ``live``'s frames.
- ``live-fine``: ``live``'s synthesis window and hop (so ``live``'s delay) behind ``studio``'s
  4096-sample analysis window: what frequency resolution alone is worth at 11.6 ms.
- ``stage``, ``live-fine``, ``live`` and ``ultra``: a long *asymmetric* analysis window (frequency
  resolution) with a short synthesis window at its newest end (delay). Their product is a Hann
  window of the synthesis length, which overlap-adds to exactly one at half its length, so the
  pair reconstructs perfectly. The design follows Mauler and Martin's low-delay
  analysis-synthesis scheme as used for low-latency STFT enhancement (e.g. Wang et al.,
  "STFT-domain neural speech enhancement with very low algorithmic latency").

The delay a preset adds is fixed by where the synthesis window starts: a sample leaves the
overlap-add only when the newest frame that still weights it has been computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

SAMPLE_RATE = 44100
#: The rates a file, a model or a caller may have: what ``load_audio`` and the model checks accept.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000


def _periodic_hann(length: int) -> np.ndarray:
    """Periodic Hann window, sum-to-constant at hop ``length / 2`` [shape=(length,), float64]."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


@dataclass(frozen=True)
class SpectralPreset:
    """One STFT frame geometry.

    Attributes:
        name: the preset's name (``studio``, ``stage``, ``live-fine``, ``live``, ``ultra``).
        n_fft: analysis window length and FFT size, in samples.
        hop: samples between frames.
        synthesis_length: length of the synthesis window's support, at the newest end of the
            frame; equal to ``n_fft`` for a symmetric preset.
        sample_rate: the rate the geometry was designed for, in Hz.
    """

    name: str
    n_fft: int
    hop: int
    synthesis_length: int
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if not 0 < self.hop <= self.synthesis_length <= self.n_fft:
            raise ValueError(
                f"preset {self.name!r} needs 0 < hop <= synthesis_length <= n_fft, "
                f"got hop={self.hop}, synthesis_length={self.synthesis_length}, n_fft={self.n_fft}"
            )
        if self.synthesis_length % self.hop:
            raise ValueError(f"preset {self.name!r}: synthesis_length must be a multiple of hop")

    @property
    def is_symmetric(self) -> bool:
        return self.synthesis_length == self.n_fft

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @cached_property
    def _windows(self) -> tuple[np.ndarray, np.ndarray]:
        if self.is_symmetric:
            analysis = _periodic_hann(self.n_fft)
            synthesis = analysis.copy()
        else:
            # Rising half of a long Hann, then the falling half of a short one: the frame's
            # newest samples get the short window's shape, so synthesis can stay short.
            half = self.synthesis_length // 2
            rising = np.sqrt(_periodic_hann(2 * (self.n_fft - half))[: self.n_fft - half])
            falling = np.sqrt(_periodic_hann(2 * half)[half:])
            analysis = np.concatenate([rising, falling])
            synthesis = np.zeros(self.n_fft)
            support = slice(self.n_fft - self.synthesis_length, self.n_fft)
            synthesis[support] = _periodic_hann(self.synthesis_length) / analysis[support]
        # Weighted overlap-add: divide by the frame-summed product so that it is exactly one.
        product_sum = (analysis * synthesis).reshape(-1, self.hop).sum(axis=0)
        if np.ptp(product_sum) > 1e-9 * product_sum.max():
            raise ValueError(f"preset {self.name!r} does not reconstruct perfectly at its hop")
        synthesis /= product_sum.mean()
        analysis.setflags(write=False)
        synthesis.setflags(write=False)
        return analysis, synthesis

    @property
    def analysis_window(self) -> np.ndarray:
        """[shape=(n_fft,), float64, read-only]"""
        return self._windows[0]

    @property
    def synthesis_window(self) -> np.ndarray:
        """[shape=(n_fft,), float64, read-only], zero before the synthesis support."""
        return self._windows[1]

    @property
    def synthesis_start(self) -> int:
        """Index in the frame of the synthesis window's first non-zero sample."""
        return int(np.flatnonzero(self.synthesis_window)[0])

    @property
    def latency_samples(self) -> int:
        """The delay the overlap-add imposes, in samples.

        When a frame ending at sample ``t`` is computed, the samples it completes are the
        ``hop`` samples from frame index ``synthesis_start`` on (no later frame weights them);
        the oldest of them is ``n_fft - 1 - synthesis_start`` samples old. This figure is what
        the stream processor reports; ``tests/realtime/test_processor.py`` measures it with an
        impulse and asserts that the two agree.
        """
        return self.n_fft - 1 - self.synthesis_start

    def latency_ms(self, sample_rate: int | None = None) -> float:
        return 1000.0 * self.latency_samples / (sample_rate or self.sample_rate)

    def subband(self, n_bands: int) -> SpectralPreset:
        """The same geometry for each of ``n_bands`` decimated subbands.

        A subband signal runs at ``sample_rate / n_bands``, so window, hop and synthesis
        lengths shrink by ``n_bands``: one subband frame still spans one full-band hop, and a
        subband model takes one step per full-band hop. Its ``sample_rate`` is the subband rate,
        rounded down (only informative: 44100 / 8 is not a whole number).
        """
        for what, length in (
            ("hop", self.hop),
            ("analysis window", self.n_fft),
            ("synthesis window", self.synthesis_length),
        ):
            if length % n_bands:
                raise ValueError(
                    f"The {what} of preset {self.name!r} ({length} samples) is not a multiple of "
                    f"the {n_bands} subbands: choose a number of bands that divides it."
                )
        return SpectralPreset(
            name=f"{self.name}/{n_bands}",
            n_fft=self.n_fft // n_bands,
            hop=self.hop // n_bands,
            synthesis_length=self.synthesis_length // n_bands,
            sample_rate=self.sample_rate // n_bands,
        )


PRESETS: dict[str, SpectralPreset] = {
    preset.name: preset
    for preset in (
        SpectralPreset("studio", n_fft=4096, hop=1024, synthesis_length=4096),
        SpectralPreset("stage", n_fft=4096, hop=512, synthesis_length=1024),
        SpectralPreset("live-fine", n_fft=4096, hop=256, synthesis_length=512),
        SpectralPreset("live", n_fft=2048, hop=256, synthesis_length=512),
        SpectralPreset("ultra", n_fft=1024, hop=128, synthesis_length=256),
    )
}


def get_preset(name: str) -> SpectralPreset:
    """The preset called ``name``; a ValueError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ValueError(f"Unknown preset {name!r}: choose one of {known}.") from None
