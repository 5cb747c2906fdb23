"""What a model costs per hop: parameters, MFLOPs and measured torch time, per family, size and
preset. Run ``python -m livestems.models.families.cost``; it prints a Markdown table.

FLOPs are counted from the layers' shapes for one frame (one hop), a multiply-add counting two:
linear and convolution layers, transposed convolutions, LSTM gates (for every vector an LSTM
steps through, in each direction: a band-split network's LSTMs run over many bands per frame),
and any layer of a family's own that says what it costs (a ``flops(inputs, output)`` method);
element-wise work and norms are left out. The time is the median and p99 of single-frame
steps with state, on one thread (the engine's worker is one thread), after a warm-up; its ratio
to the hop's duration is the share of real time the network needs.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ...realtime.dsp.presets import PRESETS
from ..layers.streaming import split_outputs
from .config import ConfigError, SeparatorConfig
from .registry import available_families, get_family
from .separator import SeparatorNet


def flops_per_hop(model: SeparatorNet) -> int:
    """Multiply-adds x 2 of the network for one frame."""
    total = 0

    def count(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        own_count = getattr(module, "flops", None)
        if callable(own_count):
            total += int(own_count(inputs, output))
        elif isinstance(module, nn.Linear):
            total += (
                2
                * module.in_features
                * module.out_features
                * (
                    output.numel() // module.out_features  # type: ignore[attr-defined]
                )
            )
        elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.ConvTranspose1d | nn.ConvTranspose2d):
            kernel = math.prod(module.kernel_size)
            if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d):
                # each input value times the kernel, into every output channel of its group
                per_input = 2 * kernel * module.out_channels // module.groups
                total += per_input * inputs[0].numel()
            else:
                total += 2 * kernel * module.in_channels // module.groups * output.numel()  # type: ignore[attr-defined]
        elif isinstance(module, nn.LSTM):
            size_in, hidden = module.input_size, module.hidden_size
            # every (batch, time) vector of the input, in each direction
            steps = inputs[0].numel() // size_in * (2 if module.bidirectional else 1)
            for layer in range(module.num_layers):
                layer_in = size_in if layer == 0 else hidden * (2 if module.bidirectional else 1)
                total += 2 * 4 * hidden * (layer_in + hidden) * steps

    handles = [m.register_forward_hook(count) for m in model.net.modules()]
    try:
        with torch.no_grad():
            model.net(_one_frame(model), *model.net.initial_state(1))
    finally:
        for handle in handles:
            handle.remove()
    return total


def _one_frame(model: SeparatorNet) -> torch.Tensor:
    return torch.rand(1, 1, *model.frame_shape)


def time_per_hop(model: SeparatorNet, n_steps: int) -> np.ndarray:
    """Seconds per single-frame step with state."""
    frame = _one_frame(model)
    state = model.net.initial_state(1)
    timings = np.empty(n_steps)
    with torch.no_grad():
        for index in range(-20, n_steps):
            start = time.perf_counter()
            state = split_outputs(model.net, model.net(frame, *state))[2]
            if index >= 0:
                timings[index] = time.perf_counter() - start
    return timings


def configurations() -> Iterator[tuple[str, SeparatorConfig]]:
    for family_name in available_families():
        family = get_family(family_name)
        for size in family.sizes:
            for preset in PRESETS:
                try:
                    yield size, family.config(size, preset=preset)
                except ConfigError:
                    continue  # a family that refuses this preset (the hybrid: studio)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cost per hop of each family, size and preset.")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per configuration")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| family | size | preset | parameters | MFLOPs/hop | p50 ms/hop | p99 ms/hop "
          "| p50 / hop duration |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for size, config in configurations():
        model = SeparatorNet(config).eval()
        n_parameters = sum(p.numel() for p in model.parameters())
        timings = time_per_hop(model, args.steps) * 1000
        p50, p99 = np.percentile(timings, [50, 99])
        hop_ms = 1000 * config.spectral_preset.hop / config.spectral_preset.sample_rate
        print(
            f"| {config.family} | {size} | {config.preset} | {n_parameters:,} "
            f"| {flops_per_hop(model) / 1e6:.1f} | {p50:.3f} | {p99:.3f} | {p50 / hop_ms:.3f} |"
        )


if __name__ == "__main__":
    main()
