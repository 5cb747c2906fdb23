"""livestems.realtime.benchmarks: benchmarks of the real-time side, and the index of every
benchmark of the project (``livestems bench --list``; README.md's "Benchmarks" table is its
output): what they print are figures, never pass or fail.

Thread contract: each module states its own; this index is constant data.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BENCHMARKS", "Benchmark", "index_table"]


class Benchmark(NamedTuple):
    command: str
    measures: str
    needs: str


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "livestems bench [--quick]",
        "latency, compute per hop, real streams and a JACK loopback per model x provider x "
        "block size, next to Open-Unmix and HT-Demucs",
        "jackd",
    ),
    Benchmark(
        "python -m livestems.realtime.benchmarks.stft",
        "per-hop cost of the front end (STFT, masks, iSTFT) per preset",
        "",
    ),
    Benchmark(
        "python -m livestems.realtime.benchmarks.soak --model M.onnx",
        "minutes of streaming on a JACK dummy server: under-runs, xruns, compute, memory growth",
        "jackd",
    ),
    Benchmark(
        "python -m livestems.realtime.benchmarks.practice",
        "under-runs and worker time per block at tempo 0.8 and transpose -2, round a loop A-B "
        "and with a seek a second, next to plain playback",
        "jackd, practice extra",
    ),
    Benchmark(
        "python -m livestems.realtime.benchmarks.memory",
        "peak memory of `livestems separate` for 1, 10 and 60-minute songs",
        "",
    ),
    Benchmark(
        "python -m livestems.gui.soak",
        "under-runs with the window open and painting, engine in-process and in its own process",
        "jackd, Qt",
    ),
    Benchmark(
        "python -m livestems.export.ort_benchmark",
        "per-hop cost of one model in onnxruntime against torch",
        "train extra",
    ),
    Benchmark(
        "python -m livestems.export.family_table [--readme README.md]",
        "parameters, MFLOPs and onnxruntime p50/p99 per hop of bsrnn and hybrid sizes next to "
        "lstm (README's table)",
        "train extra",
    ),
    Benchmark(
        "python -m livestems.export.separate_benchmark",
        "`livestems separate`'s sequence path against the live path, per family",
        "train extra",
    ),
    Benchmark(
        "python -m livestems.export.peers",
        "Open-Unmix and HT-Demucs (random weights) timed on the generated song",
        "bench extra",
    ),
    Benchmark(
        "python -m livestems.models.families.cost",
        "parameters, MFLOPs and torch time per hop, per family, size and preset",
        "train extra",
    ),
    Benchmark(
        "python -m livestems.models.training.benchmark",
        "training samples/s, old path against new, next to this machine's matmul rate",
        "train extra",
    ),
    Benchmark(
        "python -m livestems.models.synth.benchmark",
        "synthetic songs rendered per second and times real time",
        "train extra",
    ),
)


def index_table() -> str:
    """The index as a Markdown table."""
    lines = ["| command | what it measures | needs |", "|---|---|---|"]
    lines += [f"| `{b.command}` | {b.measures} | {b.needs or '-'} |" for b in BENCHMARKS]
    return "\n".join(lines)
