"""The ``hybrid`` family: a spectral mask branch beside a causal waveform branch, stems summed.

After HS-TasNet (Venkatesh et al., "Real-time low-latency music source separation using Hybrid
Spectrogram-TasNet", ICASSP 2024): one branch masks the spectrum, the other runs a learned
filterbank on the waveform, and each stem is the sum of the two. Here the spectral branch is the
``lstm`` family's network (complex masks), and the waveform branch is a causal learned encoder (a
strided 1-D convolution of window ``wave_window`` <= the preset's synthesis window, stride
``wave_stride``), a causal TCN (dilated convolutions, residual) with a unidirectional LSTM at the
bottleneck, and a transposed-convolution decoder to every stem and channel.

How the waveform branch meets the hop-by-hop engine (one model interface: spectra in per hop):

- **Its input is recovered from the frame the model already receives.** The model reads the
  spectrum's real and imaginary parts (``mask_domain`` must be ``complex``), so the frame's
  newest hop of samples, ``x[n_fft - hop:]``, is one fixed inverse DFT away: a matrix product
  with the windowed-cosine basis divided by the analysis window (the STFT frames are
  ``rfft(window * frame)``, newest sample last). Neither the processor nor the front end hands
  the model anything new. The live and ultra presets' analysis windows stay above 0.006 over the
  newest hop, so the recovery costs float32 little; the symmetric ``studio`` window falls to
  ~1e-6 there and is refused (``ConfigError``).
- **Its output is one more graph output, ``waveform``** [shape=(batch, n_frames, hop, n_stems,
  n_channels)]: per frame, a hop of every stem, which the processor adds to the hop the
  synthesis gives for that frame (metadata ``waveform_hop``: true; absent in every older file,
  whose processing is unchanged).
- **Its geometry lines up with the synthesis.** The hop synthesised at frame t is the input at
  frame indices ``[s, s + hop)``, ``s = synthesis_start``: ``d = n_fft - s - hop`` samples
  (255 at live, 127 at ultra) before the frame's newest hop. The branch reads the newest hop and
  gives the hop of its decoder's overlap-add that is finished (every encoder frame covering it is
  in): the newest hop moved back by ``overlap = wave_window - wave_stride`` samples, whose
  unfinished last ``overlap`` samples are the state ``wave_tail``. That hop is taken to be the
  stems at the synthesised hop's samples, so each decoder sample estimates the input ``d -
  overlap`` samples before it (the branch's look-ahead, inside the frame like the spectral
  path's). So the waveform stem for input sample n leaves the processor at n +
  ``latency_samples``, exactly where the spectral stem does: the same latency, which the tests
  measure with an impulse through a pass-through waveform branch. Requires ``overlap <= d`` and
  a stride that divides the hop.
- **What the stream's causality test can and cannot see.** The processor emits a frame's hop
  over the next hop of samples, so a waveform leak of fewer than ``hop`` samples past the frame
  stays inside that slack at the stream's output; the tests therefore also check the branch
  frame by frame (frame t's hops unchanged, bit for bit, when only later frames change), which
  a single sample read past the frame fails.
- **Strictly causal, one forward path.** The encoder keeps its last ``wave_window -
  wave_stride`` input samples (``wave_in``), each TCN convolution its dilated past
  (``tcn_<i>``), the LSTM its hidden and cell state, the decoder ``wave_tail``; all named state,
  so a whole sequence and a single frame run the same code.
- **The stems sum to the mix** with a softmax or ratio mask: the spectral masks sum to 1 + 0j,
  and the waveform branch's stems are centred across stems (they sum to zero), so the branch
  moves energy between stems and never adds any to the mix. With a sigmoid mask nothing sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...realtime.dsp.presets import SpectralPreset
from ...realtime.runtime.model_metadata import COMPLEX
from ..layers.front_end import StftFrontEnd
from ..layers.streaming import MaskNet, StateSpec
from .config import ConfigError
from .lstm import LstmConfig, LstmMaskNet
from .registry import ModelFamily

#: The smallest analysis-window value over the newest hop that the recovery divides by.
MIN_RECOVERY_WINDOW = 1e-3


def waveform_delay(preset: SpectralPreset) -> int:
    """d: samples from the frame's newest hop back to the hop its synthesis completes."""
    return preset.n_fft - preset.synthesis_start - preset.hop


