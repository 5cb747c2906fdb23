"""``livestems separate``: songs in, a folder of stems per song out (``runtime/separation.py``).

Thread contract: main thread only; everything blocks (see ``separation.py``).

A song that cannot be separated ends in one sentence on stderr and the batch goes on with the
next; Ctrl-C stops between songs and says how many were written. Exit status 1 when any song
failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import arguments
from ..errors import UserError
from ..io.stem_set import check_inputs_survive, check_replaceable
from ..runtime.catalog import DEFAULT_MODEL, resolve_model
from ..runtime.separation import (
    FORMATS,
    ProgressBar,
    check_output_folder,
    expand_inputs,
    separate_file,
    song_name,
    unique_names,
)
from .command import Command


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="FILE_OR_FOLDER", help="songs, or folders of songs"
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="writes DIR/<song>/<stem>.wav"
    )
    parser.add_argument(
        "--model",
        metavar="M.onnx|NAME",
        help="a model file, or the name of one that 'livestems models' lists "
        f"(default: the bundled default model, {DEFAULT_MODEL})",
    )
    arguments.add_provider_option(parser)
    arguments.add_postfilter_option(parser)
    parser.add_argument(
        "--threads",
        type=arguments.threads,
        default=min(4, os.cpu_count() or 1),
        help="onnxruntime CPU threads (default: up to 4)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="wav", help="wav (float32) or flac (24-bit)"
    )
    parser.add_argument(
        "--no-align",
        dest="align",
        action="store_false",
        help="keep the model's latency: stems start with it as silence, as heard live",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress line even when stderr is not a terminal",
    )


def _run(args: argparse.Namespace) -> int:
    model = resolve_model(args.model, args.provider, cpu_threads=args.threads)
    model.verify_golden()
    inputs = expand_inputs(args.inputs)
    paths = [item for item in inputs if isinstance(item, Path)]
    names = unique_names(paths)
    out_dir = Path(args.output)
    # Refused before any work: what replacing the song folders would lose.
    check_inputs_survive([out_dir / name for name in names], paths)
    for name in names:
        check_replaceable(out_dir / name)
    check_output_folder(out_dir)
    renamed = [(path, name) for path, name in zip(paths, names, strict=True)]
    renamed = [(path, name) for path, name in renamed if name != song_name(path)]
    song_names = iter(names)
    show_progress = args.progress or sys.stderr.isatty()
    n_failed = n_separated = 0
    for item in inputs:
        if isinstance(item, UserError):
            print(f"livestems: {item}", file=sys.stderr)
            n_failed += 1
            continue
        bar = ProgressBar(item.name, sys.stderr) if show_progress else None
        try:
            report = separate_file(
                item,
                model,
                args.output,
                format=args.format,
                align=args.align,
                progress=bar,
                name=next(song_names),
                postfilter=args.wiener,
            )
        except (UserError, MemoryError) as error:
            if bar is not None:
                bar.close()
            print(f"livestems: {_failure(item, error)}", file=sys.stderr)
            n_failed += 1
            continue
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            print(
                f"livestems: interrupted: {n_separated} of {len(inputs)} songs separated; "
                f'"{item}" was not written.',
                file=sys.stderr,
            )
            return 130
        if bar is not None:
            bar.close()
        n_separated += 1
        folder = next(iter(report.outputs.values())).parent
        print(
            f"{item} -> {folder}/ ({', '.join(report.outputs)}): {report.duration_s:.1f} s "
            f"of audio in {report.wall_s:.1f} s ({1 / report.real_time_factor:.1f}x real time)"
        )
    for path, name in renamed:
        print(f'{path} went to "{out_dir / name}": another song is named "{song_name(path)}".')
    if len(inputs) > 1:
        print(f"Separated {len(inputs) - n_failed} of {len(inputs)} songs into {args.output}.")
    return 1 if n_failed else 0


def _failure(path: Path, error: Exception) -> str:
    """One sentence for a song that failed; the batch goes on with the next."""
    if isinstance(error, MemoryError):
        return (
            f'Not enough memory to separate "{path}"; close other programs or split the song, '
            "the other songs are still separated."
        )
    return str(error)


COMMAND = Command(
    help="write one file per stem for each song given",
    configure=_configure,
    run=_run,
)
