"""Benchmark: per-hop cost of the same model in onnxruntime and in torch, on this machine.

Run ``python -m livestems.export.ort_benchmark``. For each family (at a size) and preset it
exports a random-weight model, then times single-frame steps with state: onnxruntime through
the runner the engine uses (CPU, one thread), and torch eager (one thread), after a warm-up. It
prints p50/p99/max per hop in milliseconds and the ratio of torch's p50 to onnxruntime's.
Figures, not a pass/fail.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..models.families.config import ConfigError, SeparatorConfig
from ..models.families.registry import available_families, get_family
from ..models.families.separator import SeparatorNet
from ..models.layers.streaming import split_outputs
from ..realtime import arguments
from ..realtime.dsp.presets import PRESETS
from ..realtime.runtime.onnx_model import OnnxHopModel
from .onnx_export import export_onnx


def _time(step, n_steps: int) -> np.ndarray:
    for _ in range(20):
        step()
    timings = np.empty(n_steps)
    for index in range(n_steps):
        start = time.perf_counter()
        step()
        timings[index] = time.perf_counter() - start
    return timings * 1000


def measure(config: SeparatorConfig, folder: Path, steps: int, provider: str) -> tuple:
    """(provider used, onnxruntime ms per hop, torch ms per hop) for one configuration."""
    separator = SeparatorNet(config).eval()
    path = folder / f"{config.family}-{config.preset}.onnx"
    export_onnx(separator, path)
    runtime = OnnxHopModel(path, provider=provider)
    frame = np.random.default_rng(0).random((1, *separator.frame_shape), dtype=np.float32)
    ort_ms = _time(lambda: runtime.run_features(frame), steps)
    state = [separator.net.initial_state(1)]
    torch_frame = torch.from_numpy(frame)[None]

    def torch_step() -> None:
        with torch.no_grad():
            outputs = separator.net(torch_frame, *state[0])
        state[0] = split_outputs(separator.net, outputs)[2]

    return runtime.provider, ort_ms, _time(torch_step, steps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="onnxruntime vs torch per hop.")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", default="default", help="the families that have this size")
    arguments.add_provider_option(parser, default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(
        "| family | size | preset | ORT provider | ORT p50 ms | ORT p99 | ORT max "
        "| torch p50 ms | torch p99 | torch max | torch/ORT (p50) |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for family_name in available_families():
            family = get_family(family_name)
            # An offline family cannot be exported; not every family has every size.
            if not family.config_class.streamable or args.size not in family.sizes:
                continue
            for preset in PRESETS:
                try:
                    config = family.config(args.size, preset=preset)
                except ConfigError:
                    continue  # a family that refuses this preset (the hybrid: studio)
                provider, ort_ms, torch_ms = measure(
                    config, Path(folder), args.steps, args.provider
                )
                o50, o99 = np.percentile(ort_ms, [50, 99])
                t50, t99 = np.percentile(torch_ms, [50, 99])
                print(
                    f"| {family_name} | {args.size} | {preset} | {provider} "
                    f"| {o50:.3f} | {o99:.3f} | {ort_ms.max():.3f} "
                    f"| {t50:.3f} | {t99:.3f} | {torch_ms.max():.3f} | {t50 / o50:.2f} |"
                )


if __name__ == "__main__":
    main()