def recovery_basis(preset: SpectralPreset) -> np.ndarray:
    """[shape=(n_bins * 2, hop), float64]: (real, imaginary) pairs of a frame's spectrum, flat,
    times this, give the frame's newest hop of samples (the inverse DFT over the newest hop,
    divided by the analysis window)."""
    n_fft, hop = preset.n_fft, preset.hop
    n = np.arange(n_fft - hop, n_fft)
    k = np.arange(preset.n_bins)[:, None]
    weight = np.full((preset.n_bins, 1), 2.0)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    angle = 2.0 * np.pi * k * n / n_fft
    scale = weight / (n_fft * preset.analysis_window[n_fft - hop :])
    basis = np.stack([np.cos(angle) * scale, -np.sin(angle) * scale], axis=1)
    return basis.reshape(2 * preset.n_bins, hop)


@dataclass(frozen=True)
class HybridConfig(LstmConfig):
    """The ``lstm`` family's fields size the spectral branch. Waveform branch:

    Attributes:
        wave_window: the encoder's window, K samples (at most the preset's synthesis window).
        wave_stride: the encoder's stride, S samples (divides the hop).
        wave_channels: N, the encoder's filters and the TCN's width.
        tcn_blocks: residual dilated causal convolutions (dilation 1, 2, 4, ...).
        tcn_kernel: their kernel, in encoder frames.
        wave_hidden: the bottleneck LSTM's hidden size.
    """

    family = "hybrid"

    mask_domain: str = COMPLEX
    wave_window: int = 64
    wave_stride: int = 32
    wave_channels: int = 64
    tcn_blocks: int = 2
    tcn_kernel: int = 3
    wave_hidden: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        preset = self.spectral_preset
        if self.mask_domain != COMPLEX:
            raise ConfigError(
                "The hybrid family reads the spectrum's real and imaginary parts to recover the "
                "waveform: mask_domain must be 'complex'."
            )
        if preset.analysis_window[preset.n_fft - preset.hop :].min() < MIN_RECOVERY_WINDOW:
            raise ConfigError(
                f"The {preset.name} preset's analysis window nearly vanishes over the newest hop, "
                "so the hybrid cannot recover its waveform: use the live or ultra preset."
            )
        if self.wave_stride < 1 or preset.hop % self.wave_stride:
            raise ConfigError(
                f"wave_stride must divide the hop ({preset.hop}), got {self.wave_stride}."
            )
        delay = waveform_delay(preset)
        if not self.wave_stride <= self.wave_window <= preset.synthesis_length or (
            self.wave_window - self.wave_stride > delay
        ):
            raise ConfigError(
                f"wave_window must be at least wave_stride, at most the synthesis window "
                f"({preset.synthesis_length}) and at most wave_stride + {delay}, got "
                f"{self.wave_window}."
            )
        for name in ("wave_channels", "tcn_blocks", "tcn_kernel", "wave_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")


class _Recovery(nn.Module):
    """The frame's newest hop of samples from its spectrum: one fixed matrix product."""

    basis: torch.Tensor

    def __init__(self, preset: SpectralPreset) -> None:
        super().__init__()
        self.register_buffer("basis", torch.from_numpy(recovery_basis(preset)), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, channels, bins, 2) -> the newest hop of each frame, end to end:
        [shape=(batch, channels, n_frames * hop)]."""
        hops = features.flatten(-2) @ self.basis.to(features.dtype)
        # (batch, n_frames, channels, hop) -> (batch, channels, n_frames * hop)
        return hops.permute(0, 2, 1, 3).flatten(2)

    def flops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Multiply-adds x 2, for ``cost.py``."""
        return 2 * self.basis.shape[0] * output.numel()


class _StateConv(nn.Module):
    """A causal 1-D convolution over frames that keeps its dilated past as state."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.context = (kernel - 1) * dilation

    def forward(
        self, x: torch.Tensor, past: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output frames and the new past (``None`` for a kernel one frame long)."""
        if past is None:
            return self.conv(x), None
        extended = torch.cat([past, x], dim=2)
        return self.conv(extended), extended[:, :, -self.context :]


