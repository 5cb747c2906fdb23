"""Random-weight models for ``livestems bench`` when no trained model is installed.

Registered in the ``livestems.bench_models`` entry-point group, so that the torch-free benchmark
in ``realtime/benchmarks/bench.py`` can ask for them without importing torch. Only speed is
measured with them; the benchmark's report says so. Only streamable families: an offline one
(``umx``) has no step graph to export, and the benchmark measures what runs live.
"""

from __future__ import annotations

from pathlib import Path

from ..models.families.registry import available_families, get_family
from ..models.families.separator import SeparatorNet
from ..realtime.dsp.presets import PRESETS
from .onnx_export import export_onnx


def random_models(folder: Path, quick: bool = False) -> list[Path]:
    """Export every family at its default size and every preset (``quick``: the ``live`` preset
    only) into ``folder``; returns the files."""
    presets = ["live"] if quick else list(PRESETS)
    paths = []
    for family in available_families():
        if not get_family(family).config_class.streamable:
            continue
        for preset in presets:
            path = Path(folder) / f"{family}-{preset}-random.onnx"
            export_onnx(SeparatorNet(get_family(family).config(preset=preset)), path)
            paths.append(path)
    return paths
