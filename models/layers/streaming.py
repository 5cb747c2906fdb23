"""What makes a network streamable: named state tensors, and time convolutions that keep their
left context as state.

Every mask network has one forward path, ``forward(features, *state) -> (masks, *new_state)``,
for any number of frames: the whole sequence at once from ``initial_state`` (training, offline
rendering) or one frame at a time carrying the state (streaming). The state tensors are named
and shaped in one place, ``state_spec()``, which the ONNX export uses to name graph inputs and
outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class StateSpec:
    """One state tensor.

    Attributes:
        name: its name, also the ONNX input name (``<name>`` in, ``<name>_out`` out).
        shape: its shape for a batch of one.
        batch_axis: the axis that grows with the batch.
    """

    name: str
    shape: tuple[int, ...]
    batch_axis: int

    def zeros(
        self, batch: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> torch.Tensor:
        shape = list(self.shape)
        shape[self.batch_axis] = batch
        return torch.zeros(shape, dtype=dtype, device=device)


class MaskNet(nn.Module):
    """Base of every family's network: features in (the spectra's magnitudes, or for complex
    masks their real and imaginary parts, ``layers/masks.py``), one mask per stem out."""

    # Modules that close a residual branch (``x + module(branch)``): zeroed, they make the
    # branch add nothing, so that a trained network without the branch can grow one and start
    # from the same function (``train.load_initial_weights``).
    residual_outputs: tuple[str, ...] = ()
    # Modules whose output channels are the mask logits, the imaginary half second with complex
    # masks, in a network that reads the same features with either mask domain: a magnitude
    # network's head is then the real half of the complex one's, which can grow an imaginary
    # half as the family builds it (imaginary logits of zero) and start from the same masks
    # (``train.load_initial_weights``). A mask head's parameters before a norm in it (lstm's
    # ``fc3`` before ``bn3``) must fit the same way.
    mask_heads: tuple[str, ...] = ()
    # Modules whose input channels may grow (new input features appended after the others): a
    # network without the features grows them with their weights at zero, the rest of the
    # module's parameters (a norm's) at their initial values (``train.load_initial_weights``).
    input_growth: tuple[str, ...] = ()

    def state_spec(self) -> tuple[StateSpec, ...]:
        raise NotImplementedError

    def initial_state(
        self, batch: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The state before the first frame: all zeros (what ``reset()`` returns to)."""
        return tuple(spec.zeros(batch, dtype, device) for spec in self.state_spec())


def split_outputs(
    net: nn.Module, outputs: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """A network's outputs as (masks, waveform hops or ``None``, new state): a network with
    ``waveform_output`` (the ``hybrid`` family) gives its waveform hops second."""
    if getattr(net, "waveform_output", False):
        return outputs[0], outputs[1], tuple(outputs[2:])
    return outputs[0], None, tuple(outputs[1:])


class CausalTimeConv2d(nn.Module):
    """A 2-D convolution over (time, frequency) that never looks ahead in time.

    Along time it sees the current frame and ``(kernel_time - 1) * dilation`` past frames,
    which it keeps as state between calls (zeros before the first frame: left padding only).
    Along frequency it is an ordinary centred convolution, free to look both ways.

    Inputs are ``[shape=(batch, channels, n_frames, n_freq)]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_time: int,
        kernel_freq: int,
        dilation: int = 1,
        n_freq: int = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=(kernel_time, kernel_freq),
            dilation=(dilation, 1),
            padding=(0, kernel_freq // 2),
        )
        self.context = (kernel_time - 1) * dilation
        self.in_channels = in_channels
        self.n_freq = n_freq

    def state_shape(self) -> tuple[int, ...]:
        return (1, self.in_channels, self.context, self.n_freq)

    def forward(
        self, x: torch.Tensor, past: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the output frames and the new past (``None`` for a kernel one frame long)."""
        if past is None:
            return self.conv(x), None
        extended = torch.cat([past, x], dim=2)
        # Counted from the end: an index computed from the length would be frozen into an
        # exported graph, and the time axis must stay dynamic.
        return self.conv(extended), extended[:, :, -self.context :]
