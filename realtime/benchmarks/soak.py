"""Soak benchmark: stream for minutes on a JACK dummy server and watch for drift.

Run ``python -m livestems.realtime.benchmarks.soak --model M.onnx --minutes 10``. It starts a
JACK dummy server of its own (unless ``--server`` names a running one), loops a generated song
(noise and tones, seeded) through the engine with a PortAudio stream at the given block size,
and prints, once a minute and at the end: under-runs, device xruns, per-hop compute p50/p99/max
over the last minute and overall, and the process's resident memory, so that growth shows.
Figures, not a pass/fail.

Thread contract: the main thread runs this script and polls telemetry once a minute; the engine
has its worker thread and PortAudio its callback thread, as in ``livestems play``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from .. import arguments
from ..backends.jack_server import JackServer
from ..backends.portaudio import SoundDeviceBackend
from ..engine.engine import Engine, EngineSettings
from ..engine.processor import StreamProcessor
from ..engine.sources import FileSource
from ..io.generated_song import generated_song
from ..runtime.onnx_model import OnnxHopModel


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stream for minutes; report drift.")
    parser.add_argument("--model", required=True, help="a .onnx model file")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--block-size", type=arguments.block_size, default=256)
    parser.add_argument("--server", help="use this running JACK server instead of starting one")
    args = parser.parse_args(argv)
    model = OnnxHopModel(args.model, provider="cpu")
    meta = model.metadata
    server = None
    if args.server:
        os.environ["JACK_DEFAULT_SERVER"] = args.server
    else:
        server = JackServer("soak", meta.sample_rate, args.block_size, wait_for="portaudio")
        server.start()
    try:
        source = FileSource(generated_song(60.0, meta.sample_rate), meta.sample_rate)
        source.set_loop(0.0, source.duration)
        processor = StreamProcessor.for_model(model)
        engine = Engine(processor, EngineSettings(meta.sample_rate, args.block_size), source)
        backend = SoundDeviceBackend(engine)
        print(f"memory: {engine.lock_memory()}")
        backend.start()
        start_mb = resident_mb()
        print(f"model {args.model}: {meta.family} at {meta.preset.name}, block {args.block_size}")
        print("minute | under-runs | xruns | hop p50 ms | p99 ms | max ms | RSS MB")
        print(f"     0 |          0 |     0 |            |        |        | {start_mb:.1f}")
        hops_before = 0
        for minute in range(1, int(np.ceil(args.minutes)) + 1):
            backend.run_for(60.0 * min(1.0, args.minutes - minute + 1))
            snapshot = engine.telemetry.snapshot()
            recent = snapshot.hop_seconds[-(snapshot.hops - hops_before) :] * 1000
            hops_before = snapshot.hops
            p50, p99 = np.percentile(recent, [50, 99]) if recent.size else (np.nan, np.nan)
            print(
                f"{minute:6d} | {snapshot.underruns:10d} | {snapshot.device_xruns:5d} | "
                f"{p50:10.3f} | {p99:6.3f} | {recent.max() if recent.size else np.nan:6.3f} | "
                f"{resident_mb():.1f}",
                flush=True,
            )
            if backend.lost:
                print(f"stream lost: {backend.lost}")
                break
        backend.stop()
        snapshot = engine.telemetry.snapshot()
        p50, p99, worst = snapshot.hop_percentiles_ms()
        end_mb = resident_mb()
        print(
            f"total: {snapshot.samples_played / meta.sample_rate:.0f} s streamed, "
            f"{snapshot.underruns} under-runs, {snapshot.device_xruns} device xruns, hop p50 "
            f"{p50:.3f} p99 {p99:.3f} max {worst:.3f} ms (last {snapshot.hop_seconds.size} hops), "
            f"RSS {start_mb:.1f} -> {end_mb:.1f} MB ({end_mb - start_mb:+.1f})"
        )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