class HybridNet(MaskNet):
    """``forward(features, *state) -> (masks, waveform, *new_state)``: a mask network with a
    ``waveform`` output (``waveform_output``)."""

    waveform_output = True

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        preset = config.spectral_preset
        self.spectral = LstmMaskNet(config)
        n_channels, n_stems = config.n_channels, len(config.stems)
        width, window, stride = config.wave_channels, config.wave_window, config.wave_stride
        self.hop, self.delay = preset.hop, waveform_delay(preset)
        self.overlap = window - stride
        # The decoder's sample c stands for the input at c - lookahead: the branch reads that
        # much past the sample it estimates, the rest of its delay budget d.
        self.lookahead = self.delay - self.overlap
        self.recover = _Recovery(preset)
        self.encoder = nn.Conv1d(n_channels, width, window, stride=stride, bias=False)
        self.tcn = nn.ModuleList(
            _StateConv(width, config.tcn_kernel, 2**index) for index in range(config.tcn_blocks)
        )
        self.tcn_out = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in self.tcn)
        # Each TCN convolution's past, in encoder frames (none for a kernel of one)
        self.tcn_context = [(config.tcn_kernel - 1) * 2**index for index in range(len(self.tcn))]
        self.lstm = nn.LSTM(width, config.wave_hidden, batch_first=True)
        self.lstm_out = nn.Linear(config.wave_hidden, width)
        self.decoder = nn.ConvTranspose1d(
            width, n_stems * n_channels, window, stride=stride, bias=False
        )
        self.n_stems, self.n_channels = n_stems, n_channels

    def state_spec(self) -> tuple[StateSpec, ...]:
        config = self.config
        width = config.wave_channels
        specs = list(self.spectral.state_spec())
        if self.overlap:
            specs.append(StateSpec("wave_in", (1, self.n_channels, self.overlap), 0))
        for index, context in enumerate(self.tcn_context):
            if context:
                specs.append(StateSpec(f"tcn_{index}", (1, width, context), 0))
        hidden = (1, 1, config.wave_hidden)
        specs += [StateSpec("wave_h", hidden, 1), StateSpec("wave_c", hidden, 1)]
        if self.overlap:
            n_outputs = self.n_stems * self.n_channels
            specs.append(StateSpec("wave_tail", (1, n_outputs, self.overlap), 0))
        return tuple(specs)

    def waveform(
        self, features: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The waveform branch: [shape=(batch, n_frames, hop, n_stems, n_channels)] and its
        new state."""
        new: dict[str, torch.Tensor] = {}
        x = self.recover(features)
        if self.overlap:
            x = torch.cat([state["wave_in"], x], dim=2)
            new["wave_in"] = x[:, :, -self.overlap :]
        y = torch.relu(self.encoder(x))
        for index, (conv, mix) in enumerate(zip(self.tcn, self.tcn_out, strict=True)):
            z, past = conv(y, state[f"tcn_{index}"] if self.tcn_context[index] else None)
            if past is not None:
                new[f"tcn_{index}"] = past
            y = y + mix(torch.relu(z))
        recurrent, (new["wave_h"], new["wave_c"]) = self.lstm(
            y.transpose(1, 2), (state["wave_h"], state["wave_c"])
        )
        y = y + self.lstm_out(recurrent).transpose(1, 2)
        # (batch, stems * channels, n_frames * hop + overlap): the overlap-add of every
        # encoder frame, from ``overlap`` samples before the first newest hop; its last
        # ``overlap`` samples await the next frames
        out = self.decoder(y)
        overlap = self.overlap
        if overlap:
            tail = state["wave_tail"]
            out = torch.cat([tail + out[:, :, :overlap], out[:, :, overlap:]], dim=2)
            new["wave_tail"] = out[:, :, -overlap:]
            out = out[:, :, :-overlap]
        # (batch, stems * channels, n_frames * hop) -> (batch, n_frames, hop, stems, channels)
        out = out.unflatten(1, (self.n_stems, self.n_channels)).unflatten(3, (-1, self.hop))
        out = out.permute(0, 3, 4, 1, 2)
        if self.config.mask != "sigmoid":
            out = out - out.mean(dim=3, keepdim=True)
        return out, new

    def forward(self, features: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Masks and waveform hops for a run of frames, continuing from the given state.

        Args:
            features: the spectrum's real and imaginary parts [shape=(batch, n_frames,
                n_channels, n_bins, 2)].
            state: the tensors of ``state_spec()``, in order.

        Returns:
            masks [shape=(batch, n_frames, n_stems, n_channels, n_bins, 2)], the waveform
            hops [shape=(batch, n_frames, hop, n_stems, n_channels)], then the new state.
        """
        names = [spec.name for spec in self.state_spec()]
        given = dict(zip(names, state, strict=True))
        masks, lstm_h, lstm_c = self.spectral(features, given["lstm_h"], given["lstm_c"])
        waveform, new = self.waveform(features, given)
        new["lstm_h"], new["lstm_c"] = lstm_h, lstm_c
        return (masks, waveform, *(new[name] for name in names))


def build_front_end(config: HybridConfig) -> StftFrontEnd:
    return StftFrontEnd(config.spectral_preset, config.n_channels)


# Chosen so that the live preset's step stays under 0.35 of the hop in onnxruntime on one core
# (README, "Model families": parameters, MFLOPs, p50/p99 per hop).
SIZES: dict[str, dict[str, Any]] = {
    "small": {"hidden_size": 96, "n_layers": 2},
    "default": {},
}

FAMILY = ModelFamily("hybrid", HybridConfig, HybridNet, build_front_end, SIZES)
