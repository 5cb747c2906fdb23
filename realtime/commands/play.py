"""``livestems play FILE``: a song through the separator, with keyboard control in a terminal.

Thread contract: the main thread runs the terminal (raw keyboard input, a status line ~10 times
a second) and calls the engine's and the source's controls; the engine runs its worker thread
and PortAudio its callback thread. Nothing here touches the audio path directly.

Keys: 1-4 mute a stem, Shift+1-4 (! @ # $) solo it, space pause, left/right seek 5 s, b bypass,
[ ] tempo -/+5 %, - = transpose -/+1 semitone, q quit. ``--headless --duration S`` plays
without a terminal UI and prints a report; so does any run whose standard input is not a
terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator

from .. import arguments
from ..backends.portaudio import SoundDeviceBackend
from ..engine.engine import Engine
from ..engine.report import format_report
from ..engine.sources import FileSource
from ..errors import UserError
from ..io.audio_file import load_audio
from ..runtime.catalog import DEFAULT_MODEL, resolve_model
from .command import Command

SOLO_KEYS = tuple("!@#$%^&*(")  # a tuple: membership is exact ("" is in every str)
SEEK_SECONDS = 5.0
TEMPO_KEYS = {"[": -0.05, "]": 0.05}
TRANSPOSE_KEYS = {"-": -1.0, "=": 1.0}


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a song: wav, flac, ogg, mp3 or a MUSDB .stem.mp4")
    parser.add_argument(
        "--model",
        help=f"a .onnx file or a model's name (default: {DEFAULT_MODEL}, the bundled default "
        "for a recording)",
    )
    arguments.add_provider_option(parser)
    arguments.add_postfilter_option(parser)
    parser.add_argument(
        "--block-size", type=arguments.block_size, default=256, help="device block, in frames"
    )
    parser.add_argument("--output-device", help="PortAudio device name or index")
    parser.add_argument("--headless", action="store_true", help="no terminal UI; print a report")
    parser.add_argument("--duration", type=arguments.seconds(), help="stop after this many seconds")
    parser.add_argument(
        "--start", type=arguments.seconds(allow_zero=True), default=0.0, help="start at this second"
    )
    parser.add_argument("--mute", action="append", default=[], metavar="STEM", help="mute a stem")
    parser.add_argument("--solo", action="append", default=[], metavar="STEM", help="solo a stem")
    arguments.add_practice_options(parser)


def _stem_index(engine: Engine, name: str) -> int:
    from ..errors import UserError

    if name not in engine.stems:
        raise UserError(f"No stem called {name!r}: this model has {', '.join(engine.stems)}.")
    return engine.stems.index(name)


def build_player(args: argparse.Namespace) -> tuple[Engine, SoundDeviceBackend, str]:
    model = resolve_model(args.model, args.provider)
    engine = Engine.for_model(
        model,
        load_audio(args.file, model.metadata.sample_rate),
        args.block_size,
        args.wiener,
        practice=True,
    )
    assert engine.source is not None
    engine.set_tempo(args.tempo)
    engine.set_transpose(args.transpose)
    engine.set_count_in(args.count_in)
    engine.source.seek(args.start)
    for name in args.mute:
        engine.set_mute(_stem_index(engine, name), True)
    for name in args.solo:
        engine.set_solo(_stem_index(engine, name), True)
    engine.mixer.reset()  # start at the requested gains, not ramping towards them
    backend = SoundDeviceBackend(engine, output_device=_device(args.output_device))
    return engine, backend, model.path.name


def _device(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    descriptor = sys.stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    try:
        # TCSANOW, not the default TCSAFLUSH: keys typed while the model loaded still count.
        tty.setcbreak(descriptor, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


ARROWS = {"\x1b[C": "right", "\x1b[D": "left"}


def split_keys(typed: str) -> list[str]:
    """What one read of the terminal holds, key by key: ``"12\x1b[C"`` -> ``["1", "2",
    "right"]`` (keys typed quickly, or while the player started, arrive together)."""
    keys, i = [], 0
    while i < len(typed):
        arrow = ARROWS.get(typed[i : i + 3])
        keys.append(arrow or typed[i])
        i += 3 if arrow else 1
    return keys


def _read_keys(timeout: float) -> list[str]:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return []
    return split_keys(os.read(sys.stdin.fileno(), 64).decode(errors="ignore"))


def handle_key(engine: Engine, source: FileSource, key: str) -> bool:
    """Act on one key; False when the user quits."""
    n_stems = len(engine.stems)
    if key in ("q", "Q", "\x03"):
        return False
    if key.isdigit() and 1 <= int(key) <= n_stems:
        stem = int(key) - 1
        engine.set_mute(stem, not engine.mixer.is_muted(stem))
    elif key in SOLO_KEYS[:n_stems]:
        stem = SOLO_KEYS.index(key)
        engine.set_solo(stem, not engine.mixer.is_soloed(stem))
    elif key == " ":
        source.toggle()
    elif key == "right":
        source.seek_by(SEEK_SECONDS)
    elif key == "left":
        source.seek_by(-SEEK_SECONDS)
    elif key in ("b", "B"):
        engine.set_bypass(not engine.bypassed)
    elif key in TEMPO_KEYS:
        nudge(engine.set_tempo, getattr(source, "tempo", 1.0) + TEMPO_KEYS[key])
    elif key in TRANSPOSE_KEYS:
        nudge(engine.set_transpose, getattr(source, "transpose", 0.0) + TRANSPOSE_KEYS[key])
    return True


def nudge(setter: Callable[[float], None], value: float) -> None:
    """A key's step, ignored at the end of the range (a key held down must not end the run)."""
    try:
        setter(round(value, 4))
    except UserError:
        pass


