"""A torch model rebuilt from an exported ONNX file, so that a shipped model can be fine-tuned
(``livestems train --init models/recipes/long-runs/lstm-live-frozen/init.onnx``, the ``lstm-live``
bundled until session 16) when the run that trained it kept no checkpoint.

The ONNX file holds every weight (float16 or float32) and the configuration in its metadata.
For the ``lstm`` family the linear layers are MatMul operands (transposed), in the order the
graph uses them (fc1, then fc2 and fc3 after the LSTM); the batch norms keep their names where
the graph has BatchNormalization nodes (that ``lstm-live``'s export; the exporter now
folds them into products and sums, whose statistics cannot be told apart, and such files are
refused); each LSTM layer is ONNX's W, R and B with the gates in ONNX's order (input, output,
forget, cell) where torch has (input, forget, cell, output). Other families' graphs fold their
weights in ways that cannot be read back by name, so they are refused in one sentence.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .checkpoint import CheckpointError
from .lstm import LstmConfig
from .registry import config_from_dict
from .separator import SeparatorNet

REBUILDABLE_FAMILIES = ("lstm",)  # LstmConfig's: the one graph read back here


def _torch_gates(weight: torch.Tensor, hidden: int) -> torch.Tensor:
    """ONNX's gate blocks (i, o, f, c) in torch's order (i, f, c, o)."""
    i, o, f, c = weight.split(hidden, dim=0)
    return torch.cat([i, f, c, o], dim=0)


def _number(name: str) -> int:
    """The exporter's running number in ``onnx::MatMul_249``: the graph's order."""
    return int(re.findall(r"\d+", name)[-1])


def separator_from_onnx(path: str | os.PathLike[str]) -> SeparatorNet:
    """The torch model an ONNX file was exported from, with its weights (float16 ones widened)."""
    name = f'"{path}"'
    try:
        loaded = onnx.load(os.fspath(path))
    except FileNotFoundError:
        raise CheckpointError(f"Cannot load model {name}: no such file.") from None
    except Exception as error:
        raise CheckpointError(
            f"Cannot load model {name}: it is not an ONNX file ({error})."
        ) from error
    properties = {item.key: item.value for item in loaded.metadata_props}
    if "livestems" not in properties:
        raise CheckpointError(f"Cannot load model {name}: it is not a livestems export.")
    config = config_from_dict(json.loads(properties["livestems"])["config"])
    if not isinstance(config, LstmConfig):
        raise CheckpointError(
            f"Cannot rebuild torch weights from {name}: it is a {config.family} model, and only "
            f"{', '.join(REBUILDABLE_FAMILIES)} exports can be read back; fine-tune from the "
            "run's checkpoint instead."
        )
    model = SeparatorNet(config)
    if not any(node.op_type == "BatchNormalization" for node in loaded.graph.node):
        raise CheckpointError(
            f"Cannot rebuild torch weights from {name}: its batch norms were folded into "
            "products and sums when it was exported, so their statistics cannot be read back; "
            "fine-tune from the run's checkpoint instead."
        )
    expected = model.state_dict()
    found = {
        item.name.removesuffix("_f16"): torch.from_numpy(
            numpy_helper.to_array(item).astype(np.float32)
        )
        for item in loaded.graph.initializer
    }
    try:
        weights = _lstm_weights(found, expected, config.hidden_size)
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"Cannot rebuild torch weights from {name}: its graph does not have the layers its "
            f"configuration describes ({str(error).splitlines()[0]})."
        ) from error
    return model.eval()


def _lstm_weights(
    found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], hidden: int
) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = {}
    for key in ("input_mean", "input_scale", "output_scale", "output_mean"):
        weights[f"net.{key}"] = found[key]
    for norm in ("bn1", "bn2", "bn3"):
        for part in ("weight", "bias", "running_mean", "running_var"):
            weights[f"net.{norm}.{part}"] = found[f"{norm}.{part}"]
        weights[f"net.{norm}.num_batches_tracked"] = expected[f"net.{norm}.num_batches_tracked"]
    operands = sorted((k for k in found if k.startswith("onnx::MatMul")), key=_number)
    for linear, key in zip(("fc1", "fc2", "fc3"), operands, strict=True):
        weights[f"net.{linear}.weight"] = found[key].T.contiguous()
    lstm = sorted((k for k in found if k.startswith("onnx::LSTM")), key=_number)
    for layer in range(len(lstm) // 3):
        w, r, b = (found[k][0] for k in lstm[3 * layer : 3 * layer + 3])
        weights[f"net.lstm.weight_ih_l{layer}"] = _torch_gates(w, hidden)
        weights[f"net.lstm.weight_hh_l{layer}"] = _torch_gates(r, hidden)
        weights[f"net.lstm.bias_ih_l{layer}"] = _torch_gates(b[: 4 * hidden], hidden)
        weights[f"net.lstm.bias_hh_l{layer}"] = _torch_gates(b[4 * hidden :], hidden)
    return weights
