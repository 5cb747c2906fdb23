"""``livestems practice SONG -o track.wav``: a practice track, as the window would play it.

Thread contract: main thread only; everything blocks (``realtime/practice/render.py``).

    livestems practice SONG -o track.wav [--mute STEM] [--solo STEM] [--gain STEM=DB]
                        [--pan STEM=P] [--gate STEM=DB] [--tempo 0.8] [--transpose -2] [--count-in]
                        [--loop A-B [--passes N]]

The mix of the stems at those faders, mutes and solos, at that tempo and key, with a bar of
count-in clicks before the start and each loop restart; the stems' latency is cut, so the track
starts with the song (or its count-in).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .. import arguments
from ..engine.processor import StreamProcessor
from ..errors import UserError
from ..io.atomic_file import atomic_write
from ..io.audio_file import load_audio
from ..practice.render import DEFAULT_LOOP_PASSES, PracticeSettings, parse_loop, render_practice
from ..runtime.catalog import DEFAULT_MODEL, resolve_model
from .command import Command


def _stem_value(text: str) -> tuple[str, float]:
    """``STEM=NUMBER`` (ranges are checked where the value is applied, in one sentence)."""
    name, _, number = text.partition("=")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give STEM=NUMBER, got {text!r}") from None
    if not name or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"give STEM=NUMBER, got {text!r}")
    return name, value


def _gain(text: str) -> tuple[str, float]:
    name, value = _stem_value(text)
    if value > 24.0:
        raise argparse.ArgumentTypeError(f"give a stem's gain as STEM=DB up to +24, got {text!r}")
    return name, value


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("song", help="a song: wav, flac, ogg, mp3 or a MUSDB .stem.mp4")
    parser.add_argument("-o", "--output", required=True, help="the practice track (.wav)")
    parser.add_argument(
        "--model",
        help=f"a .onnx file or a model's name (default: {DEFAULT_MODEL}, the bundled default "
        "for a recording)",
    )
    arguments.add_provider_option(parser)
    parser.add_argument("--mute", action="append", default=[], metavar="STEM", help="mute a stem")
    parser.add_argument("--solo", action="append", default=[], metavar="STEM", help="solo a stem")
    parser.add_argument(
        "--gain", action="append", default=[], type=_gain, metavar="STEM=DB", help="a fader"
    )
    parser.add_argument(
        "--pan", action="append", default=[], type=_stem_value, metavar="STEM=P", help="-1..1"
    )
    parser.add_argument(
        "--gate",
        action="append",
        default=[],
        type=_stem_value,
        metavar="STEM=DB",
        help="the bleed gate: silence a stem's bins DB below its peak (e.g. drums=-40)",
    )
    parser.add_argument("--tempo", type=float, default=1.0, help="0.5-1.5, pitch kept")
    parser.add_argument("--transpose", type=float, default=0.0, help="semitones, -12..+12")
    parser.add_argument("--count-in", action="store_true", help="a bar of clicks first")
    parser.add_argument(
        "--click", action="store_true", help="the click stem: a click on every beat of the grid"
    )
    parser.add_argument("--loop", help="A-B in song seconds, e.g. 12.5-20")
    parser.add_argument(
        "--passes",
        type=int,
        default=DEFAULT_LOOP_PASSES,
        help=f"times round the loop (default {DEFAULT_LOOP_PASSES})",
    )


def _run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".wav":
        raise UserError(f"The practice track is written as .wav, got {output.name!r}.")
    if args.passes < 1:
        raise UserError(f"--passes must be at least 1, got {args.passes}.")
    settings = PracticeSettings(
        tempo=args.tempo,
        transpose=args.transpose,
        count_in=args.count_in,
        loop=parse_loop(args.loop) if args.loop else None,
        loop_passes=args.passes,
        gains_db=dict(args.gain),
        mute=tuple(args.mute),
        solo=tuple(args.solo),
        pans=dict(args.pan),
        bleed_gates_db=dict(args.gate),
        click=args.click,
    )
    model = resolve_model(args.model, args.provider)
    rate = model.metadata.sample_rate
    audio = load_audio(args.song, rate)
    beats, bpm, downbeats = (
        _grid(Path(args.song), audio, rate) if args.count_in or args.click else (None, None, None)
    )
    track = render_practice(
        StreamProcessor.for_model(model), audio, settings, beats, bpm, downbeats
    )
    import soundfile

    with atomic_write(output) as handle:
        soundfile.write(handle, track, rate, subtype="FLOAT", format="WAV")
    print(f"{output}: {track.shape[0] / rate:.1f} s at {rate} Hz", file=sys.stderr)
    return 0


def _grid(path: Path, audio, rate: int):  # noqa: ANN001, ANN202 - beats, bpm, downbeats
    """The song's beat grid (cached per file); none found: no click stem, a count-in at 120
    BPM, said in one line."""
    from ..practice.beat_grid import grid_for_file

    grid = grid_for_file(path, audio, rate)
    if not grid.available:
        print(
            f"livestems: {grid.reason} The count-in clicks at 120 BPM; the click stem is silent.",
            file=sys.stderr,
        )
        return None, None, None
    import numpy as np

    return np.asarray(grid.beats), grid.bpm, np.asarray(grid.downbeats)


COMMAND = Command(
    help="render a practice track: stems muted or soloed, at another tempo or key",
    configure=_configure,
    run=_run,
)
