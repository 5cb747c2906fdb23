"""The ``bsrnn`` family: a band-split RNN, made causal and small enough to run per hop.

After Luo and Yu, "Music Source Separation with Band-Split RNN" (IEEE/ACM TASLP 2023): the
spectrum is split into bands, narrow at low frequencies and wider above (``BAND_LAYOUTS``); each
band's features (the log-compressed magnitudes of every channel, or for complex masks the
log-compressed spectrum's real and imaginary parts) are normalised over the band, frame by frame
(a layer norm), and projected to a shared width D, with the band's level (the RMS of its
compressed values, which the norm takes away) as one more input. A stack of blocks follows, each
of two residual parts, each after a layer norm:

- over time: a *unidirectional* LSTM per band (one LSTM whose weights the bands share, the bands
  run as a batch); its hidden and cell states are the stream state;
- across bands: a bidirectional LSTM along the band axis within each frame. It reads the bands
  of one frame and no other frame, so it is causal in time, and it keeps no state.

A head per band (layer norm, a per-band hidden layer with tanh, a per-band linear layer) gives
each of the band's bins a logit per stem and channel, two with complex masks; ``activate_masks``
or ``activate_complex_masks`` turn them into masks.

Every layer but the time LSTM works on one frame, so one forward path serves a whole sequence
and a single frame with the LSTM states carried (``state_spec``). Bands of one width form a group
whose per-band weights run as one batched matrix product (``BandLinear``): a layout of five band
widths costs five products per layer, not one per band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as functional
from torch import nn

from ...realtime.dsp.presets import SpectralPreset
from ..layers.front_end import StftFrontEnd
from ..layers.masks import activate_complex_masks, activate_masks, parts_magnitude
from ..layers.streaming import MaskNet, StateSpec
from .config import ConfigError, SeparatorConfig
from .registry import ModelFamily

#: Band layouts: (up to this frequency, bands this wide), both in Hz, in order; above the last
#: edge, one band up to the Nyquist frequency. ``fine`` follows the paper's finest split (100 Hz
#: bands below 1 kHz, then 250 Hz, 500 Hz, 1 kHz and 2 kHz: 40 bands at 44.1 kHz and the live
#: preset); ``coarse`` has bands twice as wide, half as many.
BAND_LAYOUTS: dict[str, tuple[tuple[float, float], ...]] = {
    "coarse": ((1000, 200), (4000, 500), (8000, 1000), (16000, 2000)),
    "fine": ((1000, 100), (4000, 250), (8000, 500), (16000, 1000), (20000, 2000)),
}
#: A band narrower than this would leave its layer norm little to normalise.
MIN_BAND_BINS = 2
# Keeps the compressed spectrum's scale defined in a silent bin.
MAGNITUDE_FLOOR = 1e-8


@dataclass(frozen=True)
class BandGroup:
    """Bands of one width, side by side from bin ``start``."""

    start: int
    n_bands: int
    width: int

    @property
    def stop(self) -> int:
        return self.start + self.n_bands * self.width


def band_groups(preset: SpectralPreset, layout: str) -> tuple[BandGroup, ...]:
    """The layout's bands in the preset's bins: every bin in exactly one band, in order."""
    bin_hz = preset.sample_rate / preset.n_fft
    groups: list[BandGroup] = []
    start = 0
    for edge_hz, width_hz in BAND_LAYOUTS[layout]:
        width = max(MIN_BAND_BINS, round(width_hz / bin_hz))
        edge = min(preset.n_bins, round(edge_hz / bin_hz))
        n_bands = min(round((edge - start) / width), (preset.n_bins - start) // width)
        if n_bands > 0:
            groups.append(BandGroup(start, n_bands, width))
            start += n_bands * width
    if start < preset.n_bins:
        groups.append(BandGroup(start, 1, preset.n_bins - start))
    return tuple(groups)


@dataclass(frozen=True)
class BsrnnConfig(SeparatorConfig):
    """Attributes:
    bands: the band layout, a name in ``BAND_LAYOUTS``.
    width: D, the shared width of every band's features, the time LSTM and the head's hidden
        layer; the band LSTM has D / 2 per direction.
    n_blocks: blocks of (time LSTM, band LSTM).
    """

    family = "bsrnn"

    bands: str = "fine"
    width: int = 64
    n_blocks: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bands not in BAND_LAYOUTS:
            raise ConfigError(
                f"Unknown band layout {self.bands!r}: choose one of {', '.join(BAND_LAYOUTS)}."
            )
        if self.width < 2 or self.width % 2:
            raise ConfigError(f"width must be even and at least 2, got {self.width}.")
        if self.n_blocks < 1:
            raise ConfigError(f"n_blocks must be at least 1, got {self.n_blocks}.")

    @property
    def band_groups(self) -> tuple[BandGroup, ...]:
        return band_groups(self.spectral_preset, self.bands)

    @property
    def n_bands(self) -> int:
        return sum(group.n_bands for group in self.band_groups)


class BandLinear(nn.Module):
    """A linear layer of its own for each of ``n_bands`` bands: [shape=(n_bands, n_rows,
    in_features)] -> [shape=(n_bands, n_rows, out_features)], one batched matrix product."""

    def __init__(self, n_bands: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n_bands, self.in_features, self.out_features = n_bands, in_features, out_features
        # nn.Linear's initialisation, band by band
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(n_bands, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_bands, 1, out_features))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def flops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Multiply-adds x 2, for ``cost.py``."""
        return 2 * self.in_features * output.numel()


