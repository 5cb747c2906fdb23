"""The committed tiny model (``tests/data/tiny-lstm.onnx``) and its golden stems
(``tests/data/tiny-lstm-golden.npz``): what the runtime's tests load instead of exporting a
model, so they need no torch. ``make_tiny_model.py`` writes both; no torch here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livestems.realtime.engine.processor import StreamProcessor
from livestems.realtime.runtime.onnx_model import OnnxHopModel
from tests.helpers.processing import run_blocks

DATA = Path(__file__).resolve().parents[1] / "data"
MODEL = DATA / "tiny-lstm.onnx"
GOLDEN = DATA / "tiny-lstm-golden.npz"
#: How far the processor's stems may drift from the golden ones (float32 arithmetic on another
#: CPU or onnxruntime; a change of model, front end or processor moves them far more).
TOLERANCE = 1e-5
#: Device-like blocks of several sizes, off the hop grid.
BLOCK_SIZES = (256, 100, 1000, 37)
SEED = 20250611
N_SAMPLES = 4096


def golden_input() -> np.ndarray:
    """The input block [shape=(N_SAMPLES, 2), float32]: seeded noise with a tone in it."""
    rng = np.random.default_rng(SEED)
    t = np.arange(N_SAMPLES)[:, None] / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t) * np.array([[1.0, 0.6]])
    return (tone + rng.uniform(-0.2, 0.2, (N_SAMPLES, 2))).astype(np.float32)


def processor_stems(
    path: Path, signal: np.ndarray, block_sizes: tuple[int, ...] = BLOCK_SIZES
) -> np.ndarray:
    """What ``StreamProcessor.for_model(OnnxHopModel(path))`` outputs for ``signal`` fed in
    blocks: [shape=(n_stems, n_samples, 2), float32]."""
    model = OnnxHopModel(path, provider="cpu")
    processor = StreamProcessor.for_model(model)
    processor.prepare(model.metadata.sample_rate, max(block_sizes))
    return run_blocks(processor, signal, list(block_sizes))
