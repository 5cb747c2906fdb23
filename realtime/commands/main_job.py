"""What ``livestems`` does with no command: the main job on the embedded defaults.

Thread contract: main thread only.

The main job plays the bundled demo song through the bundled model: in the window when there is
a display; headless when there is none, through the very engine the window drives, to the default
audio output when there is one and otherwise rendered by the offline back-end (the same
callback, block by block, as fast as the worker keeps up), then prints the report: measured
algorithmic latency, engine buffer, device latency, per-hop compute and under-runs. A checkout
without a bundled model or demo (a user who deleted them) says so and measures the latency of the
spectral front end instead.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ..dsp.presets import PRESETS
from ..engine.processor import measure_latency_samples
from ..errors import UserError
from .command import load_command, registered_commands

# The device block the demo plays with: the block the latency figures in README.md assume.
DEMO_BLOCK_SIZE = 256


def latency_report() -> str:
    """One line per preset: its geometry and the latency measured through the processor."""
    lines = []
    width = max(len(name) for name in PRESETS)  # the columns line up whatever the names
    for preset in PRESETS.values():
        measured = measure_latency_samples(preset)
        lines.append(
            f"  {preset.name:<{width}} analysis {preset.n_fft:>4}, hop {preset.hop:>4}, "
            f"synthesis {preset.synthesis_length:>4}: {measured:>5} samples = "
            f"{1000.0 * measured / preset.sample_rate:6.2f} ms at {preset.sample_rate} Hz"
        )
    return "\n".join(lines)


def _run_window() -> int | None:
    """The window (the ``gui`` command, a plug-in: realtime never imports gui) when a display is
    set; ``None`` when there is none or Qt cannot open it there (then the headless job runs)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    entry = registered_commands().get("gui")
    if entry is None:
        return None
    try:
        return load_command(entry).run(argparse.Namespace(file=None))
    except UserError as error:  # the display is set but Qt cannot start there
        print(f"livestems: {error} Running without the window.", file=sys.stderr)
        return None


def _demo_seconds() -> float | None:
    """``$LIVESTEMS_DEMO_SECONDS``: play only the demo's start (a quick look; the tests)."""
    value = os.environ.get("LIVESTEMS_DEMO_SECONDS")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise UserError(
            f"LIVESTEMS_DEMO_SECONDS must be a positive number of seconds, not {value!r}."
        )
    return seconds


def _play_demo_headless(model_path: Path, demo: Path) -> int:
    from ..backends.portaudio import DeviceError, OfflineBackend, SoundDeviceBackend
    from ..engine.engine import Engine
    from ..engine.report import format_report
    from ..io.audio_file import load_audio
    from ..runtime.onnx_model import OnnxHopModel

    model = OnnxHopModel(model_path)
    meta = model.metadata
    audio = load_audio(demo, meta.sample_rate)
    seconds = _demo_seconds()
    if seconds is not None:
        audio = audio[: round(seconds * meta.sample_rate)]
    engine = Engine.for_model(model, audio, DEMO_BLOCK_SIZE)
    source = engine.source
    assert source is not None
    print(
        f"livestems: playing the demo ({demo.name}, {source.duration:.1f} s) through "
        f"{model_path.name} ({meta.family}, {meta.preset.name} preset; stems "
        f"{', '.join(engine.stems)}), no display: headless."
    )
    sys.stdout.flush()
    device_latency = 0
    engine.lock_memory()
    try:
        backend = SoundDeviceBackend(engine)
        backend.start()
    except DeviceError as error:
        print(
            f"livestems: {error} Rendering through the engine offline instead, block by block "
            "as a device would pull it."
        )
        offline = OfflineBackend(engine)
        try:
            offline.render(round(source.duration * meta.sample_rate) + engine.latency_samples)
        finally:
            engine.close()
    else:
        try:
            backend.run_for(source.duration + engine.latency_samples / meta.sample_rate)
        finally:
            backend.stop()
            engine.close()
        device_latency = backend.device_latency_samples
        if backend.lost:
            print(f"livestems: the stream stopped: {backend.lost}.", file=sys.stderr)
            print(format_report(engine, device_latency, model_path.name))
            return 1
    print(format_report(engine, device_latency, model_path.name))
    return 0


def run_main_job() -> int:
    status = _run_window()
    if status is not None:
        return status
    from ..runtime.catalog import bundled_demo_song, bundled_model_file

    model_path, demo = bundled_model_file(), bundled_demo_song()
    if model_path is not None and demo is not None:
        return _play_demo_headless(model_path, demo)
    missing = "model" if model_path is None else "demo song"
    print(
        f"livestems: this checkout has no bundled {missing}, so there is nothing to play; "
        "measuring the spectral front end instead (identity masks, an impulse through the "
        "streaming path):"
    )
    print(latency_report())
    sys.stdout.flush()
    return 0
