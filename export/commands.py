"""``livestems export``: a checkpoint (or a random-weight model) to an ONNX model file."""

from __future__ import annotations

import argparse

from ..realtime.commands.command import Command


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="?", help="a checkpoint written by livestems train")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument(
        "--random",
        metavar="FAMILY",
        help="export a model of this family with random weights instead of a checkpoint "
        "(for building and benchmarking the engine; it does not separate anything)",
    )
    parser.add_argument("--preset", default="live", help="preset of a --random model")
    parser.add_argument("--size", default="default", help="size of a --random model")
    parser.add_argument(
        "--float16", action="store_true", help="store weights as float16 (half the file size)"
    )
    parser.add_argument("--training-data", help="provenance of the weights, for the model card")
    parser.add_argument("--licence", help="licence of the weights, for the model card")


def _run(args: argparse.Namespace) -> int:
    from ..models.families.checkpoint import load_checkpoint
    from ..models.families.registry import get_family
    from ..models.families.separator import SeparatorNet
    from ..realtime.arguments import writable_file
    from ..realtime.errors import UserError
    from .onnx_export import export_onnx

    if (args.checkpoint is None) == (args.random is None):
        raise UserError("Give either a checkpoint or --random FAMILY to export, not both.")
    writable_file(args.output)  # before the export and its parity check, not after
    if args.random:
        separator = SeparatorNet(get_family(args.random).config(args.size, preset=args.preset))
        training_data = args.training_data or "none (random weights)"
        extra: dict = {}
    else:
        separator, extra = load_checkpoint(args.checkpoint)
        training_data = args.training_data or str(extra.get("training_data", "unknown"))
    metadata = export_onnx(
        separator,
        args.output,
        float16=args.float16,
        training_data=training_data,
        licence=args.licence or str(extra.get("licence", "unspecified")),
    )
    print(
        f"Wrote {args.output}: {metadata.family} at {metadata.preset.name}, stems "
        f"{', '.join(metadata.stems)}, latency {metadata.latency_samples} samples "
        f"({metadata.latency_ms:.2f} ms), {metadata.parameters:,} parameters, "
        f"{metadata.precision}; onnxruntime matches torch."
    )
    return 0


COMMAND = Command(
    help="export a checkpoint to an ONNX model file (needs the 'train' extra)",
    configure=_configure,
    run=_run,
)
