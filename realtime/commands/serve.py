"""``livestems serve``: the separation service, an HTTP API and a web page (``service/``).

Thread contract: main thread only; it becomes uvicorn's event loop until Ctrl-C, and the
service starts its own worker processes and pump thread (``service/workers.py``).
"""

from __future__ import annotations

import argparse
import os

from .. import arguments
from ..errors import UserError
from .command import Command


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: the network)",
    )
    parser.add_argument(
        "--port",
        type=arguments.whole_number(1, 65535, "a port"),
        default=8000,
        help="port (default: 8000)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="folder for the jobs and their stems (default: ~/.local/share/livestems/serve)",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        default=os.environ.get("LIVESTEMS_TOKEN"),
        help="require 'Authorization: Bearer T' on every /api call (default: $LIVESTEMS_TOKEN)",
    )
    parser.add_argument(
        "--workers",
        type=arguments.whole_number(1, 64, "a number of workers"),
        default=max(1, min(4, (os.cpu_count() or 2) // 2)),
        help="worker processes, one song each at a time (default: half the CPUs, up to 4)",
    )
    parser.add_argument(
        "--max-upload-mb", type=_positive, default=200.0, help="largest upload (default: 200)"
    )
    parser.add_argument(
        "--max-seconds",
        type=arguments.seconds(),
        default=1200.0,
        help="longest song in seconds (default: 1200, 20 minutes)",
    )


def _run(args: argparse.Namespace) -> int:
    try:
        from ..service.app import ServiceConfig, default_data_folder, serve
    except ImportError as error:
        raise UserError(
            f"livestems serve needs the 'serve' extra ({error.name} is missing): "
            "pip install 'livestems[serve]', or run ./setup.sh."
        ) from error
    data = arguments.writable_folder(args.data, "--data") if args.data else default_data_folder()
    data.mkdir(parents=True, exist_ok=True)
    config = ServiceConfig(
        data=data,
        host=args.host,
        port=args.port,
        token=args.token or None,
        workers=args.workers,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
    )
    print(f"livestems serve: http://{args.host}:{args.port}/ (jobs in {data})", flush=True)
    serve(config)
    return 0


COMMAND = Command(
    help="serve the separation API and a web page with a player for the stems",
    configure=_configure,
    run=_run,
)
