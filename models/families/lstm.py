"""The ``lstm`` family: an Open-Unmix-style mask network made causal.

Magnitude frames of the mix up to a bandwidth, a learned input mean and scale per bin,
fc -> batch norm -> tanh -> a *unidirectional* multi-layer LSTM -> skip concatenation -> fc ->
batch norm -> relu -> fc -> batch norm -> learned output scale and mean per bin -> one mask per
stem. One shared trunk serves all stems, so streaming costs one LSTM step per hop, not four.

Batch norm in evaluation mode is a fixed affine map per feature: frame by frame, causal. Every
layer works on one frame except the LSTM, whose hidden and cell states are the stream state.

With complex masks (``mask_domain="complex"``) the trunk still reads the magnitudes (computed
from the real and imaginary parts it is given) and the last layer is twice as wide: a real and an
imaginary logit per stem, channel and bin (``activate_complex_masks``). The imaginary half of
the last batch norm starts with a weight of zero, and the learned output mean per bin shifts the
real half only, so training starts from the magnitude mask, and a magnitude model grows into a
complex one (``--init``) as the same function.

``stereo_features`` (complex masks, stereo) adds the mid and side magnitudes, |L + R| / 2 and
|L - R| / 2 (``layers/phase_features.py`` says why), as two more input channels after left and
right: ``fc1``'s new input weights start at zero when a model without them grows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..layers.front_end import StftFrontEnd
from ..layers.masks import activate_complex_masks, activate_masks, parts_magnitude
from ..layers.norm import frame_norm
from ..layers.phase_features import check_stereo_features, mid_side_magnitudes
from ..layers.streaming import MaskNet, StateSpec
from .config import ConfigError, SeparatorConfig
from .registry import ModelFamily


@dataclass(frozen=True)
class LstmConfig(SeparatorConfig):
    """Attributes:
    hidden_size: width of the trunk and the LSTM.
    n_layers: LSTM layers.
    bandwidth_hz: highest frequency the network reads (masks still cover every bin).
    dropout: between LSTM layers, training only.
    stereo_features: add the mid and side magnitudes to the input (needs complex masks, which
        give the network the phases, and two channels).
    """

    family = "lstm"

    hidden_size: int = 256
    n_layers: int = 2
    bandwidth_hz: float = 16000.0
    dropout: float = 0.3
    stereo_features: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        nyquist = self.spectral_preset.sample_rate / 2
        if not 0 < self.bandwidth_hz <= nyquist:
            raise ConfigError(
                f"bandwidth_hz must be above 0 and at most the Nyquist frequency "
                f"({nyquist:g} Hz), got {self.bandwidth_hz:g}."
            )
        if self.hidden_size < 1 or self.n_layers < 1:
            raise ConfigError(
                f"hidden_size and n_layers must be at least 1, got {self.hidden_size} and "
                f"{self.n_layers}."
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.stereo_features:
            check_stereo_features(self)

    @property
    def n_bandwidth_bins(self) -> int:
        preset = self.spectral_preset
        bin_hz = preset.sample_rate / preset.n_fft
        return min(preset.n_bins, math.floor(self.bandwidth_hz / bin_hz) + 1)


class LstmMaskNet(MaskNet):
    # The batch norm as it was (on a transposed view, then the output scale and mean apart):
    # the same function, reachable only so that ``train_benchmark`` can time the old path.
    legacy_norm = False
    # Complex masks read the magnitudes too (forward): only the last layer and its norm grow.
    mask_heads = ("fc3", "bn3")
    # Stereo features are extra input channels after left and right (their weights start at 0).
    input_growth = ("fc1",)

    def __init__(self, config: LstmConfig) -> None:
        super().__init__()
        self.config = config
        n_bins = config.spectral_preset.n_bins
        n_in = config.n_bandwidth_bins
        hidden, n_channels, n_stems = config.hidden_size, config.n_channels, len(config.stems)
        self.n_bins, self.n_in = n_bins, n_in
        # 1 (magnitude masks) or 2 (real and imaginary parts, the imaginary half second)
        self.n_parts = n_parts = config.n_mask_parts
        self.input_mean = nn.Parameter(torch.zeros(n_in))
        self.input_scale = nn.Parameter(torch.ones(n_in))
        n_features = n_channels + (2 if config.stereo_features else 0)
        self.fc1 = nn.Linear(n_features * n_in, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.lstm = nn.LSTM(
            hidden,
            hidden,
            num_layers=config.n_layers,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
            batch_first=True,
        )
        self.fc2 = nn.Linear(2 * hidden, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden)
        n_out = n_parts * n_stems * n_channels * n_bins
        self.fc3 = nn.Linear(hidden, n_out, bias=False)
        self.bn3 = nn.BatchNorm1d(n_out)
        self.output_scale = nn.Parameter(torch.ones(n_bins))
        self.output_mean = nn.Parameter(torch.zeros(n_bins))
        if n_parts == 2:
            with torch.no_grad():
                self.bn3.weight[n_out // 2 :] = 0.0

    def state_spec(self) -> tuple[StateSpec, ...]:
        shape = (self.config.n_layers, 1, self.config.hidden_size)
        return (StateSpec("lstm_h", shape, 1), StateSpec("lstm_c", shape, 1))

    def _frame_norm(self, norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        if self.legacy_norm:
            return norm(x.transpose(1, 2)).transpose(1, 2)
        return frame_norm(norm, x)

    def _masks(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, parts * stems * channels * bins) logits -> masks (batch, n_frames,
        stems, channels, bins), with (real, imaginary) last for complex masks."""
        config = self.config
        shape = (len(config.stems), config.n_channels, self.n_bins)
        if self.n_parts == 1:
            return activate_masks(x.unflatten(-1, shape), config.mask, stem_dim=2)
        # (batch, n_frames, 2 * ...) -> (batch, n_frames, 2, stems, channels, bins)
        logits = x.unflatten(-1, (2, *shape))
        return activate_complex_masks(logits[:, :, 0], logits[:, :, 1], config.mask, stem_dim=2)

    def forward(
        self, features: torch.Tensor, lstm_h: torch.Tensor, lstm_c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masks for a run of frames, continuing from the given state.

        Args:
            features: magnitudes [shape=(batch, n_frames, n_channels, n_bins)], or for
                complex masks real and imaginary parts [shape=(..., n_bins, 2)].
            lstm_h, lstm_c: [shape=(n_layers, batch, hidden_size)]

        Returns:
            masks [shape=(batch, n_frames, n_stems, n_channels, n_bins)] ((real, imaginary)
            last for complex masks) and the new state.
        """
        magnitude = features if self.n_parts == 1 else parts_magnitude(features)
        if self.config.stereo_features:
            # (batch, n_frames, 2, n_bins, 2) -> mid and side (batch, n_frames, 2, n_bins)
            mid_side = mid_side_magnitudes(features[:, :, 0], features[:, :, 1], dim=2)
            magnitude = torch.cat([magnitude, mid_side], dim=2)
        x = (magnitude[..., : self.n_in] + self.input_mean) * self.input_scale
        # (batch, n_frames, features, n_in) -> (batch, n_frames, features * n_in)
        x = x.flatten(2)
        x = torch.tanh(self._frame_norm(self.bn1, self.fc1(x)))
        recurrent, (lstm_h, lstm_c) = self.lstm(x, (lstm_h, lstm_c))
        x = torch.cat([x, recurrent], dim=-1)
        x = torch.relu(self._frame_norm(self.bn2, self.fc2(x)))
        x = self.fc3(x)
        # bn3's features are (parts, stems, channels, bins) flattened, so the per-bin output
        # scale repeats; the output mean shifts the real part only (an imaginary logit of zero
        # is the magnitude mask itself).
        n_repeats = len(self.config.stems) * self.config.n_channels
        scale = self.output_scale.repeat(self.n_parts * n_repeats)
        shift = self.output_mean.repeat(n_repeats)
        if self.n_parts == 2:
            shift = torch.cat([shift, torch.zeros_like(shift)])
        if self.legacy_norm:
            x = self._frame_norm(self.bn3, x) * scale + shift
            return self._masks(x), lstm_h, lstm_c
        # bn3, then the output scale and mean, folded into one affine map per feature: the
        # widest layer is read once, not three times.
        x = frame_norm(self.bn3, x, scale=scale, shift=shift)
        return self._masks(x), lstm_h, lstm_c


def build_front_end(config: LstmConfig) -> StftFrontEnd:
    return StftFrontEnd(config.spectral_preset, config.n_channels)


SIZES: dict[str, dict[str, Any]] = {
    "small": {"hidden_size": 128, "n_layers": 2},
    "default": {},
}

FAMILY = ModelFamily("lstm", LstmConfig, LstmMaskNet, build_front_end, SIZES)
