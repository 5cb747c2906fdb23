"""Checkpoints that rebuild their model from the file alone, and load weights strictly.

A checkpoint is a dict saved with ``torch.save``: a format version, the configuration (its
family and every field, as plain JSON-able values), the weights, and whatever the trainer adds
(optimiser state, step, losses) under ``extra``. Loading rebuilds the model from the
configuration and refuses weights that do not fit it exactly, in one sentence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from .registry import config_from_dict
from .separator import SeparatorNet

CHECKPOINT_FORMAT = 1


class CheckpointError(UserError):
    """A checkpoint file that cannot be used; the message names it."""


def save_checkpoint(path: str | os.PathLike[str], model: SeparatorNet, **extra: Any) -> None:
    """Write atomically: a temporary file in the same folder, then a rename, so that a kill
    mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    payload = {
        "livestems_checkpoint": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "extra": extra,
    }
    with atomic_write(path) as file:
        torch.save(payload, file)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[SeparatorNet, dict[str, Any]]:
    """The model the checkpoint describes, with its weights, and the trainer's extras."""
    name = f'"{path}"'
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"Cannot load checkpoint {name}: no such file.") from None
    except Exception as error:
        raise CheckpointError(
            f"Cannot load checkpoint {name}: it is not a readable torch checkpoint ({error})."
        ) from error
    if not isinstance(payload, dict) or "livestems_checkpoint" not in payload:
        raise CheckpointError(f"Cannot load checkpoint {name}: it is not a livestems checkpoint.")
    if payload["livestems_checkpoint"] > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"Cannot load checkpoint {name}: it has format {payload['livestems_checkpoint']}, "
            f"newer than this livestems reads ({CHECKPOINT_FORMAT}); upgrade livestems."
        )
    try:
        model = SeparatorNet(config_from_dict(payload["config"]))
    except UserError as error:
        raise CheckpointError(f"Cannot load checkpoint {name}: {error}") from error
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])
        raise CheckpointError(
            f"Cannot load checkpoint {name}: its weights do not fit its configuration ({detail})."
        ) from error
    model.eval()
    return model, dict(payload.get("extra", {}))