class _Block(nn.Module):
    """Over time per band (unidirectional LSTM), then across the bands of each frame
    (bidirectional LSTM), each residual after a layer norm.

    Works band-major on rows, [shape=(n_bands, batch * n_frames, width)], so that the band LSTM
    reads its input as it lies (the bands its sequence, the rows its batch) and the time LSTM
    after one reshape (each band of each item a sequence). Reshapes leave the rows to -1 and
    name every other size from the configuration: a size read from a tensor would become shape
    arithmetic in the exported graph, a handful of small operators per reshape, every hop.
    """

    def __init__(self, n_bands: int, width: int) -> None:
        super().__init__()
        self.n_bands, self.width = n_bands, width
        self.time_norm = nn.LayerNorm(width)
        self.time_lstm = nn.LSTM(width, width, batch_first=True)
        self.time_out = nn.Linear(width, width)
        self.band_norm = nn.LayerNorm(width)
        self.band_lstm = nn.LSTM(width, width // 2, bidirectional=True)
        self.band_out = nn.Linear(width, width)

    def forward(
        self, x: torch.Tensor, time_h: torch.Tensor, time_c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [shape=(n_bands, batch * n_frames, width)]; time_h, time_c [shape=(n_bands, batch,
        width)], this block's time LSTM state. Returns the new x and state."""
        n_bands, width = self.n_bands, self.width
        batch = time_h.shape[1]
        # (bands, batch * n_frames, width) -> (bands * batch, n_frames, width)
        sequences = self.time_norm(x).reshape(n_bands * batch, -1, width)
        state = (time_h.reshape(1, -1, width), time_c.reshape(1, -1, width))
        recurrent, (new_h, new_c) = self.time_lstm(sequences, state)
        x = x + self.time_out(recurrent.reshape(n_bands, -1, width))
        # Each frame's bands a sequence, the rows its batch: no frame sees another.
        frames = self.band_norm(x)
        # A zero state computed from the input (two bands' worth: there are always more): the
        # LSTM's own, or torch.zeros_like, would be a constant of the traced number of rows.
        start = frames[:2, :, : self.band_lstm.hidden_size] * 0.0
        across, _ = self.band_lstm(frames, (start, start))
        x = x + self.band_out(across)
        return x, new_h.reshape(n_bands, -1, width), new_c.reshape(n_bands, -1, width)


class BsrnnMaskNet(MaskNet):
    def __init__(self, config: BsrnnConfig) -> None:
        super().__init__()
        self.config = config
        self.groups = config.band_groups
        self.n_bands = config.n_bands
        self.n_parts = n_parts = config.n_mask_parts
        width, n_channels, n_stems = config.width, config.n_channels, len(config.stems)
        # Per band: its bins of every channel (twice for real and imaginary parts), and its level.
        self.split = nn.ModuleList(
            BandLinear(group.n_bands, group.width * n_channels * n_parts + 1, width)
            for group in self.groups
        )
        self.blocks = nn.ModuleList(_Block(self.n_bands, width) for _ in range(config.n_blocks))
        self.head_norm = nn.LayerNorm(width)
        self.head_hidden = BandLinear(self.n_bands, width, width)
        # Logits per band ordered (parts, stems, channels, bins): the imaginary half second.
        head_out = [
            BandLinear(group.n_bands, width, n_parts * n_stems * n_channels * group.width)
            for group in self.groups
        ]
        if n_parts == 2:
            # Imaginary logits of zero at first: training starts from the magnitude mask.
            with torch.no_grad():
                for layer in head_out:
                    layer.weight[..., layer.out_features // 2 :] = 0.0
                    layer.bias[..., layer.out_features // 2 :] = 0.0
        self.head_out = nn.ModuleList(head_out)

    def state_spec(self) -> tuple[StateSpec, ...]:
        shape = (self.config.n_blocks, self.n_bands, 1, self.config.width)
        return (StateSpec("time_h", shape, 2), StateSpec("time_c", shape, 2))

    def _split_bands(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, channels, bins[, 2]) -> (bands, batch * n_frames, width)."""
        if self.n_parts == 1:
            compressed = torch.log1p(features)
        else:
            magnitude = parts_magnitude(features)
            # The spectrum with its magnitude log-compressed, its phase kept.
            scale = torch.log1p(magnitude) / magnitude.clamp_min(MAGNITUDE_FLOOR)
            compressed = features * scale.unsqueeze(-1)
        # (batch, n_frames, channels, bins[, 2]) -> (bins, batch, n_frames, channels[, 2]): one
        # transpose for all bands, then each group is a slice of the first axis
        by_bin = compressed.movedim(3, 0)
        per_bin = self.config.n_channels * self.n_parts
        bands = []
        for group, split in zip(self.groups, self.split, strict=True):
            n_features = group.width * per_bin
            # (bands * width, batch, n_frames, channels[, 2]) -> (bands, rows, width *
            # channels[ * 2])
            x = by_bin[group.start : group.stop].reshape(group.n_bands, group.width, -1, per_bin)
            x = x.transpose(1, 2).reshape(group.n_bands, -1, n_features)
            # The band's level, which the norm takes away: the RMS of its compressed values.
            level = torch.linalg.vector_norm(x, dim=-1, keepdim=True) / math.sqrt(n_features)
            x = functional.layer_norm(x, (n_features,))
            bands.append(split(torch.cat([x, level], dim=-1)))
        return torch.cat(bands, dim=0)

    def _masks(self, x: torch.Tensor, n_frames_like: torch.Tensor) -> torch.Tensor:
        """(bands, rows, width) -> masks (batch, n_frames, stems, channels, bins[, 2]), the
        batch and frames those of ``n_frames_like`` [shape=(batch, n_frames, ...)]."""
        config = self.config
        x = torch.tanh(self.head_hidden(self.head_norm(x)))
        logits, first = [], 0
        for group, out in zip(self.groups, self.head_out, strict=True):
            y = out(x[first : first + group.n_bands])
            first += group.n_bands
            shape = (self.n_parts, len(config.stems), config.n_channels, group.width)
            # (bands, rows, parts * stems * channels * width) -> (parts, rows, stems, channels,
            # bands * width): the parts stay apart until the masks interleave them
            y = y.reshape(group.n_bands, -1, *shape).permute(2, 1, 3, 4, 0, 5)
            logits.append(y.reshape(*shape[:1], -1, *shape[1:3], group.n_bands * group.width))
        # (parts, rows, stems, channels, bins) -> (parts, batch, n_frames, stems, channels,
        # bins)
        all_bins = torch.cat(logits, dim=4).unflatten(1, n_frames_like.shape[:2])
        if self.n_parts == 1:
            return activate_masks(all_bins[0], config.mask, stem_dim=2)
        return activate_complex_masks(all_bins[0], all_bins[1], config.mask, stem_dim=2)

    def forward(
        self, features: torch.Tensor, time_h: torch.Tensor, time_c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masks for a run of frames, continuing from the given state.

        Args:
            features: magnitudes [shape=(batch, n_frames, n_channels, n_bins)], or for complex
                masks real and imaginary parts [shape=(..., n_bins, 2)].
            time_h, time_c: [shape=(n_blocks, n_bands, batch, width)], the time LSTMs' state.

        Returns:
            masks [shape=(batch, n_frames, n_stems, n_channels, n_bins)] ((real, imaginary)
            last for complex masks) and the new state.
        """
        x = self._split_bands(features)
        new_h, new_c = [], []
        for index, block in enumerate(self.blocks):
            x, h, c = block(x, time_h[index], time_c[index])
            new_h.append(h)
            new_c.append(c)
        return self._masks(x, features), torch.stack(new_h), torch.stack(new_c)


def build_front_end(config: BsrnnConfig) -> StftFrontEnd:
    return StftFrontEnd(config.spectral_preset, config.n_channels)


# Chosen so that the live preset's step stays well under 0.35 of the hop in onnxruntime on one
# core with either mask domain (README, "Model families": parameters, MFLOPs, p50/p99 per hop).
SIZES: dict[str, dict[str, Any]] = {
    "small": {"bands": "coarse", "width": 32, "n_blocks": 2},
    "medium": {"bands": "fine", "width": 64, "n_blocks": 3},
    "default": {},
}

FAMILY = ModelFamily("bsrnn", BsrnnConfig, BsrnnMaskNet, build_front_end, SIZES)
