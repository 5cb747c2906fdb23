"""What ``livestems`` does with no command: the main job on the embedded defaults.

Thread contract: main thread only.

The main job plays the bundled demo song through the bundled model (in the window when there is
a display, headless with a latency report when there is none). No trained model is bundled
yet, so for now it says so, and runs the spectral front end with the identity model to report
the algorithmic latency each preset adds, measured with an impulse through the streaming path.
"""

from __future__ import annotations

import sys

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


def run_main_job() -> int:
    print(
        "livestems: no trained model is bundled yet, so there is nothing to separate; "
        "measuring the spectral front end instead (identity masks, an impulse through the "
        "streaming path):"
    )
    print(latency_report())
    sys.stdout.flush()
    return 0
