"""``livestems models``: the bundled and user models, and one model's card.

Thread contract: main thread only; reads files and builds onnxruntime sessions (blocking).

A file that is not a usable model is listed with the one sentence that says why.
"""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..runtime.catalog import (
    bundled_model_file,
    find_model_file,
    model_card,
    model_files,
    user_models_dir,
)
from ..runtime.onnx_model import OnnxHopModel, available_providers
from .command import Command


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", nargs="?", help="a .onnx file or a listed model's name: show its card"
    )


def _run(args: argparse.Namespace) -> int:
    if args.model:
        model = OnnxHopModel(find_model_file(args.model), provider="cpu")
        model.verify_golden()
        print(model_card(model))
        return 0
    files = model_files()
    if not files:
        print(f"No models yet: none bundled, none in {user_models_dir()}.")
    # What a command uses when no --model is given, by where the audio comes from (catalog.py).
    defaults = (
        (bundled_model_file(live_input=False), "default for a recording"),
        (bundled_model_file(live_input=True), "default for live input"),
    )
    for origin, path in files:
        try:
            meta = OnnxHopModel(path, provider="cpu").metadata
            roles = [role for default, role in defaults if origin == "bundled" and default == path]
            role = f"  ({', '.join(roles)})" if roles else ""
            print(
                f"{origin:<8} {path.name:<28} {meta.family:<8} {meta.preset.name:<7} "
                f"{meta.latency_ms:6.2f} ms  {', '.join(meta.stems)}{role}"
            )
        except UserError as error:
            print(f"{origin:<8} {path.name:<28} unusable: {error}")
    print(f"onnxruntime execution providers: {', '.join(available_providers())}")
    return 0


COMMAND = Command(
    help="list the bundled and user models, or show one model's card",
    configure=_configure,
    run=_run,
)
