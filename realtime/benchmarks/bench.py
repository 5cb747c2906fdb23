"""The bench's measurements: what each model, preset, execution provider and device block costs, on
this machine, in one run, next to offline peers.

Thread contract: main thread only. It starts engines (each with its worker thread) and JACK
clients (JACK's process thread) one at a time and waits for them; it never runs beside a
stream of its own.

For each model file, provider and device block size (a *cell*) it measures:

- **algorithmic latency**: an impulse through the processor on the model's spectral path with
  identity masks (what the front end adds, whatever the weights);
- **compute per hop**: p50, p99 and max of the worker's unit of work (STFT, model step, iSTFT)
  on one hop, and the p50 as a fraction of the hop's duration;
- **offline real-time factor**: wall time / audio time of the whole-sequence path (what
  ``livestems separate`` uses) over a generated song;
- **a timed real stream** on a JACK dummy server at that block size: under-runs and xruns;
- **the loopback**: an impulse into the engine's input, timed until it returns from its output
  through JACK, next to the sum of the parts (algorithmic latency + engine buffer): they must
  agree within one device block.

Peers (offline separators measured on the same input) come from the ``livestems.peers``
entry-point group, which ``export/peers.py`` fills when torch is installed: this module never
imports torch. Results go to a JSON file (with machine information), a Markdown table and a
PNG plot (latency against compute, one point per configuration, peers marked).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.jack_server import JackServer
from ..dsp.presets import SAMPLE_RATE
from ..engine.engine import Engine, EngineSettings
from ..engine.processor import StreamProcessor, measure_latency_samples
from ..engine.sources import FileSource
from ..errors import UserError
from ..io.generated_song import generated_song
from ..runtime.catalog import find_model_file, model_files
from ..runtime.onnx_model import CUDA, OnnxHopModel, available_providers


@dataclass
class Cell:
    model: str
    family: str
    preset: str
    provider: str
    block_size: int
    hop: int
    algorithmic_latency_samples: int
    declared_latency_samples: int
    engine_buffer_samples: int
    hop_p50_ms: float
    hop_p99_ms: float
    hop_max_ms: float
    hop_fraction: float  # p50 / hop duration
    offline_rtf: float
    stream_seconds: float = 0.0
    underruns: int | None = None
    device_xruns: int | None = None
    loopback_samples: int | None = None
    loopback_path: str = ""  # "model": through the stems and the mixer; "bypass": the dry line
    stream_note: str = ""

    @property
    def sum_of_parts_samples(self) -> int:
        return self.algorithmic_latency_samples + self.engine_buffer_samples

    @property
    def loopback_agrees(self) -> bool | None:
        if self.loopback_samples is None:
            return None
        return abs(self.loopback_samples - self.sum_of_parts_samples) <= self.block_size


@dataclass
class BenchResult:
    machine: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)
    peers: list[dict[str, Any]] = field(default_factory=list)
    input_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    versions = {}
    for package in ("numpy", "onnxruntime", "onnxruntime-gpu", "livestems"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "providers": available_providers(),
    }


def time_hops(processor: StreamProcessor, n_hops: int) -> np.ndarray:
    """Milliseconds of each of ``n_hops`` calls of one hop each, after 20 untimed: the
    processor's per-hop compute (front end, model, synthesis) on a song's first hop."""
    hop = processor.preset.hop
    block = generated_song(2 * hop / SAMPLE_RATE + 0.01)[:hop]
    out = np.zeros((hop, len(processor.stems) * processor.n_channels), dtype=np.float32)
    for _ in range(20):
        processor.process_into(block, out)
    timings = np.empty(n_hops)
    for index in range(n_hops):
        started = time.perf_counter()
        processor.process_into(block, out)
        timings[index] = time.perf_counter() - started
    return timings * 1000.0


def measure_cell(path: Path, provider: str, block_size: int, song: np.ndarray, n_hops: int) -> Cell:
    """Everything but the stream: latency, compute per hop and the offline real-time factor."""
    model = OnnxHopModel(path, provider=provider)
    meta = model.metadata
    front_end = model.front_end()
    processor = StreamProcessor(model, meta.preset, meta.n_channels, front_end)
    processor.prepare(meta.sample_rate, max(block_size, meta.preset.hop))
    timings = time_hops(processor, n_hops)
    model.reset()
    processor.reset()
    started = time.perf_counter()
    chunk = meta.sample_rate // 2
    for start in range(0, song.shape[0], chunk):
        processor.process_sequence(song[start : start + chunk])
    offline_rtf = (time.perf_counter() - started) * meta.sample_rate / song.shape[0]
    hop_ms = 1000.0 * meta.preset.hop / meta.sample_rate
    p50, p99 = np.percentile(timings, [50, 99])
    settings = EngineSettings(meta.sample_rate, block_size)
    return Cell(
        model=path.name,
        family=meta.family,
        preset=meta.preset.name,
        provider=model.provider.replace("ExecutionProvider", ""),
        block_size=block_size,
        hop=meta.preset.hop,
        algorithmic_latency_samples=measure_latency_samples(
            meta.preset, block_size=64, path=front_end
        ),
        declared_latency_samples=meta.latency_samples,
        engine_buffer_samples=settings.buffer_samples,
        hop_p50_ms=float(p50),
        hop_p99_ms=float(p99),
        hop_max_ms=float(timings.max()),
        hop_fraction=float(p50 / hop_ms),
        offline_rtf=float(offline_rtf),
    )


def stream_cell(cell: Cell, path: Path, provider: str, song: np.ndarray, seconds: float) -> None:
    """A timed stream and the loopback, on the running dummy server, into ``cell``."""
    from ..backends.jack import JackPortsBackend
    from .loopback import measure_loopback_latency

    model = OnnxHopModel(path, provider=provider)
    meta = model.metadata
    settings = EngineSettings(meta.sample_rate, cell.block_size)

    def engine(source: FileSource | None) -> Engine:
        model.reset()
        processor = StreamProcessor.for_model(model)
        return Engine(processor, settings, source)

    source = FileSource(song, meta.sample_rate)
    source.set_loop(0.0, source.duration)
    playing = engine(source)
    backend = JackPortsBackend(playing, "livestems-play", connect_inputs=False)
    backend.start()
    try:
        backend.run_for(seconds)
    finally:
        backend.stop()
    snapshot = playing.telemetry.snapshot()
    cell.stream_seconds = snapshot.samples_played / meta.sample_rate
    cell.underruns, cell.device_xruns = snapshot.underruns, snapshot.device_xruns
    live = engine(None)
    backend = JackPortsBackend(live, "livestems-live", connect_outputs=False, connect_inputs=False)
    backend.start()
    try:
        # through the model where its stems sum to the input (they then return the impulse
        # whole); the dry line otherwise, and the table says which
        masks_sum_to_one = OnnxHopModel(path, provider="cpu").metadata.mask in ("softmax", "ratio")
        cell.loopback_path = "model" if masks_sum_to_one else "bypass"
        cell.loopback_samples = measure_loopback_latency(backend, path=cell.loopback_path)
    finally:
        backend.stop()


def find_models(explicit: list[str], quick: bool, folder: Path) -> list[Path]:
    """The models to measure: those given, else the bundled and user ones, else random-weight
    models of every family and preset from the ``livestems.bench_models`` plug-in (torch)."""
    if explicit:
        # A file or a name, as every other command's --model takes it (see 'livestems models').
        return [find_model_file(name) for name in explicit]
    found = [path for _, path in model_files()]
    if found:
        return found
    makers = list(metadata.entry_points(group="livestems.bench_models"))
    if not makers:
        raise UserError(
            "No models to measure: none bundled or installed; pass --model FILE.onnx, or "
            "install the 'train' extra so that random-weight models can be made."
        )
    return list(makers[0].load()(folder, quick=quick))


def weights_note(models: list[Path]) -> str:
    """What the report says about the weights: trained models were measured as they are, random
    ones (made when none is installed) only for their speed; the peers always have random
    weights."""
    random = [path.name for path in models if _has_random_weights(path)]
    trained = [path.name for path in models if path.name not in random]
    parts = []
    if trained:
        parts.append(f"trained models: {', '.join(trained)}")
    if random:
        parts.append(f"random-weight models (only speed is measured): {', '.join(random)}")
    return "; ".join(parts) + "; the peers have random weights (only speed is measured)"


def _has_random_weights(path: Path) -> bool:
    try:
        return OnnxHopModel(path, provider="cpu").metadata.training_data.startswith("none")
    except UserError:
        return False


def run_peers(song: np.ndarray, quick: bool, result: BenchResult) -> None:
    entries = list(metadata.entry_points(group="livestems.peers"))
    if not entries:
        result.notes.append("peers: not measured (the 'bench' extra with torch is not installed)")
        return
    for entry in entries:
        try:
            peers = entry.load()(song, quick=quick)
        except Exception as error:  # a peer plug-in that fails is reported, the run goes on
            result.peers.append({"name": entry.name, "loaded": False, "reason": repr(error)})
            continue
        result.peers += [asdict(peer) if not isinstance(peer, dict) else peer for peer in peers]


class Progress:
    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        print(
            f"\r[{self.done}/{self.total}] {elapsed:5.0f} s  {label[:60]:<60}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        print(file=sys.stderr)


def run_bench(args: argparse.Namespace) -> BenchResult:
    quick = args.quick
    providers = args.provider or (["cpu", "cuda"] if CUDA in available_providers() else ["cpu"])
    # "auto" is the CPU or CUDA, whichever a model would get: measure it under its real name
    providers = list(
        dict.fromkeys(
            ("cuda" if CUDA in available_providers() else "cpu") if p == "auto" else p
            for p in providers
        )
    )
    block_sizes = args.block_sizes or ([256] if quick else [128, 256, 512])
    stream_seconds = args.stream_seconds or (2.0 if quick else 10.0)
    song = generated_song(args.input_seconds or (10.0 if quick else 30.0))
    n_hops = 100 if quick else 500
    result = BenchResult(machine=machine_info(), input_seconds=song.shape[0] / SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as folder:
        models = find_models(args.model, quick, Path(folder))
        result.notes.append(weights_note(models))
        cells = [(m, p, b) for m in models for p in providers for b in block_sizes]
        progress = Progress(len(cells) * (1 if args.no_stream else 2) + 1)
        for path, provider, block_size in cells:
            progress.step(f"{path.name} {provider} {block_size}: compute")
            result.cells.append(measure_cell(path, provider, block_size, song, n_hops))
        if not args.no_stream:
            server = JackServer("bench", SAMPLE_RATE, block_sizes[0]).start()
            try:
                for cell, (path, provider, block_size) in zip(result.cells, cells, strict=True):
                    progress.step(f"{path.name} {provider} {block_size}: stream")
                    server.set_block_size(block_size)
                    try:
                        stream_cell(cell, path, provider, song, stream_seconds)
                    except UserError as error:
                        cell.stream_note = str(error)
            finally:
                server.stop()
        progress.step("peers")
        run_peers(song, quick, result)
        progress.close()
    return result


def markdown(result: BenchResult) -> str:
    loaded_peers = [peer for peer in result.peers if peer.get("loaded")]
    peer_columns = "".join(f" | offline speed vs {peer['name']}" for peer in loaded_peers)
    lines = [
        "| model | preset | provider | block | algorithmic ms | buffer ms | hop p50 ms | hop p99 "
        "| hop max | p50/hop | offline RTF | under-runs | loopback = parts?" + peer_columns + " |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        + "---:|" * len(loaded_peers),
    ]
    ms = 1000.0 / SAMPLE_RATE
    for cell in result.cells:
        loop = (
            "n/a"
            if cell.loopback_samples is None
            else f"{cell.loopback_samples} vs {cell.sum_of_parts_samples}: "
            + ("yes" if cell.loopback_agrees else "NO")
            + ("" if cell.loopback_path == "model" else f" ({cell.loopback_path})")
        )
        underruns = (
            "n/a" if cell.underruns is None else f"{cell.underruns} / {cell.stream_seconds:.0f} s"
        )
        # how many times faster than the peer at rendering offline: peer RTF / ours
        speed = "".join(
            f" | {peer['real_time_factor'] / cell.offline_rtf:.1f}x" for peer in loaded_peers
        )
        lines.append(
            f"| {cell.model} | {cell.preset} | {cell.provider} | {cell.block_size} "
            f"| {cell.algorithmic_latency_samples * ms:.2f} "
            f"| {cell.engine_buffer_samples * ms:.2f} "
            f"| {cell.hop_p50_ms:.3f} | {cell.hop_p99_ms:.3f} | {cell.hop_max_ms:.3f} "
            f"| {cell.hop_fraction:.3f} | {cell.offline_rtf:.4f} | {underruns} | {loop}{speed} |"
        )
    if result.peers:
        lines += [
            "",
            f"| peer | loaded | latency (input {result.input_seconds:.0f} s) | parameters "
            "| offline RTF |",
            "|---|---|---:|---:|---:|",
        ]
        for peer in result.peers:
            if not peer.get("loaded"):
                lines.append(f"| {peer['name']} | no: {peer.get('reason', '')} | | | |")
                continue
            lines.append(
                f"| {peer['name']} | yes | {peer['latency_seconds']:.2f} s "
                f"| {peer.get('parameters') or 0:,} | {peer['real_time_factor']:.4f} |"
            )
    lines += ["", *(f"- {note}" for note in result.notes)]
    return "\n".join(lines)


def plot(result: BenchResult, path: Path) -> bool:
    """Latency against compute, one point per configuration, peers marked; False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 5))
    for cell in result.cells:
        latency_ms = 1000.0 * cell.sum_of_parts_samples / SAMPLE_RATE
        axes.scatter(latency_ms, cell.hop_fraction, marker="o")
        axes.annotate(f"{cell.family} {cell.preset} {cell.provider} {cell.block_size}",
                      (latency_ms, cell.hop_fraction), fontsize=7)  # fmt: skip
    for peer in result.peers:
        if peer.get("loaded"):
            latency_ms = 1000.0 * peer["latency_seconds"]
            axes.scatter(latency_ms, peer["real_time_factor"], marker="*", s=150)
            axes.annotate(f"{peer['name']} (offline)", (latency_ms, peer["real_time_factor"]),
                          fontsize=8)  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("latency, ms (ours: algorithmic + engine buffer; peers: what they must see)")
    axes.set_ylabel("compute / real time (ours: per hop, p50; peers: offline)")
    axes.set_title("livestems bench: latency against compute")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
