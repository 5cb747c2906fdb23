"""Training speed: the old and the new training path side by side, on this machine, in one run.

    python -m livestems.models.training.benchmark [--recipe models/recipes/lstm-live.json]
        [--batches 5] [--threads 1 0] [--compile] [--json OUT.json]

For the recipe's model, excerpt length and batch size, and for each thread count (0: all cores),
it times whole training steps (drawing the batch, forward, backward, Adam) of:

- ``old``: the path as it was: every batch's excerpts analysed again (``data_path``
  "waveform"), batch norm on a transposed view, torch's deterministic algorithms;
- ``new``: spectra analysed once (``data_path`` "spectral"), batch norm folded into one affine
  map on the frames' own layout, no deterministic slow paths;
- ``new, compiled`` (``--compile``): the same through ``torch.compile``.

and prints samples/s (median step), the ratio new/old, the model's multiply-accumulates per
training sample (forward, from ``cost.flops_per_hop``, times the excerpt's frames; a training
step costs about three times that: the forward pass, and the backward pass's two products per
layer), and the rate achieved (6 x forward MACs per sample x samples/s, in GFLOP/s) next to this
machine's dense float32 matrix-multiply rate measured here with the same threads: the physical
limit of the loop. Only MUSDB18 training data is needed (``--musdb`` or the recipe's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..families.cost import flops_per_hop
from ..families.lstm import LstmMaskNet
from .train import (
    TrainConfig,
    build_model,
    keep_freed_memory,
    load_training_data,
    make_objective,
    make_sampler,
)

DEFAULT_RECIPE = Path(__file__).parents[1] / "recipes" / "lstm-live.json"


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 8) -> float:
    """Dense float32 matrix multiplication, median of ``repeats``, in GFLOP/s."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


def step_seconds(config: TrainConfig, tracks: list, n_batches: int, legacy: bool) -> list[float]:
    """Seconds of each of ``n_batches`` whole training steps (after warm-up steps)."""
    LstmMaskNet.legacy_norm = legacy
    try:
        torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
        model = build_model(config).train()
        sampler = make_sampler(config, tracks, model)
        keep_freed_memory()  # after the analysis, as training does
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        objective = make_objective(model, config)
        times = []
        warmup = 2 if config.compile else 1
        for index in range(warmup + n_batches):
            started = time.perf_counter()
            batch = sampler.batch(config.seed, 0, index, config.batch_size)
            optimizer.zero_grad(set_to_none=True)
            loss = objective(batch.mixture, batch.targets)
            loss.backward()
            optimizer.step()
            if index >= warmup:
                times.append(time.perf_counter() - started)
        return times
    finally:
        LstmMaskNet.legacy_norm = False
        torch.use_deterministic_algorithms(False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livestems.models.training.benchmark")
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="a training config")
    parser.add_argument("--musdb", default=os.environ.get("LIVESTEMS_MUSDB"))
    parser.add_argument("--batches", type=int, default=5, help="timed steps per path")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="0: all cores")
    parser.add_argument("--compile", action="store_true", help="also the compiled new path")
    parser.add_argument(
        "--songs", type=int, default=20, help="training songs held (speed does not depend on it)"
    )
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error("--batches must be at least 1")

    recipe = TrainConfig.from_file(args.recipe).to_dict()
    if args.musdb:
        recipe["musdb"] = args.musdb
    recipe.update(synthetic_songs=0, folders=[])
    base = TrainConfig.from_dict(recipe)
    tracks = load_training_data(base)[0][: max(1, args.songs)]
    # both paths do the same work: the old path's augmentations and loss, so that only the
    # path differs
    same_work = dataclasses.replace(
        base, sampling=base.sampling.waveform_only(), complex_weight=0.0, mrstft_weight=0.0
    )
    paths = {
        "old": (dataclasses.replace(same_work, data_path="waveform", deterministic=True), True),
        "new": (dataclasses.replace(same_work, data_path="spectral", deterministic=False), False),
    }
    if args.compile:
        paths["new, compiled"] = (dataclasses.replace(paths["new"][0], compile=True), False)

    model = build_model(base)
    frames = round(base.sampling.excerpt_s * 44100) // model.front_end.hop
    macs_per_sample = flops_per_hop(model) // 2 * frames
    print(
        f"recipe {Path(args.recipe).name}: {base.family}/{base.size} at {base.preset}, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, excerpts of "
        f"{base.sampling.excerpt_s:g} s ({frames} frames), batch {base.batch_size}; "
        f"{macs_per_sample / 1e9:.3f} G multiply-accumulates per sample (forward)"
    )
    rows = []
    for threads in args.threads:
        n_threads = threads or os.cpu_count() or 1
        matmul = matmul_gflops(n_threads)
        results = {}
        for name, (config, legacy) in paths.items():
            config = dataclasses.replace(config, threads=n_threads)
            times = step_seconds(config, tracks, args.batches, legacy)
            rate = config.batch_size / statistics.median(times)
            results[name] = rate
            achieved = 6 * macs_per_sample * rate / 1e9
            rows.append(
                {
                    "threads": n_threads,
                    "path": name,
                    "samples_per_s": rate,
                    "step_s_median": statistics.median(times),
                    "step_s_max": max(times),
                    "speedup": rate / results["old"],
                    "achieved_gflops": achieved,
                    "matmul_gflops": matmul,
                    "share_of_matmul": achieved / matmul,
                }
            )
            print(
                f"  {n_threads} thread(s), {name:14s} {rate:6.2f} samples/s  "
                f"(step median {statistics.median(times):.2f} s)",
                flush=True,
            )
    print()
    print("| threads | path | samples/s | vs old | achieved GFLOP/s | matmul GFLOP/s | share |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['threads']} | {row['path']} | {row['samples_per_s']:.2f} | "
            f"{row['speedup']:.2f}x | {row['achieved_gflops']:.1f} | "
            f"{row['matmul_gflops']:.1f} | {100 * row['share_of_matmul']:.0f} % |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "recipe": recipe,
                    "macs_per_sample": macs_per_sample,
                    "frames_per_sample": frames,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
