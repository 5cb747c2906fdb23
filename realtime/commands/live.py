"""``livestems live``: an input device, separated live, to an output device.

Thread contract: the command runs on the main thread: it loads the model, opens the back-end
(PortAudio, or JACK with a port pair per stem), starts the engine (its worker thread and the
back-end's audio callback take over from there), sleeps until ``--duration`` is up, the device
goes away or Ctrl-C, stops everything, and prints the latency report. Mute and solo are set
before the stream starts (a headless run has no controls).
"""

from __future__ import annotations

import argparse
import math
import sys

from .. import arguments
from ..backends.jack import JackPortsBackend, open_client
from ..backends.portaudio import DeviceError, SoundDeviceBackend
from ..engine.engine import Engine, EngineSettings
from ..engine.processor import StreamProcessor
from ..engine.report import format_report
from ..errors import UserError
from ..runtime.catalog import DEFAULT_LIVE_INPUT_MODEL, resolve_model
from .command import Command

DEFAULT_BLOCK_SIZE = 256
DEFAULT_BUFFER_MS = EngineSettings.min_buffer_ms
BACKENDS = ("portaudio", "jack")


def _device(value: str | None) -> int | str | None:
    """A PortAudio device: an index when the value is a number, else (part of) a name."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _stem_indices(names: list[str], stems: tuple[str, ...], option: str) -> list[int]:
    indices = []
    for name in names:
        if name not in stems:
            raise UserError(
                f"{option} {name}: the model has no such stem (its stems: {', '.join(stems)})."
            )
        indices.append(stems.index(name))
    return indices


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="a .onnx file or a model's name (default: the bundled default for live input, "
        f"{DEFAULT_LIVE_INPUT_MODEL}, a few milliseconds behind)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="portaudio",
        help="portaudio (any device), or jack: a JACK client with an output port pair for the "
        "mix and for each stem (default: portaudio)",
    )
    parser.add_argument(
        "--input-device", metavar="DEVICE", help="PortAudio input device: index or name"
    )
    parser.add_argument(
        "--output-device", metavar="DEVICE", help="PortAudio output device: index or name"
    )
    parser.add_argument(
        "--no-connect",
        action="store_true",
        help="jack: leave the ports unconnected (route them in your patchbay or DAW)",
    )
    parser.add_argument(
        "--block-size",
        type=arguments.block_size,
        metavar="FRAMES",
        help=f"frames per audio callback (default {DEFAULT_BLOCK_SIZE}; with jack, the "
        "server's buffer size)",
    )
    parser.add_argument(
        "--buffer-ms",
        type=float,
        default=DEFAULT_BUFFER_MS,
        metavar="MS",
        help="the worker's head start, rounded up to whole blocks: more rides out scheduling "
        f"hiccups (fewer under-runs) and adds as much latency (default {DEFAULT_BUFFER_MS:g})",
    )
    arguments.add_provider_option(parser)
    arguments.add_postfilter_option(parser)
    parser.add_argument(
        "--duration",
        type=arguments.seconds(),
        metavar="S",
        help="stop after S seconds (default: Ctrl-C)",
    )
    parser.add_argument(
        "--mute", action="append", default=[], metavar="STEM", help="mute a stem (repeatable)"
    )
    parser.add_argument(
        "--solo", action="append", default=[], metavar="STEM", help="solo a stem (repeatable)"
    )
    parser.add_argument(
        "--transpose",
        type=float,
        default=None,
        metavar="SEMITONES",
        help="transpose the input, -12..+12 (Rubber Band in the worker: adds ~50-70 ms)",
    )


def _open_backend(
    args: argparse.Namespace, processor: StreamProcessor, sample_rate: int
) -> tuple[Engine, SoundDeviceBackend | JackPortsBackend]:
    if args.backend == "jack":
        if args.input_device is not None or args.output_device is not None:
            raise UserError(
                "--input-device and --output-device are for the portaudio back-end: with "
                "jack, connect the livestems ports in your patchbay (or let it connect the "
                "system ports)."
            )
        client = open_client()
        try:
            if args.block_size is not None and args.block_size != client.blocksize:
                raise UserError(
                    f"The JACK server's buffer is {client.blocksize} samples, not "
                    f"{args.block_size}: drop --block-size or restart the server with "
                    f"'-p {args.block_size}'."
                )
            settings = EngineSettings(sample_rate, client.blocksize, min_buffer_ms=args.buffer_ms)
            engine = Engine(processor, settings, live_transpose=args.transpose is not None)
        except BaseException:
            client.close()
            raise
        connect = not args.no_connect
        jack_backend = JackPortsBackend(
            engine, connect_outputs=connect, connect_inputs=connect, client=client
        )
        return engine, jack_backend
    block_size = DEFAULT_BLOCK_SIZE if args.block_size is None else args.block_size
    if block_size < 1:
        raise UserError(f"--block-size {block_size}: give a positive number of frames.")
    engine = Engine(
        processor,
        EngineSettings(sample_rate, block_size, min_buffer_ms=args.buffer_ms),
        live_transpose=args.transpose is not None,
    )
    backend = SoundDeviceBackend(
        engine,
        output_device=_device(args.output_device),
        input_device=_device(args.input_device),
    )
    return engine, backend


def _run(args: argparse.Namespace) -> int:
    if args.duration is not None and not args.duration > 0:
        raise UserError(f"--duration {args.duration}: give a positive number of seconds.")
    if not 0 <= args.buffer_ms < 10_000:
        raise UserError(f"--buffer-ms {args.buffer_ms:g}: give milliseconds from 0 to 10000.")
    model = resolve_model(args.model, provider=args.provider, live_input=True)
    path = model.path
    meta = model.metadata
    mutes = _stem_indices(args.mute, meta.stems, "--mute")
    solos = _stem_indices(args.solo, meta.stems, "--solo")
    processor = StreamProcessor.for_model(model, args.wiener)
    engine, backend = _open_backend(args, processor, meta.sample_rate)
    if args.transpose is not None:
        engine.set_transpose(args.transpose)
        engine.reset()
    for stem in mutes:
        engine.set_mute(stem, True)
    for stem in solos:
        engine.set_solo(stem, True)
    engine.mixer.reset()  # the gains start where they are set: no ramp in from unity
    if isinstance(backend, JackPortsBackend):
        where = f"JACK client {backend.client.name!r}"
    else:
        where = "PortAudio"
    until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    seconds = math.inf if args.duration is None else args.duration
    lost: str | None = None
    try:
        try:
            # Inside the try: a Ctrl-C as soon as this line shows still stops and reports.
            print(f"livestems live: {path.name} on {model.provider}, through {where}, {until}")
            sys.stdout.flush()
            engine.lock_memory()
            backend.start()
            backend.run_for(seconds)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a run without --duration ends
        finally:
            # Read before stop(): PortAudio's finished callback also fires on a normal stop.
            lost = backend.lost
            backend.stop()  # the JACK back-end raises here when the server went away
    finally:
        print(format_report(engine, backend.device_latency_samples, path.name))
        engine.close()
    if lost is not None:
        raise DeviceError(f"The stream stopped: {lost}.")
    if engine.worker_error is not None:
        raise RuntimeError("the engine's worker stopped") from engine.worker_error
    return 0


COMMAND = Command(
    help="separate an input device live, to an output device",
    configure=_configure,
    run=_run,
)
