"""``livestems bench``: the command over ``benchmarks/bench.py``: measure, then write the JSON, the
Markdown table and the plot.

Thread contract: main thread only.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from .. import arguments
from ..benchmarks import index_table
from ..benchmarks.bench import markdown, plot, run_bench
from .command import Command


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--list", action="store_true", help="list every benchmark of the project and exit"
    )
    parser.add_argument(
        "--model", action="append", default=[], help="a .onnx file or a model's name (repeatable)"
    )
    arguments.add_provider_option(parser, several=True)
    parser.add_argument("--block-sizes", nargs="+", type=arguments.block_size)
    parser.add_argument(
        "--stream-seconds", type=arguments.seconds(), help="seconds of real stream per cell"
    )
    parser.add_argument(
        "--input-seconds", type=arguments.seconds(), help="length of the generated song"
    )
    parser.add_argument("--no-stream", action="store_true", help="skip the JACK measurements")
    parser.add_argument("--quick", action="store_true", help="a short run (under 2 minutes)")
    parser.add_argument("-o", "--output", default="bench", help="folder for JSON, table, plot")


def _run(args: argparse.Namespace) -> int:
    if args.list:
        print(index_table())
        return 0
    folder = arguments.writable_folder(args.output)  # before the minutes of measuring, not after
    result = run_bench(args)
    payload = asdict(result)
    for cell, values in zip(result.cells, payload["cells"], strict=True):
        values["sum_of_parts_samples"] = cell.sum_of_parts_samples
        values["loopback_agrees"] = cell.loopback_agrees
    (folder / "bench.json").write_text(json.dumps(payload, indent=1))
    table = markdown(result)
    (folder / "bench.md").write_text(table + "\n")
    plotted = plot(result, folder / "bench.png")
    print(table)
    plot_note = f" and {folder / 'bench.png'}." if plotted else " (no plot: matplotlib missing)."
    print(f"\nWrote {folder / 'bench.json'}, {folder / 'bench.md'}{plot_note}")
    return 0


COMMAND = Command(
    help="measure latency and compute cost of models, presets and providers, next to peers",
    configure=_configure,
    run=_run,
)
