"""The model catalog: the bundled and user models, found by name or file, and one model's card.

Thread contract: main thread only; reads files and builds onnxruntime sessions (blocking).

Models live in two folders: the bundled ones inside the package (``realtime/bundled/``) and the
user's (``$LIVESTEMS_MODELS``, else ``$XDG_DATA_HOME/livestems/models``, else
``~/.local/share/livestems/models``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from .onnx_model import OnnxHopModel

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "bundled"
# The demo song the main job and the window open by default: made by the project's own synthetic
# generator (its seed and recipe lie beside it in demo.json), so it carries no third party's rights.
DEMO_SONG = BUNDLED_DIR / "demo.ogg"


# The default model depends on where the audio comes from, because only there does a model's
# delay reach the ear (README.md, "The bundled models and their scores"):
# - a recording (the main job, the window playing a song, play, separate, practice, the web
#   service): the bundled model with the best validation SDR within the compute bound of 0.35
#   of the hop, however far behind. Mute, solo and the faders act on the stems as they leave
#   the engine, at the next block, so its delay is heard only as the start of playback after
#   play or seek, never as lag.
# - live input (``livestems live``, the window separating the input device): what a musician
#   plays into must come back a few milliseconds later, so the best model at the live preset.
# Other bundled models are chosen by name.
DEFAULT_MODEL = "ensemble-studio"
DEFAULT_LIVE_INPUT_MODEL = "ensemble-live"


def bundled_model_file(live_input: bool = False) -> Path | None:
    """The default bundled model for a recording (``live_input``: for live input), else the
    first bundled one, else ``None``."""
    wanted = DEFAULT_LIVE_INPUT_MODEL if live_input else DEFAULT_MODEL
    bundled = [path for origin, path in model_files() if origin == "bundled"]
    for path in bundled:
        if path.stem == wanted:
            return path
    return bundled[0] if bundled else None


def bundled_demo_song() -> Path | None:
    """The bundled demo song, or ``None`` when this checkout has none."""
    return DEMO_SONG if DEMO_SONG.is_file() else None


def user_models_dir() -> Path:
    if os.environ.get("LIVESTEMS_MODELS"):
        return Path(os.environ["LIVESTEMS_MODELS"])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "livestems" / "models"


def model_files() -> list[tuple[str, Path]]:
    """(origin, path) of every model file, bundled first."""
    found = []
    for origin, folder in (("bundled", BUNDLED_DIR), ("user", user_models_dir())):
        if folder.is_dir():
            found += [(origin, path) for path in sorted(folder.glob("*.onnx"))]
    return found


NO_MODEL = (
    "No model is installed with livestems: pass --model FILE.onnx (make one with "
    "'livestems export')."
)


def find_model_file(name: str | None, live_input: bool = False) -> Path:
    """``--model``: a file, or the name of a bundled or user model (with or without
    ``.onnx``); by default the bundled default model (``DEFAULT_MODEL``; with ``live_input``,
    ``DEFAULT_LIVE_INPUT_MODEL``)."""
    if name is None:
        default = bundled_model_file(live_input)
        if default is None:
            raise UserError(NO_MODEL)
        return default
    path = Path(name)
    if path.exists() or path.suffix.lower() == ".onnx" or os.sep in name:
        return path  # OnnxHopModel says what is wrong with it
    known = model_files()
    for _, candidate in known:
        if name in (candidate.name, candidate.stem):
            return candidate
    names = ", ".join(candidate.stem for _, candidate in known) or "none installed"
    raise UserError(
        f"No model file or model named {name!r} (models: {names}; see 'livestems models')."
    )


def resolve_model(
    name: str | None, provider: str = "auto", cpu_threads: int = 1, live_input: bool = False
) -> OnnxHopModel:
    """The model a command was asked for (see ``find_model_file``), loaded and checked."""
    return OnnxHopModel(
        find_model_file(name, live_input), provider=provider, cpu_threads=cpu_threads
    )


def model_card(model: OnnxHopModel) -> str:
    meta = model.metadata
    front_end = (
        f"PQMF, {meta.n_bands} bands, then STFT" if meta.front_end["kind"] == "subband" else "STFT"
    )
    rows = [
        ("file", f"{model.path} ({model.path.stat().st_size / 1e6:.1f} MB)"),
        ("family", meta.family),
        ("stems", ", ".join(meta.stems)),
        ("mask", meta.mask),
        (
            "preset",
            f"{meta.preset.name}: window {meta.preset.n_fft}, hop {meta.preset.hop}, "
            f"synthesis {meta.preset.synthesis_length}, {meta.sample_rate} Hz",
        ),
        ("front end", front_end),
        ("latency", f"{meta.latency_samples} samples = {meta.latency_ms:.2f} ms (measured)"),
        ("parameters", f"{meta.parameters:,} ({meta.precision})"),
        ("training data", meta.training_data),
        ("licence", meta.licence),
        ("written by", f"livestems {meta.livestems_version}"),
        ("runs on", model.provider),
    ]
    return "\n".join(f"{key:>14}: {value}" for key, value in rows)