def status_line(engine: Engine, source: FileSource) -> str:
    snapshot = engine.telemetry.snapshot()
    p50, p99, _ = snapshot.hop_percentiles_ms()
    stems = " ".join(
        f"{i + 1}:{name}{'*' if engine.mixer.is_soloed(i) else ''}"
        f"{'(m)' if engine.mixer.is_muted(i) else ''}"
        for i, name in enumerate(engine.stems)
    )
    state = "bypass" if engine.bypassed else ("playing" if source.playing else "paused")
    practice = ""
    tempo, transpose = getattr(source, "tempo", 1.0), getattr(source, "transpose", 0.0)
    if tempo != 1.0 or transpose != 0.0:
        practice = f" tempo {100 * tempo:.0f}% key {transpose:+.2f}"
    latency_ms = 1000.0 * engine.latency_samples / engine.settings.sample_rate
    return (
        f"{source.seconds:6.1f}/{source.duration:.0f}s {state:<7}{practice} {stems} | latency "
        f"{latency_ms:.1f} ms | hop p50 {p50:.2f} p99 {p99:.2f} ms | under-runs "
        f"{snapshot.underruns}"
    )


def _run(args: argparse.Namespace) -> int:
    engine, backend, model_name = build_player(args)
    source = engine.source
    assert source is not None
    interactive = not args.headless and sys.stdin.isatty()
    duration = args.duration if args.duration is not None else source.duration - source.seconds
    engine.lock_memory()
    backend.start()
    try:
        if interactive:
            print(
                "keys: 1-4 mute, Shift+1-4 solo, space pause, arrows seek, b bypass, "
                "[ ] tempo, - = transpose, q quit"
            )
            with _raw_terminal():
                deadline = time.monotonic() + duration if args.duration else None
                while not source.finished and backend.alive():
                    if deadline is not None and time.monotonic() > deadline:
                        break
                    keys = _read_keys(0.1)
                    if not all(handle_key(engine, source, key) for key in keys):
                        break
                    print("\r" + status_line(engine, source)[:160], end="", flush=True)
            print()
        else:
            backend.run_for(duration + engine.latency_samples / engine.settings.sample_rate)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a headless run as 'live' ends: with the report
    finally:
        backend.stop()
        engine.close()
    if backend.lost:
        print(f"livestems: the stream stopped: {backend.lost}.", file=sys.stderr)
    print(format_report(engine, backend.device_latency_samples, model_name))
    return 1 if backend.lost else 0


COMMAND = Command(
    help="play a file through the separator, with keyboard control in the terminal",
    configure=_configure,
    run=_run,
)
