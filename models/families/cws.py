"""The ``cws`` family: a causal U-Net on channel-wise subband input.

After Liu et al., "Channel-wise Subband Input for Better Voice and Accompaniment Separation on
High Resolution Music" (Interspeech 2020): a PQMF bank splits the mix into K bands, each band's
STFT is stacked as input channels (so the convolutions share weights within a band and weigh
bands against each other through their channels), a U-Net predicts one mask per stem, band and
channel, and the synthesis bank rebuilds the full band.

Made causal: every convolution sees the current frame and past frames only (left context kept
as stream state), while along frequency it looks both ways; the U-Net pools and upsamples along
frequency only, never time; an optional unidirectional LSTM runs at the bottleneck. Batch norm in
evaluation mode is a fixed affine map per channel, frame by frame.

With complex masks (``mask_domain="complex"``) the U-Net still reads the magnitudes (computed from
the real and imaginary parts it is given) and its head gives a real and an imaginary logit per
stem, channel and bin (``activate_complex_masks``); the imaginary half of the head starts at
zero, so training starts from the magnitude mask.

``stereo_features`` (complex masks, stereo) adds the magnitudes of each band's mid (L + R) / 2
and side (L - R) / 2 to the input channels (``layers/phase_features.py`` says why), after the
left/right channels, so that a model without them grows them with their first convolution's
weights at zero (``MaskNet.input_growth``).

``phase_deviation`` (complex masks) adds each band and channel's deviation from a steady
sinusoid, |X_t - P_t| / (|X_t| + |X_{t-1}|) with P_t the frame predicted from the two before it
(``layers/phase_features.py``): tonal partials against noise and onsets, which magnitudes alone
do not tell. Its two past frames are stream state (``spectrum_past``); its channels come last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as functional
from torch import nn

from ..layers.front_end import SubbandFrontEnd
from ..layers.masks import activate_complex_masks, activate_masks, parts_magnitude
from ..layers.phase_features import check_stereo_features, mid_side_magnitudes, phase_deviation
from ..layers.streaming import CausalTimeConv2d, MaskNet, StateSpec
from .config import ConfigError, SeparatorConfig
from .registry import ModelFamily

N_BANDS_ALLOWED = (2, 4, 8)


@dataclass(frozen=True)
class CwsConfig(SeparatorConfig):
    """Attributes:
    n_bands: PQMF subbands K, stacked as channels: 2, 4 or 8.
    channels: width of the first U-Net level (doubling at each level down).
    depth: frequency poolings (U-Net levels below the top).
    kernel_time, kernel_freq: convolution kernel (frames, bins).
    dilation: time dilation of the convolutions at the top level, multiplied by two per level
        down (longer memory where the resolution is coarse).
    lstm_hidden: width of the bottleneck LSTM; 0 for none.
    stereo_features: add each band's mid and side magnitudes to the input (needs complex
        masks, which give the network the phases, and two channels).
    phase_deviation: add each band and channel's deviation from a steady sinusoid to the
        input (needs complex masks).
    """

    family = "cws"

    n_bands: int = 4
    channels: int = 16
    depth: int = 3
    kernel_time: int = 3
    kernel_freq: int = 3
    dilation: int = 1
    lstm_hidden: int = 0
    stereo_features: bool = False
    phase_deviation: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_bands not in N_BANDS_ALLOWED:
            raise ConfigError(
                f"n_bands must be a power of two among {N_BANDS_ALLOWED}, got {self.n_bands}."
            )
        try:
            self.spectral_preset.subband(self.n_bands)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if self.channels < 1 or self.depth < 0 or self.dilation < 1 or self.lstm_hidden < 0:
            raise ConfigError(
                "channels and dilation must be at least 1, depth and lstm_hidden at least 0."
            )
        if self.stereo_features:
            check_stereo_features(self)
        if self.phase_deviation and self.n_mask_parts != 2:
            raise ConfigError(
                "phase_deviation needs mask_domain complex: it comes from the phases, which "
                "only complex masks give the network."
            )
        if self.kernel_time < 1 or self.kernel_freq < 1 or self.kernel_freq % 2 == 0:
            raise ConfigError(
                f"kernel_time must be at least 1 and kernel_freq odd, got {self.kernel_time} "
                f"and {self.kernel_freq}."
            )


class _ConvBlock(nn.Module):
    """Two causal convolutions, each followed by batch norm and relu."""

    def __init__(
        self, in_channels: int, out_channels: int, config: CwsConfig, dilation: int, n_freq: int
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            CausalTimeConv2d(
                channels_in,
                out_channels,
                config.kernel_time,
                config.kernel_freq,
                dilation,
                n_freq,
            )
            for channels_in in (in_channels, out_channels)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(out_channels) for _ in range(2))

    def forward(
        self, x: torch.Tensor, states: list[torch.Tensor], new: list[torch.Tensor]
    ) -> torch.Tensor:
        """Runs both convolutions; takes their pasts from the front of ``states`` and appends
        their new pasts to ``new``."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            past = states.pop(0) if conv.context else None
            x, past = conv(x, past)
            if past is not None:
                new.append(past)
            x = torch.relu(norm(x))
        return x


