"""``livestems train``, and ``python -m livestems.models.training.command`` (what ``torchrun``
starts):
the command over ``train.py``.

A bad config, a missing data set or an unreadable checkpoint ends in one sentence and exit
status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...realtime.arguments import writable_folder
from ...realtime.commands.command import Command
from ...realtime.errors import UserError
from .train import TrainConfig, train

_OPTIONS = {
    # option: (TrainConfig field, type)
    "family": str,
    "size": str,
    "preset": str,
    "musdb": str,
    "synthetic": int,
    "synthetic_seconds": float,
    "midi_songs": int,
    "batch_size": int,
    "batches_per_epoch": int,
    "epochs": int,
    "loss": str,
    "lr": float,
    "seed": int,
    "checkpoint_every": int,
    "threads": int,
    "device": str,
    "excerpt_s": float,
    "init": str,
    "time_limit_s": float,
}


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a JSON or TOML file of training settings")
    parser.add_argument("-o", "--out", required=True, help="the run folder (checkpoints, log)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    for option, kind in _OPTIONS.items():
        parser.add_argument(f"--{option.replace('_', '-')}", type=kind, default=None)
    parser.add_argument(
        "--folder", action="append", default=None, help="a folder of songs (repeatable)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {}
    if args.config:
        values = TrainConfig.from_file(args.config).to_dict()
    elif args.resume:
        values = TrainConfig.from_file(Path(args.out) / "config.json").to_dict()
    if args.musdb is None and not args.resume and not args.config and "musdb" not in values:
        given = args.synthetic is not None or args.midi_songs is not None or args.folder
        if os.environ.get("LIVESTEMS_MUSDB") and not given:
            values["musdb"] = os.environ["LIVESTEMS_MUSDB"]
    for option in _OPTIONS:
        value = getattr(args, option)
        if value is None:
            continue
        if option == "synthetic":
            values["synthetic_songs"] = value
        elif option == "synthetic_seconds":
            values["synthetic_duration_s"] = value
        elif option == "excerpt_s":
            values.setdefault("sampling", {})["excerpt_s"] = value
        else:
            values[option] = value
    if args.folder:
        values["folders"] = list(args.folder)
    return TrainConfig.from_dict(values)


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # before the data loads and the minutes of training, not when the first checkpoint is due
    writable_folder(args.out, "--out")
    state = train(config, args.out, resume=args.resume, show_progress=not args.no_progress)
    # best.pt is the best epoch by what select_by names: the loss at the SDR's best epoch
    # is not the run's lowest loss, so say the measure that chose it
    best = (
        f"best validation SDR {state.best_valid_sdr:.2f} dB"
        if config.select_by == "sdr"
        else f"best validation loss {state.best_valid_loss:.5f}"
    )
    print(
        f"done: {state.epoch} epochs, {best} at epoch {state.best_epoch} (best.pt); export "
        f"with: livestems export {Path(args.out) / 'best.pt'} -o MODEL.onnx"
    )
    return 0


COMMAND = Command(
    help="train a model on MUSDB18, folders of stems or synthetic songs (needs 'train' extra)",
    configure=_configure,
    run=_run,
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m livestems.models.training.command`` (what ``torchrun`` starts)."""
    parser = argparse.ArgumentParser(prog="livestems train")
    _configure(parser)
    try:
        return _run(parser.parse_args(argv))
    except UserError as error:
        print(f"livestems train: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
