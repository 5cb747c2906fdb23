"""Benchmark: ``livestems separate`` (the sequence path) against the live path, per family.

Run ``python -m livestems.export.separate_benchmark``. For each family (at a size, default
``default``) and preset (default ``live``) it exports a random-weight model to a temporary
folder, writes a generated stereo song (noise and tones, 3 minutes by default) and times:

- **separate**: ``separate_file`` on that song, end to end (decoding, the sequence path with one
  onnxruntime call per chunk, the tail, writing four float32 wav files);
- **live**: ``StreamProcessor.process`` one hop per call (one ``model.step`` per hop, as the
  engine's worker runs it) over the first ``--live-seconds`` of the same song (30 s by default,
  the whole song with ``--live-seconds 0``); its real-time factor is that of the part measured.

Both use the same model file, provider and thread count (``--threads``, default 1, the live
engine's setting). Real-time factor = wall seconds / audio seconds (below 1: faster than real
time); the last column is live RTF / separate RTF. Figures, not a pass/fail.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ..models.families.registry import available_families, get_family
from ..models.families.separator import SeparatorNet
from ..realtime import arguments
from ..realtime.engine.processor import StreamProcessor
from ..realtime.io.generated_song import generated_song
from ..realtime.runtime.onnx_model import OnnxHopModel
from ..realtime.runtime.separation import DEFAULT_CHUNK_SECONDS, separate_file
from .onnx_export import export_onnx


def time_live(model: OnnxHopModel, song: np.ndarray) -> float:
    """Seconds to run ``song`` through the live path, one hop per ``process`` call."""
    meta = model.metadata
    hop = meta.preset.hop
    processor = StreamProcessor.for_model(model)
    processor.prepare(meta.sample_rate, hop)
    started = time.perf_counter()
    for start in range(0, song.shape[0], hop):
        processor.process(song[start : start + hop])
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="livestems separate vs the live path.")
    parser.add_argument("--size", default="default")
    parser.add_argument("--preset", default="live")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the song")
    parser.add_argument(
        "--live-seconds",
        type=float,
        default=30.0,
        help="seconds of the song the live path runs (0: all of it)",
    )
    arguments.add_provider_option(parser, default="cpu")
    parser.add_argument(
        "--threads", type=arguments.threads, default=1, help="onnxruntime CPU threads"
    )
    parser.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS)
    args = parser.parse_args(argv)
    print(
        "| family | size | preset | provider | threads | audio s | separate wall s "
        "| separate RTF | live audio s | live wall s | live RTF | live RTF / separate RTF |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for family_name in available_families():
            config = get_family(family_name).config(args.size, preset=args.preset)
            model_path = folder / f"{family_name}.onnx"
            export_onnx(SeparatorNet(config).eval(), model_path)
            model = OnnxHopModel(model_path, provider=args.provider, cpu_threads=args.threads)
            rate = model.metadata.sample_rate
            song = generated_song(args.seconds, rate)
            song_path = folder / "song.wav"
            sf.write(song_path, song, rate, subtype="FLOAT")
            report = separate_file(
                song_path, model, folder / "out", chunk_seconds=args.chunk_seconds
            )
            n_live = song.shape[0] if args.live_seconds <= 0 else round(args.live_seconds * rate)
            live = song[:n_live]
            model.reset()
            live_wall = time_live(model, live)
            live_audio = live.shape[0] / rate
            live_rtf = live_wall / live_audio
            print(
                f"| {family_name} | {args.size} | {args.preset} | {model.provider} "
                f"| {args.threads} | {report.duration_s:.1f} | {report.wall_s:.2f} "
                f"| {report.real_time_factor:.4f} | {live_audio:.1f} | {live_wall:.2f} "
                f"| {live_rtf:.4f} | {live_rtf / report.real_time_factor:.1f} |"
            )


if __name__ == "__main__":
    main()
