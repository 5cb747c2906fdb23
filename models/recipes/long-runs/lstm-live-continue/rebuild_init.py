"""How ``init.pt`` was made: the bundled ``lstm-live``'s torch checkpoint rebuilt from its ONNX
file, because the run that trained it kept no checkpoint in the repository.

    .venv/bin/python models/recipes/long-runs/lstm-live-continue/rebuild_init.py \\
        realtime/bundled/lstm-live.onnx OUT.pt

The ONNX file holds every weight (float16): the linear layers as MatMul operands (transposed),
the batch norms by name, and each LSTM layer as ONNX's W, R and B with the gates in ONNX's order
(input, output, forget, cell) where torch has (input, forget, cell, output). Checked when it was
made: ``livestems export OUT.pt --float16`` gives a model whose stems differ from the bundled
file's by at most 2.3e-5 on 3 s of noise at -20 dBFS (float16's rounding of the same weights).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from livestems.models.families.checkpoint import save_checkpoint
from livestems.models.families.registry import config_from_dict
from livestems.models.families.separator import SeparatorNet


def _torch_gates(weight: torch.Tensor, hidden: int) -> torch.Tensor:
    """ONNX's gate blocks (i, o, f, c) in torch's order (i, f, c, o)."""
    i, o, f, c = weight.split(hidden, dim=0)
    return torch.cat([i, f, c, o], dim=0)


def rebuild(source: str, out: str) -> None:
    loaded = onnx.load(source)
    graph, props = loaded.graph, loaded.metadata_props
    meta = json.loads({p.key: p.value for p in props}["livestems"])
    model = SeparatorNet(config_from_dict(meta["config"]))
    expected = model.state_dict()
    found = {
        item.name.removesuffix("_f16"): torch.from_numpy(
            numpy_helper.to_array(item).astype(np.float32)
        )
        for item in graph.initializer
    }
    weights = {f"net.{k}": found[k] for k in ("input_mean", "input_scale")}
    weights |= {f"net.{k}": found[k] for k in ("output_scale", "output_mean")}
    for norm in ("bn1", "bn2", "bn3"):
        for part in ("weight", "bias", "running_mean", "running_var"):
            weights[f"net.{norm}.{part}"] = found[f"{norm}.{part}"]
        weights[f"net.{norm}.num_batches_tracked"] = expected[f"net.{norm}.num_batches_tracked"]
    # The linear layers by shape: each is the only MatMul operand of its shape.
    operands = {tuple(v.shape): v for k, v in found.items() if k.startswith("onnx::MatMul")}
    for name in ("fc1", "fc2", "fc3"):
        shape = tuple(expected[f"net.{name}.weight"].shape)
        weights[f"net.{name}.weight"] = operands[shape[::-1]].T.contiguous()
    layers = sorted(
        (k for k in found if k.startswith("onnx::LSTM")), key=lambda k: int(k.split("_")[-1])
    )
    hidden = model.config.hidden_size
    for layer in range(len(layers) // 3):
        w, r, b = (found[k][0] for k in layers[3 * layer : 3 * layer + 3])
        weights[f"net.lstm.weight_ih_l{layer}"] = _torch_gates(w, hidden)
        weights[f"net.lstm.weight_hh_l{layer}"] = _torch_gates(r, hidden)
        weights[f"net.lstm.bias_ih_l{layer}"] = _torch_gates(b[: 4 * hidden], hidden)
        weights[f"net.lstm.bias_hh_l{layer}"] = _torch_gates(b[4 * hidden :], hidden)
    model.load_state_dict(weights, strict=True)
    save_checkpoint(out, model, rebuilt_from=source)


if __name__ == "__main__":
    rebuild(sys.argv[1], sys.argv[2])
