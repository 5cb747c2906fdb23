"""Training samples: random excerpts of multitrack songs, augmented, drawn reproducibly.

The augmentations are Open-Unmix's and the CWS paper's: a random gain per source (uniform in
``gain_range``), a random left/right swap per source, and, with probability ``remix_probability``,
each source taken from a different song at its own offset (mixing stems across songs: new
mixtures the data set does not hold). The mixture of a sample is always the sum of its sources,
so the targets add up to the input exactly.

Silence-aware: a source whose excerpt is silent (RMS below ``silence_db`` dBFS) gives a target
with nothing to learn but "output nothing", and a normalised mask trained on many of those
learns to starve that stem; unless ``keep_silent`` is set, such excerpts are drawn again (up to
``max_redraws`` times; each song's silent stretches are indexed once, so a redraw is cheap).

Reproducible: batch ``b`` of epoch ``e`` is a function of ``(seed, e, b, rank)`` only, through
its own ``numpy.random.Generator``. So a resumed run draws exactly the batches the killed run
would have drawn, without saving any generator state, and data-parallel ranks draw different
batches from the same songs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .datasets import Track

# Silence is judged on blocks of this many samples (about 93 ms at 44.1 kHz).
_SILENCE_BLOCK = 4096


@dataclass(frozen=True)
class SamplingConfig:
    """Attributes:
    excerpt_s: length of a training excerpt in seconds.
    gain_range: per-source gain drawn uniformly from this range (linear).
    channel_swap_probability: chance that a source's left and right are swapped.
    remix_probability: chance that a sample's sources come from different songs.
    silence_db: an excerpt of a source below this RMS (dBFS) is silent.
    keep_silent: train on excerpts whose target source is silent too.
    max_redraws: how often a silent source's excerpt is drawn again before it is kept.
    pitch_semitones, tempo_change: each stem of each song is rendered ``variants`` more times,
        at a pitch shift uniform in +-``pitch_semitones`` and a tempo factor uniform in
        1 +- ``tempo_change`` (``augment.pitch_tempo_variants``); 0 and 0: none.
    variants: how many pitch and tempo variants per stem.
    variant_probability: chance that a source is taken from one of its variants.
    eq_probability: chance that a source is equalised (``augment.eq_curve``).
    eq_max_db: the EQ's largest boost or cut per band.
    width_range: per-source stereo width (side scaled by it) drawn uniformly from this range.
    limiter_probability: chance that a mixture is pushed into a limiter (LimitAug).
    limiter_push_db: the gain into the limiter, drawn uniformly from this range.
    The augmentations from ``pitch_semitones`` on need ``data_path`` "spectral".
    """

    excerpt_s: float = 4.0
    gain_range: tuple[float, float] = (0.25, 1.25)
    channel_swap_probability: float = 0.5
    remix_probability: float = 0.5
    silence_db: float = -60.0
    keep_silent: bool = False
    max_redraws: int = 10
    pitch_semitones: float = 0.0
    tempo_change: float = 0.0
    variants: int = 1
    variant_probability: float = 0.5
    eq_probability: float = 0.0
    eq_max_db: float = 6.0
    width_range: tuple[float, float] = (1.0, 1.0)
    limiter_probability: float = 0.0
    limiter_push_db: tuple[float, float] = (3.0, 12.0)

    def __post_init__(self) -> None:
        from ..families.config import ConfigError

        def number(name: str, low: float, high: float) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"sampling {name} must be a number, got {value!r}.")
            if not low <= value <= high:
                raise ConfigError(f"sampling {name} must be in [{low:g}, {high:g}], got {value}.")

        number("excerpt_s", 0.05, 600.0)
        for name in (
            "channel_swap_probability",
            "remix_probability",
            "variant_probability",
            "eq_probability",
            "limiter_probability",
        ):
            number(name, 0.0, 1.0)
        number("silence_db", -200.0, 0.0)
        number("max_redraws", 0, 10_000)
        number("pitch_semitones", 0.0, 12.0)
        number("tempo_change", 0.0, 0.5)
        number("variants", 1, 16)
        number("eq_max_db", 0.0, 24.0)
        for name, low, high in (
            ("gain_range", 0.0, 100.0),
            ("width_range", 0.0, 4.0),
            ("limiter_push_db", 0.0, 40.0),
        ):
            pair = getattr(self, name)
            if (
                len(pair) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
                or not low <= pair[0] <= pair[1] <= high
            ):
                raise ConfigError(
                    f"sampling {name} must be two numbers low <= high in [{low:g}, {high:g}], "
                    f"got {list(pair)}."
                )

    @property
    def pitch_tempo(self) -> bool:
        return self.pitch_semitones > 0 or self.tempo_change > 0

    def waveform_only(self) -> SamplingConfig:
        """These settings with every augmentation that only the spectral path draws off."""
        return dataclasses.replace(
            self,
            pitch_semitones=0.0,
            tempo_change=0.0,
            eq_probability=0.0,
            width_range=(1.0, 1.0),
            limiter_probability=0.0,
        )

    @property
    def spectral_only(self) -> list[str]:
        """The augmentations switched on that only the spectral data path draws."""
        names = []
        if self.pitch_tempo:
            names.append("pitch/tempo")
        if self.eq_probability > 0:
            names.append("eq")
        if self.width_range != (1.0, 1.0):
            names.append("width")
        if self.limiter_probability > 0:
            names.append("limiter")
        return names


class ExcerptSampler:
    """Draws augmented batches from tracks held in memory.

    Args:
        tracks: the songs; every one must hold the same stems in the same order.
        config: what to draw.
        sample_rate: of the tracks.
    """

    def __init__(
        self, tracks: Sequence[Track], config: SamplingConfig, sample_rate: int = 44100
    ) -> None:
        if not tracks:
            raise ValueError("ExcerptSampler needs at least one track")
        self.config = config
        self.stems = tuple(tracks[0].stems)
        self.excerpt_samples = round(config.excerpt_s * sample_rate)
        # (n_stems, n_samples, 2) per song, float32; songs shorter than an excerpt are padded
        self._sources = [self._padded(track.stack()) for track in tracks]
        self._loud = [self._loud_block_starts(sources) for sources in self._sources]
        self._lengths = [sources.shape[1] for sources in self._sources]
        # every song's sources on a GPU, after ``to``: (n_songs, n_stems, longest, 2)
        self._held: torch.Tensor | None = None

    def _padded(self, sources: np.ndarray) -> np.ndarray:
        short = self.excerpt_samples - sources.shape[1]
        if short > 0:
            sources = np.pad(sources, ((0, 0), (0, short), (0, 0)))
        return np.ascontiguousarray(sources, dtype=np.float32)

    def _loud_block_starts(self, sources: np.ndarray) -> np.ndarray:
        """[shape=(n_stems, n_starts)] bool: is the excerpt starting at block ``i`` loud?"""
        n_blocks = sources.shape[1] // _SILENCE_BLOCK
        blocks = sources[:, : n_blocks * _SILENCE_BLOCK].reshape(len(sources), n_blocks, -1)
        energy = np.mean(np.square(blocks, dtype=np.float64), axis=2)  # (n_stems, n_blocks)
        per_excerpt = max(1, self.excerpt_samples // _SILENCE_BLOCK)
        n_starts = max(1, n_blocks - per_excerpt + 1)
        kernel = np.ones(per_excerpt) / per_excerpt
        threshold = 10.0 ** (self.config.silence_db / 10.0)
        return (
            np.stack(
                [np.convolve(e, kernel, mode="full")[per_excerpt - 1 :][:n_starts] for e in energy]
            )
            >= threshold
        )

    @property
    def sources(self) -> list[np.ndarray]:
        """Every song's padded sources, [shape=(n_stems, n_samples, 2)] float32."""
        return self._sources

    def release_sources(self) -> None:
        """Forget the audio (a sampler that only draws plans, as the spectral one, needs none
        of it: 770 MB for MUSDB18-7's train split)."""
        self._sources = []

    def __len__(self) -> int:
        return len(self._lengths)

    def _start(self, rng: np.random.Generator, song: int, loud_blocks: np.ndarray) -> int:
        """A random excerpt start in ``song`` among ``loud_blocks`` (block indices), jittered
        within its block so that every sample can start an excerpt; anywhere if none."""
        latest = self._lengths[song] - self.excerpt_samples
        if len(loud_blocks) == 0:
            return int(rng.integers(0, latest + 1))
        start = int(loud_blocks[rng.integers(0, len(loud_blocks))]) * _SILENCE_BLOCK
        return min(start + int(rng.integers(0, _SILENCE_BLOCK)), latest)

    def _draw(self, rng: np.random.Generator, stems: slice) -> tuple[int, int]:
        """(song, start) where every stem in ``stems`` is loud, drawn again up to
        ``max_redraws`` times; the last draw is kept when none is (or when silence is kept)."""
        n_songs = len(self._lengths)
        for attempt in range(self.config.max_redraws + 1):
            song = int(rng.integers(0, n_songs))
            if self.config.keep_silent:
                return song, self._start(rng, song, np.arange(self._loud[song].shape[1]))
            loud = np.flatnonzero(self._loud[song][stems].all(axis=0))
            if len(loud) or attempt == self.config.max_redraws:
                return song, self._start(rng, song, loud)
        raise AssertionError("unreachable")

    def plan(self, rng: np.random.Generator) -> list[tuple[int, int, float, bool]]:
        """One sample's sources: (song, start sample, gain, channels swapped) per stem."""
        config = self.config
        remix = rng.random() < config.remix_probability
        if not remix:
            song, start = self._draw(rng, slice(None))
        plan = []
        for stem in range(len(self.stems)):
            if remix:
                song, start = self._draw(rng, slice(stem, stem + 1))
            gain = rng.uniform(*config.gain_range)
            swap = bool(rng.random() < config.channel_swap_probability)
            plan.append((song, start, gain, swap))
        return plan

    def _sample(self, rng: np.random.Generator, out_sources: np.ndarray) -> None:
        """One sample into ``out_sources`` [shape=(n_stems, 2, excerpt)]."""
        for stem, (song, start, gain, swap) in enumerate(self.plan(rng)):
            excerpt = self._sources[song][stem, start : start + self.excerpt_samples]
            if swap:
                excerpt = excerpt[:, ::-1]
            out_sources[stem] = (excerpt * gain).T

    def to(self, device: torch.device | str) -> ExcerptSampler:
        """Hold the songs on ``device`` and cut the batches there: one gather per batch instead
        of a copy per excerpt on one CPU core (150 ms for 32 excerpts of 3 s, longer than a GPU
        takes to train on them) and a 135 MB copy to the GPU. The plans are drawn on the CPU
        from the same generator, so the batches are the CPU path's, value for value."""
        longest = max(self._lengths)
        held = torch.zeros((len(self._lengths), len(self.stems), longest, 2), device=device)
        for song, sources in enumerate(self._sources):
            held[song, :, : sources.shape[1]] = torch.from_numpy(sources).to(device)
        self._held = held
        self._sources = []  # the held copy is the one read from now on
        return self

    def _held_batch(self, rng: np.random.Generator, batch_size: int) -> torch.Tensor:
        assert self._held is not None
        device = self._held.device
        plans = [part for _ in range(batch_size) for part in self.plan(rng)]
        song = torch.tensor([part[0] for part in plans], device=device)
        start = torch.tensor([part[1] for part in plans], device=device)
        # float32 first, as numpy rounds a Python float times a float32 array
        gain = torch.tensor(np.array([part[2] for part in plans], np.float32), device=device)
        swap = torch.tensor([part[3] for part in plans], device=device)
        stem = torch.arange(len(self.stems), device=device).repeat(batch_size)
        where = start[:, None] + torch.arange(self.excerpt_samples, device=device)
        excerpts = self._held[song[:, None], stem[:, None], where]  # (B * S, n, 2)
        excerpts = torch.where(swap[:, None, None], excerpts.flip(-1), excerpts)
        excerpts = excerpts * gain[:, None, None]
        shape = (batch_size, len(self.stems), self.excerpt_samples, 2)
        return excerpts.reshape(shape).transpose(2, 3).contiguous()

    def batch(self, seed: int, epoch: int, index: int, batch_size: int, rank: int = 0) -> Batch:
        """Batch ``index`` of ``epoch``: the same arguments always give the same batch."""
        rng = np.random.default_rng([seed, epoch, index, rank])
        if self._held is not None:
            targets = self._held_batch(rng, batch_size)
            return Batch(mixture=targets.sum(dim=1), targets=targets)
        sources = np.empty((batch_size, len(self.stems), 2, self.excerpt_samples), np.float32)
        for item in range(batch_size):
            self._sample(rng, sources[item])
        targets = torch.from_numpy(sources)
        return Batch(mixture=targets.sum(dim=1), targets=targets)


@dataclass(frozen=True)
class Batch:
    """Attributes:
    mixture: [shape=(batch, 2, n_samples)], the sum of the targets.
    targets: [shape=(batch, n_stems, 2, n_samples)].
    """

    mixture: torch.Tensor
    targets: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.mixture.to(device), self.targets.to(device))


def whole_track_batch(track: Track) -> Batch:
    """A whole song as one batch item, for validation: its own mixture (MUSDB's is coded)."""
    targets = torch.from_numpy(np.ascontiguousarray(track.stack().transpose(0, 2, 1)))
    mixture = torch.from_numpy(np.ascontiguousarray(track.mixture.T))
    return Batch(mixture=mixture[None], targets=targets[None])
