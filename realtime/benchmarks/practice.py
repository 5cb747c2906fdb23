"""Practice benchmark: what tempo and key changes cost the real-time path.

    python -m livestems.realtime.benchmarks.practice [--model M.onnx] [--seconds 20]
                                                   [--block-size 256] [--tempo 0.8]
                                                   [--transpose -2] [--loop 2] [--seek-every 1]
                                                   [--readme README.md]

Starts a JACK dummy server of its own and plays the bundled demo song (else a generated one)
through the engine four times in one run, at the same block size: as recorded, then at the
given tempo and transposition (Rubber Band in the worker), then the same round a loop A-B of
``--loop`` seconds from 10 s in (where the stretcher goes from B back to A every pass), then the
same with a seek every ``--seek-every`` seconds (where a stretcher starts from nothing). For each
it prints under-runs (engine and practice source), device xruns, the model's compute per hop
(p50, p99) and the worker's refill time per call (p50, p99, max: reading the song, stretching,
the ring), and the stretched run's worker time against the plain run's. Figures, not a
pass/fail. ``--readme`` also puts the table between the README's
``<!-- practice-benchmark:begin -->`` and ``:end -->`` lines.

Thread contract: the main thread runs this script and reads telemetry after each run; the
engine has its worker thread and PortAudio its callback thread, as in ``livestems play``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time
from pathlib import Path

import numpy as np

from .. import arguments
from ..backends.jack_server import JackServer
from ..backends.portaudio import SoundDeviceBackend
from ..engine.engine import Engine
from ..io.audio_file import load_audio
from ..io.generated_song import generated_song
from ..runtime.catalog import bundled_demo_song, resolve_model


def _play(  # noqa: PLR0913
    model,  # noqa: ANN001
    audio: np.ndarray,
    block_size: int,
    seconds: float,
    tempo: float,
    transpose: float,
    loop: tuple[float, float] | None = None,
    seek_every: float | None = None,
) -> dict:
    engine = Engine.for_model(model, audio, block_size, practice=True)
    assert engine.source is not None
    start, end = loop if loop is not None else (0.0, engine.source.duration)
    engine.source.set_loop(start, end)
    engine.source.seek(start)
    engine.set_tempo(tempo)
    engine.set_transpose(transpose)
    engine.reset()
    backend = SoundDeviceBackend(engine)
    backend.start()
    try:
        if seek_every is None:
            time.sleep(seconds)
        else:
            # Back and forth across the song, as a player does between the parts they practise.
            targets = itertools.cycle(t for t in (5.0, 20.0, 12.0, 30.0) if t < end)
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                time.sleep(min(seek_every, left))
                engine.source.seek(next(targets))
    finally:
        backend.stop()
        engine.close()
    snapshot = engine.telemetry.snapshot()
    p50, p99, _ = snapshot.hop_percentiles_ms()
    calls = min(engine.refill_calls, engine.refill_seconds.shape[0])
    refills = 1000.0 * engine.refill_seconds[:calls]
    return {
        "underruns": snapshot.underruns,
        "source_underruns": engine.source.underruns,  # type: ignore[attr-defined]
        "xruns": snapshot.device_xruns,
        "hop_p50": p50,
        "hop_p99": p99,
        "refill_p50": float(np.percentile(refills, 50)) if calls else float("nan"),
        "refill_p99": float(np.percentile(refills, 99)) if calls else float("nan"),
        "refill_max": float(refills.max()) if calls else float("nan"),
        "hop_ms": 1000.0 * engine.processor.preset.hop / engine.settings.sample_rate,
        "block_ms": 1000.0 * block_size / engine.settings.sample_rate,
        "played_s": snapshot.samples_played / engine.settings.sample_rate,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tempo and key's cost on the real-time path.")
    parser.add_argument("--model", help="a .onnx file or a model's name (default: bundled)")
    parser.add_argument("--seconds", type=arguments.seconds(), default=20.0)
    parser.add_argument("--block-size", type=arguments.block_size, default=256)
    parser.add_argument("--tempo", type=float, default=0.8)
    parser.add_argument("--transpose", type=float, default=-2.0)
    parser.add_argument(
        "--loop", type=arguments.seconds(), default=2.0,
        help="the third run's loop A-B, this long, from 10 s into the song",
    )  # fmt: skip
    parser.add_argument(
        "--seek-every", type=arguments.seconds(), default=1.0,
        help="the fourth run seeks this often, stretched",
    )  # fmt: skip
    parser.add_argument("--readme", help="replace this README's practice-benchmark block")
    args = parser.parse_args(argv)
    model = resolve_model(args.model, "cpu")
    rate = model.metadata.sample_rate
    demo = bundled_demo_song()
    audio = load_audio(demo, rate) if demo is not None else generated_song(30.0, rate)
    server = JackServer("practice", rate, args.block_size, wait_for="portaudio").start()
    play = functools.partial(_play, model, audio, args.block_size, args.seconds)
    try:
        runs = [
            ("as recorded", play(1.0, 0.0)),
            (
                f"tempo {args.tempo:g}, transpose {args.transpose:+g}",
                play(args.tempo, args.transpose),
            ),
            (
                f"the same, looping {args.loop:g} s (A-B)",
                play(args.tempo, args.transpose, loop=(10.0, 10.0 + args.loop)),
            ),
            (
                f"the same, seeking every {args.seek_every:g} s",
                play(args.tempo, args.transpose, seek_every=args.seek_every),
            ),
        ]
    finally:
        server.stop()
    lines = [
        f"model {model.path.name}, blocks of {args.block_size} samples "
        f"({runs[0][1]['block_ms']:.2f} ms), {args.seconds:g} s each, JACK dummy server",
        "",
        "| playback | under-runs | source under-runs | xruns | model per hop p50 / p99 (ms) "
        "| refill per block p50 / p99 / max (ms) | worker per block p99 (% of block) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in runs:
        worker = 100.0 * (run["hop_p99"] * run["block_ms"] / run["hop_ms"] + run["refill_p99"])
        lines.append(
            f"| {name} | {run['underruns']} | {run['source_underruns']} | {run['xruns']} "
            f"| {run['hop_p50']:.3f} / {run['hop_p99']:.3f} "
            f"| {run['refill_p50']:.3f} / {run['refill_p99']:.3f} / {run['refill_max']:.3f} "
            f"| {worker / run['block_ms']:.1f} |"
        )
    plain, stretched = runs[0][1], runs[1][1]
    ratio = (stretched["hop_p50"] + stretched["refill_p50"]) / (
        plain["hop_p50"] + plain["refill_p50"]
    )
    lines += ["", f"Worker time per block, stretched / as recorded (p50): {ratio:.2f}x."]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        _replace_block(Path(args.readme), text)


def _replace_block(readme: Path, text: str) -> None:
    begin, end = "<!-- practice-benchmark:begin -->\n", "\n<!-- practice-benchmark:end -->"
    content = readme.read_text()
    if begin not in content or end not in content:
        raise SystemExit(f"{readme} has no practice-benchmark block to replace.")
    head, rest = content.split(begin, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(head + begin + text + end + tail)


if __name__ == "__main__":
    main()
