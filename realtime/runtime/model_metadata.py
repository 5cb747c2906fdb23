"""The ``livestems`` metadata of an ONNX model file: its schema, and the checks the runtime makes.

Thread contract: plain data and pure functions, used on the main thread when a model loads;
never on the audio path.

One ``.onnx`` file carries everything the runtime needs (DESIGN.md, "The ONNX model file"): the
graph, and under the ``metadata_props`` key ``livestems`` a JSON object with the format version,
family and configuration, sample rate, preset and front end, stems, feature and mask shapes and
the masks' domain (magnitude or complex), every state tensor's name and shape, the measured
algorithmic latency, provenance (training data, licence) and a golden input/output pair's
digest. The exporter writes it with ``to_json``; the runner reads it with
``ModelMetadata.from_json`` and checks it against the graph with ``check_against_graph``. Every
refusal is one sentence naming the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp.presets import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, PRESETS, SpectralPreset
from ..errors import UserError

METADATA_KEY = "livestems"
FORMAT_VERSION = 1
FEATURES_INPUT = "features"
MASKS_OUTPUT = "masks"
#: What a model's masks multiply the mixture's spectrum with. ``magnitude``: real masks, computed
#: from the magnitudes (features [shape=(1, n_frames, n_feature_channels, n_bins)]); ``complex``:
#: complex masks (real and imaginary parts), computed from the spectrum itself, so both the
#: features and the masks carry a trailing axis of 2 (real, imaginary: numpy's complex64 layout,
#: so the runner views them as complex without a copy). A file without the key is ``magnitude``.
MAGNITUDE, COMPLEX = "magnitude", "complex"
MASK_DOMAINS = (MAGNITUDE, COMPLEX)
#: A model with a waveform branch (the ``hybrid`` family; metadata ``waveform_hop``: true) has
#: one more output, [shape=(1, n_frames, hop, n_stems, n_channels)]: per frame, a hop of every
#: stem that the processor adds to the hop the frame's synthesis completes. Absent: no such output.
WAVEFORM_OUTPUT = "waveform"


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
    bytes on the CPU provider at export time (``OnnxHopModel.verify_golden`` checks both, and
    says why a digest that differs is no error by itself).
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
    mask_domain: str = MAGNITUDE
    waveform_hop: bool = False

    @property
    def complex_masks(self) -> bool:
        return self.mask_domain == COMPLEX

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One frame of the graph's features: (n_feature_channels, n_bins), and (real,
        imaginary) last for complex masks."""
        pair = (2,) if self.complex_masks else ()
        return (self.n_feature_channels, self.n_bins, *pair)

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
        if not self.waveform_hop:
            del values["waveform_hop"]  # files without a waveform branch stay as they were
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
            metadata = cls._parse(values, version)
        except _Invalid as error:
            raise ModelFileError(
                f"Cannot use model {name}: its livestems metadata {error}."
            ) from None
        except (KeyError, TypeError, ValueError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise ModelFileError(
                f"Cannot use model {name}: its livestems metadata is incomplete ({detail})."
            ) from None
        metadata._check_geometry(name)
        return metadata

    @classmethod
    def _parse(cls, values: dict[str, Any], version: int) -> ModelMetadata:
        """Every field read with its type and range checked (``_Invalid`` says which)."""
        rate = _integer(values, "sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        preset_values = _field(values, "preset", dict)
        n_fft = _integer(preset_values, "n_fft", 1, MAX_WINDOW, "preset")
        preset = SpectralPreset(
            name=_field(preset_values, "name", str, "preset"),
            n_fft=n_fft,
            hop=_integer(preset_values, "hop", 1, n_fft, "preset"),
            synthesis_length=_integer(preset_values, "synthesis_length", 1, n_fft, "preset"),
            sample_rate=rate,
        )
        front_end = _field(values, "front_end", dict)
        if "n_bands" in front_end:
            _integer(front_end, "n_bands", 1, MAX_BANDS, "front_end")
        golden = _field(values, "golden", dict)
        sums = _field(golden, "output_sums", list, "golden")
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in sums):
            raise _Invalid("gives golden.output_sums that are not all finite numbers")
        # Files written before complex masks have no key: their masks are magnitude masks.
        mask_domain = values.get("mask_domain", MAGNITUDE)
        if mask_domain not in MASK_DOMAINS:
            raise _Invalid(f"gives mask_domain {mask_domain!r}, not {MAGNITUDE!r} or {COMPLEX!r}")
        waveform_hop = values.get("waveform_hop", False)
        if not isinstance(waveform_hop, bool):
            raise _Invalid(f"gives waveform_hop {waveform_hop!r}, not true or false")
        return cls(
            family=_field(values, "family", str),
            config=_field(values, "config", dict),
            sample_rate=rate,
            n_channels=_integer(values, "n_channels", 1, 2),
            preset=preset,
            front_end=front_end,
            n_feature_channels=_integer(values, "n_feature_channels", 1, MAX_DIMENSION),
            n_bins=_integer(values, "n_bins", 1, MAX_DIMENSION),
            stems=_stem_names(_field(values, "stems", list)),
            mask=_field(values, "mask", str),
            state=_state(_field(values, "state", list)),
            latency_samples=_integer(values, "latency_samples", 0, MAX_LATENCY_S * rate),
            parameters=_integer(values, "parameters", 0, 2**40),
            precision=_field(values, "precision", str),
            golden=GoldenPair(
                seed=_integer(golden, "seed", 0, 2**63 - 1, "golden"),
                n_frames=_integer(golden, "n_frames", 1, MAX_GOLDEN_FRAMES, "golden"),
                input_sha256=_field(golden, "input_sha256", str, "golden"),
                output_sha256=_field(golden, "output_sha256", str, "golden"),
                output_sums=tuple(float(x) for x in sums),
            ),
            training_data=str(values.get("training_data", "")),
            licence=str(values.get("licence", "")),
            livestems_version=str(values.get("livestems_version", "")),
            format_version=version,
            extra=_field(values, "extra", dict) if "extra" in values else {},
            mask_domain=mask_domain,
            waveform_hop=waveform_hop,
        )

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
        shapes: dict[str, tuple[int | None, ...]] = {FEATURES_INPUT: (1, None, *self.frame_shape)}
        shapes.update({tensor.name: tensor.shape for tensor in self.state})
        return shapes

    def expected_outputs(self) -> dict[str, tuple[int | None, ...]]:
        channels, bins, *pair = self.frame_shape
        shapes: dict[str, tuple[int | None, ...]] = {
            MASKS_OUTPUT: (1, None, len(self.stems), channels, bins, *pair)
        }
        if self.waveform_hop:
            hop = (1, None, self.preset.hop, len(self.stems), self.n_channels)
            shapes[WAVEFORM_OUTPUT] = hop
        shapes.update({tensor.output_name: tensor.shape for tensor in self.state})
        return shapes


# ---------------------------------------------------------------------------- field checks

#: Ranges a model file's numbers must lie in: far beyond any real model, small enough that a
#: damaged file is refused before it allocates or divides by them.
MAX_WINDOW = 2**16
MAX_BANDS = 64
MAX_DIMENSION = 2**16
MAX_LATENCY_S = 10
MAX_GOLDEN_FRAMES = 10_000
MAX_STATE_VALUES = 2**26
#: A stem name becomes a file name (``OUT/<song>/<stem>.wav``), a key and a label: letters,
#: digits, ``_`` and ``-``, so that it can never be a path (``../x``, ``/tmp/x``) or hidden.
STEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
MAX_STEMS = 16


class _Invalid(Exception):
    """A metadata field of the wrong type or out of range; the message ends the sentence."""


def _field(values: dict[str, Any], key: str, kind: type, within: str = "") -> Any:
    where = f"{within}.{key}" if within else key
    value = values.get(key)
    if value is None:
        raise _Invalid(f"is incomplete (no {where})")
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _Invalid(f"gives {where} as {type(value).__name__}, not {kind.__name__}")
    return value


def _integer(values: dict[str, Any], key: str, low: int, high: int, within: str = "") -> int:
    value = _field(values, key, int, within)
    if not low <= value <= high:
        where = f"{within}.{key}" if within else key
        raise _Invalid(f"gives {where} = {value}, outside {low} to {high}")
    return int(value)


def _stem_names(stems: list[Any]) -> tuple[str, ...]:
    if not 1 <= len(stems) <= MAX_STEMS:
        raise _Invalid(f"declares {len(stems)} stems, not 1 to {MAX_STEMS}")
    for stem in stems:
        if not isinstance(stem, str) or not STEM_NAME.fullmatch(stem):
            raise _Invalid(f"names a stem {stem!r}: stem names are 1 to 32 letters, digits, _ or -")
    folded = [stem.casefold() for stem in stems]
    if len(set(folded)) != len(folded):
        twice = next(stem for stem in stems if folded.count(stem.casefold()) > 1)
        raise _Invalid(f"names the stem {twice!r} twice")
    return tuple(stems)


def _state(items: list[Any]) -> tuple[StateTensor, ...]:
    tensors = []
    for item in items:
        if not isinstance(item, dict):
            raise _Invalid("gives a state tensor that is not an object")
        name = _field(item, "name", str, "state")
        shape = _field(item, "shape", list, "state")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
            raise _Invalid(f"gives state {name!r} a shape {shape} that is not whole numbers >= 1")
        if math.prod(shape) > MAX_STATE_VALUES:
            raise _Invalid(f"gives state {name!r} a shape {shape} too large for any model")
        tensors.append(StateTensor(name, tuple(shape)))
    names = [tensor.name for tensor in tensors]
    if len(set(names)) != len(names) or FEATURES_INPUT in names:
        raise _Invalid("names two state tensors alike, or one after the features input")
    return tuple(tensors)


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
    """The golden input: reproducible features in [0, 4) (magnitudes, or real and imaginary
    parts), float32, from ``seed``."""
    rng = np.random.default_rng(seed)
    return (rng.random(shape, dtype=np.float32) * 4.0).astype(np.float32)


def stem_sums(masks: np.ndarray) -> np.ndarray:
    """The golden pair's check figures: masks [shape=(n_frames, n_stems, ...)] (real and imaginary
    parts alike) summed per stem, in float64."""
    axes = tuple(axis for axis in range(masks.ndim) if axis != 1)
    return masks.sum(axis=axes, dtype=np.float64)
