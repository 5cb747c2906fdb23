"""The ``livestems`` metadata of an ONNX model file: its schema, and the checks the runtime makes.

Thread contract: plain data and pure functions, used on the main thread when a model loads;
never on the audio path.

One ``.onnx`` file carries everything the runtime needs (DESIGN.md, "The ONNX model file"): the
graph, and under the ``metadata_props`` key ``livestems`` a JSON object with the format version,
family and configuration, sample rate, preset and front end, stems, feature and mask shapes,
every state tensor's name and shape, the measured algorithmic latency, provenance (training data,
licence) and a golden input/output pair's digest. The exporter writes it with ``to_json``;
the runner reads it with ``ModelMetadata.from_json`` and checks it against the graph with
``check_against_graph``. Every refusal is one sentence naming the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .presets import PRESETS, SpectralPreset

METADATA_KEY = "livestems"
FORMAT_VERSION = 1
FEATURES_INPUT = "features"
MASKS_OUTPUT = "masks"


class ModelFileError(UserError):
    """A model file the runtime cannot use; the message is one sentence naming the file."""


@dataclass(frozen=True)
class StateTensor:
    name: str
    shape: tuple[int, ...]  # for a batch of one

    @property
    def output_name(self) -> str:
        return f"{self.name}_out"


@dataclass(frozen=True)
class GoldenPair:
    """A deterministic input and the digest of what the exported graph answered to it.

    The input is ``golden_features(seed, shape)``; ``output_sums`` are the masks summed per stem
    (robust to float differences between execution providers), and ``output_sha256`` the exact
    bytes on the CPU provider at export time.
    """

    seed: int
    n_frames: int
    input_sha256: str
    output_sha256: str
    output_sums: tuple[float, ...]


@dataclass(frozen=True)
class ModelMetadata:
    family: str
    config: dict[str, Any]
    sample_rate: int
    n_channels: int
    preset: SpectralPreset
    front_end: dict[str, Any]  # {"kind": "stft"} or {"kind": "subband", "n_bands": K, ...}
    n_feature_channels: int
    n_bins: int
    stems: tuple[str, ...]
    mask: str
    state: tuple[StateTensor, ...]
    latency_samples: int
    parameters: int
    precision: str
    golden: GoldenPair
    training_data: str = "none (random weights)"
    licence: str = "unspecified"
    livestems_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    @property
    def n_bands(self) -> int:
        return int(self.front_end.get("n_bands", 1))

    def to_json(self) -> str:
        values = asdict(self)
        values["preset"] = {
            "name": self.preset.name,
            "n_fft": self.preset.n_fft,
            "hop": self.preset.hop,
            "synthesis_length": self.preset.synthesis_length,
        }
        values["latency_ms"] = round(self.latency_ms, 3)
        return json.dumps(values, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: str | Path = "model") -> ModelMetadata:
        """Parse and check the metadata on its own (the graph is checked separately)."""
        name = f'"{path}"'
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ModelFileError(
                f"Cannot use model {name}: its livestems metadata is not valid JSON ({error})."
            ) from None
        if not isinstance(values, dict):
            raise ModelFileError(
                f"Cannot use model {name}: its livestems metadata is not an object."
            )
        version = values.get("format_version")
        if not isinstance(version, int):
            raise ModelFileError(f"Cannot use model {name}: its metadata has no format version.")
        if version > FORMAT_VERSION:
            raise ModelFileError(
                f"Cannot use model {name}: it has metadata format {version}, newer than this "
                f"livestems reads ({FORMAT_VERSION}); upgrade livestems."
            )
        try:
            preset_values = values["preset"]
            preset = SpectralPreset(
                name=str(preset_values["name"]),
                n_fft=int(preset_values["n_fft"]),
                hop=int(preset_values["hop"]),
                synthesis_length=int(preset_values["synthesis_length"]),
                sample_rate=int(values["sample_rate"]),
            )
            metadata = cls(
                family=str(values["family"]),
                config=dict(values["config"]),
                sample_rate=int(values["sample_rate"]),
                n_channels=int(values["n_channels"]),
                preset=preset,
                front_end=dict(values["front_end"]),
                n_feature_channels=int(values["n_feature_channels"]),
                n_bins=int(values["n_bins"]),
                stems=tuple(str(stem) for stem in values["stems"]),
                mask=str(values["mask"]),
                state=tuple(
                    StateTensor(str(item["name"]), tuple(int(n) for n in item["shape"]))
                    for item in values["state"]
                ),
                latency_samples=int(values["latency_samples"]),
                parameters=int(values["parameters"]),
                precision=str(values["precision"]),
                golden=GoldenPair(
                    seed=int(values["golden"]["seed"]),
                    n_frames=int(values["golden"]["n_frames"]),
                    input_sha256=str(values["golden"]["input_sha256"]),
                    output_sha256=str(values["golden"]["output_sha256"]),
                    output_sums=tuple(float(s) for s in values["golden"]["output_sums"]),
                ),
                training_data=str(values.get("training_data", "")),
                licence=str(values.get("licence", "")),
                livestems_version=str(values.get("livestems_version", "")),
                format_version=version,
                extra=dict(values.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise ModelFileError(
                f"Cannot use model {name}: its livestems metadata is incomplete ({detail})."
            ) from None
        metadata._check_geometry(name)
        return metadata

    def _check_geometry(self, name: str) -> None:
        """The preset, front end and feature shape must agree with each other."""
        known = PRESETS.get(self.preset.name)
        geometry = (self.preset.n_fft, self.preset.hop, self.preset.synthesis_length)
        if known is not None and geometry != (known.n_fft, known.hop, known.synthesis_length):
            raise ModelFileError(
                f"Cannot use model {name}: its preset {self.preset.name!r} has the geometry "
                f"{geometry}, not that of livestems' {self.preset.name!r} preset."
            )
        kind = self.front_end.get("kind")
        if kind == "stft":
            analysed = self.preset
            expected_channels = self.n_channels
        elif kind == "subband":
            try:
                analysed = self.preset.subband(self.n_bands)
            except ValueError as error:
                raise ModelFileError(f"Cannot use model {name}: {error}") from None
            expected_channels = self.n_bands * self.n_channels
        else:
            raise ModelFileError(f"Cannot use model {name}: unknown front end {kind!r}.")
        if (self.n_feature_channels, self.n_bins) != (expected_channels, analysed.n_bins):
            raise ModelFileError(
                f"Cannot use model {name}: its features are declared as "
                f"{self.n_feature_channels} x {self.n_bins}, but its front end gives "
                f"{expected_channels} x {analysed.n_bins}."
            )
        if not self.stems:
            raise ModelFileError(f"Cannot use model {name}: it declares no stems.")

    def expected_inputs(self) -> dict[str, tuple[int | None, ...]]:
        """Graph input name -> shape (``None`` for the dynamic time axis)."""
        shapes: dict[str, tuple[int | None, ...]] = {
            FEATURES_INPUT: (1, None, self.n_feature_channels, self.n_bins)
        }
        shapes.update({tensor.name: tensor.shape for tensor in self.state})
        return shapes

    def expected_outputs(self) -> dict[str, tuple[int | None, ...]]:
        shapes: dict[str, tuple[int | None, ...]] = {
            MASKS_OUTPUT: (1, None, len(self.stems), self.n_feature_channels, self.n_bins)
        }
        shapes.update({tensor.output_name: tensor.shape for tensor in self.state})
        return shapes


def check_against_graph(
    metadata: ModelMetadata,
    graph_inputs: dict[str, tuple[Any, ...]],
    graph_outputs: dict[str, tuple[Any, ...]],
    path: str | Path,
) -> None:
    """Refuse a file whose metadata does not describe its graph (names and shapes).

    Graph shapes come from onnxruntime: ints for fixed axes, strings or None for dynamic ones.
    """
    name = f'"{path}"'
    for kind, declared, actual in (
        ("input", metadata.expected_inputs(), graph_inputs),
        ("output", metadata.expected_outputs(), graph_outputs),
    ):
        if set(declared) != set(actual):
            missing = sorted(set(declared) - set(actual))
            surplus = sorted(set(actual) - set(declared))
            raise ModelFileError(
                f"Cannot use model {name}: its graph {kind}s do not match its metadata "
                f"(declared but missing: {missing or 'none'}; undeclared: {surplus or 'none'})."
            )
        for tensor_name, shape in declared.items():
            graph_shape = tuple(a if isinstance(a, int) else None for a in actual[tensor_name])
            if len(graph_shape) != len(shape) or any(
                want is not None and have is not None and want != have
                for want, have in zip(shape, graph_shape, strict=False)
            ):
                raise ModelFileError(
                    f"Cannot use model {name}: its metadata says {kind} {tensor_name!r} has "
                    f"shape {list(shape)}, but the graph has {list(graph_shape)}."
                )


def golden_features(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The golden input: reproducible magnitudes, float32, from ``seed``."""
    rng = np.random.default_rng(seed)
    return (rng.random(shape, dtype=np.float32) * 4.0).astype(np.float32)
