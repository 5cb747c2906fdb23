"""Write the tiny model and its golden stems that the runtime's tests compare with.

Run by hand, from the repository root, when the model file format, the exporter, the front end
or the stream processor changes on purpose (and say why in the commit)::

    .venv/bin/python -m tests.helpers.make_tiny_model

It exports a random-weight lstm network (live preset, hidden size 8, four stems) to
``tests/data/tiny-lstm.onnx`` with ``export_onnx`` (parity with torch checked, golden digest
recorded), then runs ``tests.helpers.tiny_model.golden_input()`` through
``StreamProcessor.for_model(OnnxHopModel(...))`` in the blocks of ``BLOCK_SIZES`` and writes the
input, the stems and the blocks to ``tests/data/tiny-lstm-golden.npz``. Needs the train extra
(torch); the tests that read the files do not.
"""

from __future__ import annotations

import numpy as np

from tests.helpers.tiny_model import BLOCK_SIZES, GOLDEN, MODEL, golden_input, processor_stems

HIDDEN_SIZE = 8
WEIGHT_SEED = 8


def main() -> None:
    from livestems.export.onnx_export import export_onnx
    from livestems.models.families.lstm import LstmConfig
    from tests.helpers.networks import randomized

    MODEL.parent.mkdir(parents=True, exist_ok=True)
    network = randomized(LstmConfig(preset="live", hidden_size=HIDDEN_SIZE), seed=WEIGHT_SEED)
    export_onnx(network, MODEL, licence="test data, random weights")
    signal = golden_input()
    stems = processor_stems(MODEL, signal)
    np.savez_compressed(
        GOLDEN, input=signal, stems=stems, block_sizes=np.array(BLOCK_SIZES, dtype=np.int64)
    )
    print(f"{MODEL}: {MODEL.stat().st_size} bytes; {GOLDEN}: {GOLDEN.stat().st_size} bytes")
    print(f"stems {stems.shape}, peak {np.abs(stems).max():.3f}")


if __name__ == "__main__":
    main()
