"""Training batches drawn as spectra: every song analysed once, not every batch.

The front end (STFT, or PQMF then STFT) is linear and every augmentation the loop applies per
source is linear too (gain, channel swap, stereo width, EQ, a limiter's gain that acts on every
source alike). So the spectra of a sample are the stored spectra of its sources, scaled, and the
mixture's spectrum is their sum: only sources drawn from a pitch and tempo variant are analysed
per batch (from the variant's audio, with enough history that the frames equal the whole
variant's). The waveform path (``training_data.ExcerptSampler``) analysed five signals per
sample (the mixture and four targets) every batch, which cost a quarter of a training step.

Frames are taken on the song's own hop grid: excerpt starts are drawn exactly as the waveform
path draws them (the same silence-aware draw, the same generator) and rounded down to a hop.
The first frames of an excerpt therefore see the song before it, as the stream does, where the
waveform path saw zeros.

Spectra are stored as float16 (real, imaginary) pairs: 38 MB per 7-second stereo song at the
``live`` preset (4 stems), -96 dB quantisation, as the decoded-track cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..layers.front_end import FrontEnd
from . import augment
from .datasets import Track
from .training_data import ExcerptSampler, SamplingConfig


@dataclass(frozen=True)
class SpectralBatch:
    """Attributes:
    mixture: [shape=(batch, n_frames, n_feature_channels, n_bins)] complex, the targets' sum.
    targets: [shape=(batch, n_frames, n_stems, n_feature_channels, n_bins)] complex.
    """

    mixture: torch.Tensor
    targets: torch.Tensor

    def to(self, device: torch.device | str) -> SpectralBatch:
        return SpectralBatch(self.mixture.to(device), self.targets.to(device))


@torch.no_grad()
def _analyse(front_end: FrontEnd, sources: np.ndarray) -> torch.Tensor:
    """[shape=(n, n_samples, 2)] -> [shape=(n, n_frames, n_feature_channels, n_bins, 2)]
    float16."""
    waveform = torch.from_numpy(np.ascontiguousarray(sources.transpose(0, 2, 1)))
    spectra = front_end.analyze(waveform.float())
    return torch.view_as_real(spectra).to(torch.float16).contiguous()


class SpectralSampler:
    """Draws augmented batches of spectra from tracks analysed once.

    Args:
        tracks: the songs; every one must hold the same stems in the same order.
        config: what to draw (``SamplingConfig``; every augmentation).
        front_end: the model's front end (its analysis, hop and bin frequencies).
        sample_rate: of the tracks.
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        config: SamplingConfig,
        front_end: FrontEnd,
        sample_rate: int = 44100,
    ) -> None:
        self.config = config
        self.sample_rate = sample_rate
        self.draws = ExcerptSampler(tracks, config, sample_rate)
        self.stems = self.draws.stems
        self.hop = int(front_end.hop)
        self.excerpt_frames = max(1, self.draws.excerpt_samples // self.hop)
        self.n_channels = int(front_end.n_channels)
        self.n_feature_channels = int(front_end.n_feature_channels)
        self.frequencies = front_end.bin_frequencies()  # (feature channels, bins)
        # per song: (n_stems, n_frames, feature channels, bins, 2) float16
        self._spectra = [_analyse(front_end, sources) for sources in self.draws.sources]
        self.draws.release_sources()
        # Per song, per stem: the pitch and tempo variants as float16 audio, analysed per
        # excerpt when drawn. Stored as spectra they doubled a run's memory (3 GB more for
        # MUSDB18-7 at the live preset), and about half of a batch's sources come from them.
        self._front_end = front_end
        self._variants: list[list[list[np.ndarray]]] = []
        if config.pitch_tempo:
            rendered = augment.pitch_tempo_variants(
                tracks, config.variants, config.pitch_semitones, config.tempo_change
            )
            for song in rendered:
                self._variants.append(
                    [[self._padded(audio).astype(np.float16) for audio in stem] for stem in song]
                )
        # frames of warm-up analysed before a variant's excerpt and dropped: the analysis
        # window and, for a subband front end, the filter bank's history (far shorter)
        self._warmup_frames = -(-(2 * int(front_end.preset.n_fft)) // self.hop)

    def _padded(self, audio: np.ndarray) -> np.ndarray:
        short = self.draws.excerpt_samples - audio.shape[0]
        return np.pad(audio, ((0, short), (0, 0))) if short > 0 else audio

    @torch.no_grad()
    def _variant_frames(self, audio: np.ndarray, first: int, n_frames: int) -> torch.Tensor:
        """Frames ``first`` to ``first + n_frames`` of a variant on its own hop grid,
        [shape=(n_frames, feature channels, bins, 2)] float32: the excerpt analysed with
        enough of the song before it that the frames equal those of the whole song."""
        warmup = min(first, self._warmup_frames)
        start, stop = (first - warmup) * self.hop, (first + n_frames) * self.hop
        excerpt = torch.from_numpy(audio[start:stop].T.astype(np.float32))
        spectra = self._front_end.analyze(excerpt[None])[0, warmup:]
        return torch.view_as_real(spectra)

    @property
    def nbytes(self) -> int:
        total = sum(s.numel() * 2 for s in self._spectra)
        total += sum(v.nbytes for song in self._variants for stem in song for v in stem)
        return total

    def __len__(self) -> int:
        return len(self._spectra)

    def batch(
        self, seed: int, epoch: int, index: int, batch_size: int, rank: int = 0
    ) -> SpectralBatch:
        """Batch ``index`` of ``epoch``: the same arguments always give the same batch."""
        config = self.config
        rng = np.random.default_rng([seed, epoch, index, rank])
        n_stems, n_frames = len(self.stems), self.excerpt_frames
        n_bins = self.frequencies.shape[1]
        gathered = torch.empty(
            (batch_size, n_stems, n_frames, self.n_feature_channels, n_bins, 2), dtype=torch.float16
        )
        matrices = np.empty((batch_size, n_stems, 2, 2), np.float32)
        curves = np.ones((batch_size, n_stems, self.n_feature_channels, n_bins), np.float32)
        pushes: list[float | None] = []
        for item in range(batch_size):
            plan = self.draws.plan(rng)
            for stem, (song, start, gain, swap) in enumerate(plan):
                if self._variants and rng.random() < config.variant_probability:
                    audio = self._variants[song][stem][int(rng.integers(0, config.variants))]
                    first = min(start // self.hop, audio.shape[0] // self.hop - n_frames)
                    gathered[item, stem] = self._variant_frames(audio, first, n_frames)
                else:
                    spectra = self._spectra[song][stem]
                    first = min(start // self.hop, spectra.shape[0] - n_frames)
                    gathered[item, stem] = spectra[first : first + n_frames]
                width = rng.uniform(*config.width_range)
                matrices[item, stem] = augment.channel_matrix(gain, swap, width)
                if rng.random() < config.eq_probability:
                    curves[item, stem] = augment.eq_curve(rng, self.frequencies, config.eq_max_db)
            limited = rng.random() < config.limiter_probability
            pushes.append(rng.uniform(*config.limiter_push_db) if limited else None)
        sources = torch.view_as_complex(gathered.float())  # (B, S, T, feature channels, F)
        sources = self._mix_channels(sources, torch.from_numpy(matrices))
        scale = torch.from_numpy(curves)[:, :, None]  # (B, S, 1, feature channels, F)
        if any(push is not None for push in pushes):
            scale = scale * self._limiter(sources, scale, pushes)
        if config.eq_probability > 0 or any(push is not None for push in pushes):
            sources = sources * scale
        targets = sources.transpose(1, 2)  # (B, T, S, feature channels, F)
        return SpectralBatch(mixture=targets.sum(dim=2), targets=targets)

    def _mix_channels(self, sources: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
        """Each source's (left, right) through its 2x2 matrix, in every band."""
        batch, n_stems, n_frames, n_features, n_bins = sources.shape
        # feature channels are band-major: (bands, channels)
        split = sources.view(batch, n_stems, n_frames, -1, self.n_channels, n_bins)
        if self.n_channels == 1:  # a mono source: only the gain applies
            return sources * matrices[:, :, 0].sum(-1)[:, :, None, None, None]
        # (B, S, out, in) -> (B, S, 1, 1, out, 1) per input channel
        from_left = matrices[:, :, None, None, :, 0, None]
        from_right = matrices[:, :, None, None, :, 1, None]
        left, right = split[..., 0:1, :], split[..., 1:2, :]
        mixed = from_left * left + from_right * right  # (B, S, T, bands, out, F)
        return mixed.reshape(batch, n_stems, n_frames, n_features, n_bins)

    def _limiter(
        self, sources: torch.Tensor, scale: torch.Tensor, pushes: list[float | None]
    ) -> torch.Tensor:
        """[shape=(B, 1, T, 1, 1)]: each limited mixture's gain per frame (1 elsewhere)."""
        batch, _, n_frames = sources.shape[:3]
        gains = np.ones((batch, n_frames), np.float32)
        # the mixture's energy per frame (Parseval: proportional to the windowed frame's)
        mixture = (sources * scale).sum(dim=1)
        energy = mixture.abs().square().sum(dim=(-2, -1)).numpy()  # (B, T)
        release_frames = 0.1 * self.sample_rate / self.hop  # 100 ms
        for item, push in enumerate(pushes):
            if push is not None:
                gains[item] = augment.limiter_gains(energy[item], push, release_frames)
        return torch.from_numpy(gains)[:, None, :, None, None]
