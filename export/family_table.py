"""The README's table of the stronger families' sizes: parameters, MFLOPs per hop and the
per-hop time of one onnxruntime step on one core, next to ``lstm``'s, at the ``live`` preset.

    python -m livestems.export.family_table [--steps 400] [--readme README.md]

For each row it builds the family at that size (random weights), exports it to ONNX and times
single-frame steps with state through the runner the engine uses (CPU, one thread), after a
warm-up (``ort_benchmark.measure``); it prints a Markdown table and, with ``--readme``, puts it
between the README's ``<!-- family-sizes:begin -->`` and ``<!-- family-sizes:end -->`` lines.
Figures, not a pass/fail: the p99 column is what issue 16's budget (0.35 of the hop) is about.

Thread contract: main thread only.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..models.families.cost import flops_per_hop
from ..models.families.registry import get_family
from ..models.families.separator import SeparatorNet
from ..realtime.dsp.presets import PRESETS
from .ort_benchmark import measure

#: (family, size, what the row is, field overrides)
ROWS: tuple[tuple[str, str, str, dict], ...] = (
    ("lstm", "default", "default (for comparison)", {}),
    ("bsrnn", "small", "small", {}),
    ("bsrnn", "small", "small, complex masks", {"mask_domain": "complex"}),
    ("bsrnn", "medium", "medium (default)", {}),
    ("bsrnn", "medium", "medium, complex masks", {"mask_domain": "complex"}),
    ("hybrid", "small", "small", {}),
)


def table(steps: int) -> str:
    preset = PRESETS["live"]
    hop_ms = 1000.0 * preset.hop / preset.sample_rate
    lines = [
        "| family | size | parameters | MFLOPs/hop | ORT p50 ms | ORT p99 ms | p99 / hop |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for family_name, size, label, fields in ROWS:
            config = get_family(family_name).config(size, preset="live")
            if fields:
                config = dataclasses.replace(config, **fields)
            model = SeparatorNet(config).eval()
            parameters = sum(p.numel() for p in model.parameters())
            mflops = flops_per_hop(model) / 1e6
            _, ort_ms, _ = measure(config, Path(folder), steps, "cpu")
            p50, p99 = np.percentile(ort_ms, [50, 99])
            lines.append(
                f"| {family_name} | {label} | {parameters:,} | {mflops:.1f} | {p50:.2f} "
                f"| {p99:.2f} | {p99 / hop_ms:.2f} |"
            )
    load = os.getloadavg()[0]
    lines.append("")
    lines.append(
        f"Measured by `python -m livestems.export.family_table` at a load average of {load:.1f} "
        f"on this machine's {os.cpu_count()} cores; the hop is {hop_ms:.2f} ms."
    )
    return "\n".join(lines)


def replace_block(readme: Path, text: str) -> None:
    begin, end = "<!-- family-sizes:begin -->\n", "\n<!-- family-sizes:end -->"
    content = readme.read_text()
    if begin not in content or end not in content:
        raise SystemExit(f"{readme} has no family-sizes block to replace.")
    head, rest = content.split(begin, 1)
    readme.write_text(head + begin + text + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The stronger families' sizes and costs.")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--readme", help="replace this README's family-sizes block")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    text = table(args.steps)
    print(text)
    if args.readme:
        replace_block(Path(args.readme), text)


if __name__ == "__main__":
    main()
