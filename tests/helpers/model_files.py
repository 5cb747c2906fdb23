"""Model files with bad metadata: the bundled model with one field changed (issue 15, case 5).

Writing one needs the ``onnx`` package (the train extra); ``write_model`` skips the test
without it. No torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livestems.realtime.runtime.catalog import find_model_file
from livestems.realtime.runtime.model_metadata import METADATA_KEY

#: The model whose metadata the bad files start from.
BUNDLED = find_model_file("lstm-ultra")


def write_model(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """``BUNDLED`` written to ``path`` with ``change`` applied to its metadata's values."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(BUNDLED))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            values = json.loads(prop.value)
            change(values)
            prop.value = json.dumps(values)
    onnx.save(model, str(path))
    return path


def setter(*keys_and_value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets the value at a key path: ``setter("preset", "hop", 0)``."""
    *keys, value = keys_and_value

    def change(values: dict[str, Any]) -> None:
        for key in keys[:-1]:
            values = values[key]
        values[keys[-1]] = value

    return change


#: One bad field each, by what is wrong with it.
BAD_FIELDS = {
    "sample rate 0": setter("sample_rate", 0),
    "sample rate -44100": setter("sample_rate", -44100),
    "sample rate 10^12": setter("sample_rate", 10**12),
    "sample rate text": setter("sample_rate", "44100"),
    "sample rate infinite": setter("sample_rate", float("inf")),
    "no bands": setter("front_end", {"kind": "subband", "n_bands": 0}),
    "golden frames -1": setter("golden", "n_frames", -1),
    "golden frames 10^9": setter("golden", "n_frames", 10**9),
    "stem ../../x": setter("stems", ["../../x", "drums", "bass", "other"]),
    "stem /tmp/x": setter("stems", ["/tmp/x", "drums", "bass", "other"]),
    "stems twice": setter("stems", ["vocals", "drums", "VOCALS", "other"]),
    "hop 0": setter("preset", "hop", 0),
    "channels 3": setter("n_channels", 3),
    "latency -1": setter("latency_samples", -1),
    "state shape 0": setter("state", [{"name": "h", "shape": [0]}]),
}