class CwsMaskNet(MaskNet):
    residual_outputs = ("lstm_out",)
    # Complex masks read the magnitudes too (forward): only the head grows.
    mask_heads = ("head",)
    # Stereo features are extra input channels after the others (their weights start at zero).
    input_growth = ("input_norm", "encoder.0.convs.0.conv")

    def __init__(self, config: CwsConfig) -> None:
        super().__init__()
        self.config = config
        subband = config.spectral_preset.subband(config.n_bands)
        self.n_bins = subband.n_bins
        n_in = config.n_bands * config.n_channels
        n_features = n_in + (2 * config.n_bands if config.stereo_features else 0)
        n_features += n_in if config.phase_deviation else 0
        self.n_in = n_in
        # Pad the bins to a multiple of 2 ** depth so that pooling and upsampling line up.
        step = 2**config.depth
        self.n_freq = -(-self.n_bins // step) * step
        self.input_norm = nn.BatchNorm2d(n_features)
        widths = [config.channels * 2**level for level in range(config.depth + 1)]
        self.encoder = nn.ModuleList()
        channels_in = n_features
        for level in range(config.depth):
            self.encoder.append(
                _ConvBlock(
                    channels_in,
                    widths[level],
                    config,
                    config.dilation * 2**level,
                    self.n_freq >> level,
                )
            )
            channels_in = widths[level]
        bottom_freq = self.n_freq >> config.depth
        self.bottleneck = _ConvBlock(
            channels_in,
            widths[-1],
            config,
            config.dilation * 2**config.depth,
            bottom_freq,
        )
        self.lstm: nn.LSTM | None = None
        if config.lstm_hidden:
            features = widths[-1] * bottom_freq
            self.lstm = nn.LSTM(features, config.lstm_hidden, batch_first=True)
            self.lstm_out = nn.Linear(config.lstm_hidden, features)
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(config.depth)):
            self.upsample.append(
                nn.ConvTranspose2d(widths[level + 1], widths[level], (1, 2), stride=(1, 2))
            )
            self.decoder.append(
                _ConvBlock(
                    2 * widths[level],
                    widths[level],
                    config,
                    config.dilation * 2**level,
                    self.n_freq >> level,
                )
            )
        # (parts, stems, channels) of logits: the imaginary half (complex masks) second
        n_out = config.n_mask_parts * len(config.stems) * n_in
        self.head = head = nn.Conv2d(widths[0], n_out, kernel_size=1)
        if config.n_mask_parts == 2:
            with torch.no_grad():
                head.weight[n_out // 2 :] = 0.0
                head.bias[n_out // 2 :] = 0.0  # type: ignore[index]  # Conv2d has a bias here
        # The order in which forward() consumes the convolutions' states.
        blocks = [*self.encoder, self.bottleneck, *self.decoder]
        self._stateful = [conv for block in blocks for conv in block.convs if conv.context]

    def state_spec(self) -> tuple[StateSpec, ...]:
        specs = [
            StateSpec(f"conv{index}_past", conv.state_shape(), 0)
            for index, conv in enumerate(self._stateful)
        ]
        if self.lstm is not None:
            shape = (1, 1, self.config.lstm_hidden)
            specs += [StateSpec("lstm_h", shape, 1), StateSpec("lstm_c", shape, 1)]
        if self.config.phase_deviation:
            specs.append(StateSpec("spectrum_past", (1, 2, self.n_in, self.n_bins, 2), 0))
        return tuple(specs)

    def forward(self, features: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Masks for a run of frames, continuing from the given state.

        Args:
            features: magnitudes [shape=(batch, n_frames, n_bands * n_channels, n_bins)], or
                for complex masks real and imaginary parts [shape=(..., n_bins, 2)].
            state: the tensors of ``state_spec()``, in its order.

        Returns:
            masks [shape=(batch, n_frames, n_stems, n_bands * n_channels, n_bins)] ((real,
            imaginary) last for complex masks), then the new state in the same order.
        """
        config = self.config
        complex_masks = config.n_mask_parts == 2
        magnitude = parts_magnitude(features) if complex_masks else features
        if config.stereo_features:
            # (batch, n_frames, bands x channels, bins, 2) -> (..., bands, channels, bins, 2)
            pairs = features.unflatten(2, (config.n_bands, 2))
            left, right = pairs[:, :, :, 0], pairs[:, :, :, 1]
            # (batch, n_frames, bands, mid/side, bins) -> (..., bands x 2, bins)
            mid_side = mid_side_magnitudes(left, right, dim=3)
            magnitude = torch.cat([magnitude, mid_side.flatten(2, 3)], 2)
        # Convolution pasts first, in the order the blocks run; then the LSTM's state; the
        # spectrum's past last.
        states = list(state[: len(self._stateful)])
        lstm_state = state[len(self._stateful) :]
        new: list[torch.Tensor] = []
        spectrum_past: list[torch.Tensor] = []
        if config.phase_deviation:
            lstm_state = lstm_state[:-1]
            deviation, past = phase_deviation(features, state[-1])
            magnitude = torch.cat([magnitude, deviation], 2)
            spectrum_past.append(past)
        # (batch, n_frames, channels, bins) -> (batch, channels, n_frames, bins): conv layout
        x = torch.log1p(magnitude).transpose(1, 2)
        x = self.input_norm(functional.pad(x, (0, self.n_freq - self.n_bins)))
        skips = []
        for block in self.encoder:
            x = block(x, states, new)
            skips.append(x)
            x = functional.max_pool2d(x, (1, 2))
        x = self.bottleneck(x, states, new)
        if self.lstm is not None:
            lstm_h, lstm_c = lstm_state
            # (batch, channels, n_frames, freq) -> (batch, n_frames, channels * freq)
            frames = x.transpose(1, 2).flatten(2)
            recurrent, (lstm_h, lstm_c) = self.lstm(frames, (lstm_h, lstm_c))
            x = x + self.lstm_out(recurrent).unflatten(-1, x.shape[1::2]).transpose(1, 2)
        for upsample, block in zip(self.upsample, self.decoder, strict=True):
            x = torch.cat([upsample(x), skips.pop()], dim=1)
            x = block(x, states, new)
        logits = self.head(x)[..., : self.n_bins]
        if complex_masks:
            # (batch, 2 * stems * channels, n_frames, bins) -> (2, batch, n_frames, stems,
            # channels, bins)
            logits = logits.unflatten(1, (2, len(config.stems), -1)).permute(1, 0, 4, 2, 3, 5)
            masks = activate_complex_masks(logits[0], logits[1], config.mask, stem_dim=2)
        else:
            # (batch, stems * channels, n_frames, bins) -> (batch, n_frames, stems, channels,
            # bins)
            logits = logits.unflatten(1, (len(config.stems), -1)).permute(0, 3, 1, 2, 4)
            masks = activate_masks(logits, config.mask, stem_dim=2)
        if self.lstm is not None:
            new += [lstm_h, lstm_c]
        return (masks, *new, *spectrum_past)


def build_front_end(config: CwsConfig) -> SubbandFrontEnd:
    return SubbandFrontEnd(config.spectral_preset, config.n_channels, config.n_bands)


SIZES: dict[str, dict[str, Any]] = {
    "small": {"channels": 8, "depth": 2},
    "default": {},
}

FAMILY = ModelFamily("cws", CwsConfig, CwsMaskNet, build_front_end, SIZES)
