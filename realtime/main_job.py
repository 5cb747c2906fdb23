"""What ``livestems`` does with no command: the main job on the embedded defaults.

Thread contract: main thread only.

The main job plays the bundled demo song through the bundled model (in the window when there is
a display, headless with a latency report when there is none). No trained model is bundled
yet, so for now it says so, and runs the spectral front end with the identity model to report
the algorithmic latency each preset adds, measured with an impulse through the streaming path.
"""

from __future__ import annotations

import argparse
import os
import sys

from .cli import _load, _registered_commands
from .errors import UserError
from .presets import PRESETS
from .processor import measure_latency_samples


def latency_report() -> str:
    """One line per preset: its geometry and the latency measured through the processor."""
    lines = []
    for preset in PRESETS.values():
        measured = measure_latency_samples(preset)
        lines.append(
            f"  {preset.name:<7} analysis {preset.n_fft:>4}, hop {preset.hop:>4}, "
            f"synthesis {preset.synthesis_length:>4}: {measured:>5} samples = "
            f"{1000.0 * measured / preset.sample_rate:6.2f} ms at {preset.sample_rate} Hz"
        )
    return "\n".join(lines)


def _run_window() -> int | None:
    """The window (the ``gui`` command, a plug-in: realtime never imports gui) when a display is
    set; ``None`` when there is none or Qt cannot open it there (then the headless job runs)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    entry = _registered_commands().get("gui")
    if entry is None:
        return None
    try:
        return _load(entry).run(argparse.Namespace(file=None))
    except UserError as error:  # the display is set but Qt cannot start there
        print(f"livestems: {error} Running without the window.", file=sys.stderr)
        return None


def run_main_job() -> int:
    status = _run_window()
    if status is not None:
        return status
    print(
        "livestems: no trained model is bundled yet, so there is nothing to separate; "
        "measuring the spectral front end instead (identity masks, an impulse through the "
        "streaming path):"
    )
    print(latency_report())
    sys.stdout.flush()
    return 0
