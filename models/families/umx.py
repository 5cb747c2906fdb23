"""``umx``: the offline Open-Unmix baseline, the ``openunmix`` package's own model class.

The bundled models are compared with an *offline* separator trained the same way: Open-Unmix
(``openunmix.model.OpenUnmix``, version 1.3), one network per stem as in its ``umx`` model,
each a bidirectional LSTM (``unidirectional=False``, the package's default), so each output frame
depends on the whole song: it cannot run live, and is the ceiling a causal model is measured
against. Its magnitude front end is ours at the ``studio`` preset (4096-sample Hann window, hop
1024: Open-Unmix's own ``n_fft`` and ``n_hop``), so training, losses and evaluation are the very
code the causal families use (``livestems train --family umx``).

The network class is Open-Unmix's, unmodified; it is imported with ``torchaudio_stub()`` (see
``models/families/torchaudio_stub.py``: ``import openunmix`` imports torchaudio, which its model
never
uses and for which no build matches torch 2.13). Open-Unmix outputs each stem's magnitude
(``relu(...) * mix``); our front end applies masks, so the mask is that magnitude over the
mixture's (with a floor where the mixture is silent), which gives back Open-Unmix's estimate.

It is not a streaming model: its configuration says ``streamable = False`` and
``livestems export`` refuses it (a bidirectional LSTM stepped frame by frame would compute
something else). Evaluation runs it offline in torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..layers.front_end import StftFrontEnd
from ..layers.streaming import MaskNet, StateSpec
from .config import ConfigError, SeparatorConfig
from .registry import ModelFamily
from .torchaudio_stub import torchaudio_stub

# Below this magnitude the mixture is silent and any mask is as good as another.
_MAGNITUDE_FLOOR = 1e-8


@dataclass(frozen=True)
class UmxConfig(SeparatorConfig):
    """Attributes:
    hidden_size: Open-Unmix's ``hidden_size`` (512 in its released models).
    n_layers: its ``nb_layers`` (3).
    bandwidth_hz: its ``max_bin``, as a frequency (16 kHz in its released models).
    """

    family = "umx"
    streamable: ClassVar[bool] = False

    preset: str = "studio"
    mask: str = "sigmoid"  # one network per stem, not normalised across stems
    hidden_size: int = 512
    n_layers: int = 3
    bandwidth_hz: float = 16000.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size < 2 or self.hidden_size % 2:
            raise ConfigError(
                f"hidden_size must be even (the bidirectional LSTM halves it), "
                f"got {self.hidden_size}."
            )
        nyquist = self.spectral_preset.sample_rate / 2
        if not 0 < self.bandwidth_hz <= nyquist:
            raise ConfigError(
                f"bandwidth_hz must be above 0 and at most {nyquist:g} Hz, "
                f"got {self.bandwidth_hz:g}."
            )

    @property
    def max_bin(self) -> int:
        preset = self.spectral_preset
        return min(preset.n_bins, int(self.bandwidth_hz / (preset.sample_rate / preset.n_fft)) + 1)


def _open_unmix_class() -> type[nn.Module]:
    try:
        with torchaudio_stub():
            from openunmix.model import OpenUnmix
    except ImportError as error:
        raise ConfigError(
            "The umx family is the openunmix package's model, which is not installed "
            "(./setup.sh --dev installs it, without its dependencies)."
        ) from error
    return OpenUnmix


class UmxNet(MaskNet):
    """One Open-Unmix network per stem; no state (it sees the whole song at once)."""

    def __init__(self, config: UmxConfig) -> None:
        super().__init__()
        self.config = config
        open_unmix = _open_unmix_class()
        n_bins = config.spectral_preset.n_bins
        self.targets = nn.ModuleList(
            open_unmix(
                nb_bins=n_bins,
                nb_channels=config.n_channels,
                hidden_size=config.hidden_size,
                nb_layers=config.n_layers,
                unidirectional=False,
                max_bin=config.max_bin,
            )
            for _ in config.stems
        )

    def state_spec(self) -> tuple[StateSpec, ...]:
        return ()

    def forward(self, magnitude: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Masks for a whole song.

        Args:
            magnitude: [shape=(batch, n_frames, n_channels, n_bins)]

        Returns:
            (masks [shape=(batch, n_frames, n_stems, n_channels, n_bins)],)
        """
        # Open-Unmix's layout: (batch, channels, bins, frames)
        spectrogram = magnitude.permute(0, 2, 3, 1)
        estimates = torch.stack([target(spectrogram) for target in self.targets], dim=1)
        # (batch, stems, channels, bins, frames) -> (batch, frames, stems, channels, bins)
        estimates = estimates.permute(0, 4, 1, 2, 3)
        return (estimates / magnitude.unsqueeze(2).clamp_min(_MAGNITUDE_FLOOR),)


def build_front_end(config: UmxConfig) -> StftFrontEnd:
    return StftFrontEnd(config.spectral_preset, config.n_channels)


SIZES: dict[str, dict[str, Any]] = {
    "small": {"hidden_size": 128, "n_layers": 3},
    "default": {},
}

FAMILY = ModelFamily("umx", UmxConfig, UmxNet, build_front_end, SIZES)
