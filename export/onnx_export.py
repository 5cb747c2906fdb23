"""ONNX export: one file with the step graph, its named state, and the livestems metadata.

The graph is the mask network alone (DESIGN.md: the STFT stays outside, in numpy): inputs
``features`` [shape=(1, n_frames, n_feature_channels, n_bins)] and every state tensor by name;
outputs ``masks`` [shape=(1, n_frames, n_stems, n_feature_channels, n_bins)] and each new state
as ``<name>_out``. A model with complex masks reads the spectrum's real and imaginary parts and
writes its masks' the same way: both with a trailing axis of 2 (metadata ``mask_domain``). The
time axis is dynamic, so the same file runs one frame live or a whole song offline.

Before anything is written, the exported graph is run in onnxruntime frame by frame and as one
sequence and compared with torch; a file that disagrees is refused, not written.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime
import torch

from ..models.families.separator import SeparatorNet
from ..models.layers.streaming import split_outputs
from ..realtime.commands.cli import version
from ..realtime.errors import UserError
from ..realtime.io.atomic_file import atomic_write
from ..realtime.runtime.model_metadata import (
    FEATURES_INPUT,
    MASKS_OUTPUT,
    METADATA_KEY,
    WAVEFORM_OUTPUT,
    GoldenPair,
    ModelMetadata,
    StateTensor,
    golden_features,
    stem_sums,
)

OPSET = 17
GOLDEN_SEED = 20261121
GOLDEN_FRAMES = 8
PARITY_FRAMES = 24
DEFAULT_TOLERANCE = {"float32": 1e-4, "float16": 1e-2}


class ExportError(UserError):
    """An export that cannot or must not be written."""


def measure_latency_samples(separator: SeparatorNet) -> int:
    """Where an impulse comes out of the model's front end with masks of one, in float64."""
    front_end = separator.front_end
    preset = separator.config.spectral_preset
    n_samples = 4 * preset.n_fft + separator.latency_samples
    impulse_at = preset.n_fft + 17
    impulse = torch.zeros(1, separator.config.n_channels, n_samples, dtype=torch.float64)
    impulse[..., impulse_at] = 1.0
    with torch.no_grad():
        spectra = front_end.double().analyze(impulse)
        out = front_end.synthesize(spectra.unsqueeze(2), n_samples)[0, 0, 0]
    front_end.float()
    return int(out.abs().argmax()) - impulse_at


def random_features(separator: SeparatorNet, n_frames: int, seed: int) -> np.ndarray:
    """Features for one sequence [shape=(1, n_frames, *frame_shape)], float32: magnitudes in
    [0, 3), or real and imaginary parts in [-3, 3)."""
    rng = np.random.default_rng(seed)
    features = rng.random((1, n_frames, *separator.frame_shape), dtype=np.float32) * 3
    if separator.config.n_mask_parts == 2:
        features = features * 2 - 3
    return features.astype(np.float32)


def _trace_to_onnx(separator: SeparatorNet) -> onnx.ModelProto:
    net = separator.net
    specs = net.state_spec()
    example = torch.from_numpy(random_features(separator, 3, seed=3))
    state = net.initial_state(1)
    # A waveform branch (the hybrid family) gives its hops second.
    waveform = [WAVEFORM_OUTPUT] if getattr(net, "waveform_output", False) else []
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns about LSTM batch sizes and its own deprecation; the parity
        # check below is what decides whether the graph is right.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example, *state),
            buffer,  # type: ignore[arg-type]  # the legacy exporter writes to any binary file
            input_names=[FEATURES_INPUT, *(spec.name for spec in specs)],
            output_names=[MASKS_OUTPUT, *waveform, *(f"{spec.name}_out" for spec in specs)],
            dynamic_axes={
                FEATURES_INPUT: {1: "n_frames"},
                MASKS_OUTPUT: {1: "n_frames"},
                **{name: {1: "n_frames"} for name in waveform},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _to_float16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store every float32 weight as float16, cast back to float32 when the graph loads.

    Halves the file; the arithmetic stays float32 on every execution provider (onnxruntime's
    CPU provider lacks float16 kernels for several of the operators used here).
    """
    graph = model.graph
    casts = []
    for initializer in list(graph.initializer):
        if initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        values = onnx.numpy_helper.to_array(initializer)
        half = onnx.numpy_helper.from_array(values.astype(np.float16), f"{initializer.name}_f16")
        graph.initializer.remove(initializer)
        graph.initializer.append(half)
        casts.append(
            onnx.helper.make_node(
                "Cast", [half.name], [initializer.name], to=onnx.TensorProto.FLOAT
            )
        )
    # The casts come first, so the nodes stay in topological order.
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _run_sequence(
    session: onnxruntime.InferenceSession, features: np.ndarray, state: dict
) -> tuple:
    """(masks, waveform hops or None, new state)."""
    masks, *new_state = session.run(None, {FEATURES_INPUT: features, **state})
    hops = new_state.pop(0) if len(new_state) > len(state) else None
    return masks, hops, dict(zip(state, new_state, strict=True))


def _flat(masks: np.ndarray, hops: np.ndarray | None) -> np.ndarray:
    """Masks and any waveform hops, per frame, side by side: [shape=(1, n_frames, ...)]."""
    parts = [masks, *([] if hops is None else [hops])]
    return np.concatenate([part.reshape(*part.shape[:2], -1) for part in parts], axis=2)


def _check_parity(
    session: onnxruntime.InferenceSession, separator: SeparatorNet, tolerance: float, path: Path
) -> float:
    """Largest difference of onnxruntime (frame by frame, and whole) against torch."""
    net = separator.net
    features = random_features(separator, PARITY_FRAMES, seed=7)
    with torch.no_grad():
        masks, hops, _ = split_outputs(net, net(torch.from_numpy(features), *net.initial_state(1)))
    expected = _flat(masks.numpy(), None if hops is None else hops.numpy())
    zero_state = {spec.name: np.zeros(spec.shape, np.float32) for spec in net.state_spec()}
    masks, hops, _ = _run_sequence(session, features, zero_state)
    whole = _flat(masks, hops)
    state, stepped = zero_state, []
    for frame in range(PARITY_FRAMES):
        masks, hops, state = _run_sequence(session, features[:, frame : frame + 1], state)
        stepped.append(_flat(masks, hops))
    frame_by_frame = np.concatenate(stepped, axis=1)
    worst = max(
        float(np.abs(frame_by_frame - expected).max()),
        float(np.abs(whole - frame_by_frame).max()),
    )
    if not worst <= tolerance:
        raise ExportError(
            f'Refusing to write "{path}": onnxruntime disagrees with torch by {worst:.3g} '
            f"(tolerance {tolerance:g})."
        )
    return worst


def export_onnx(
    separator: SeparatorNet,
    path: str | os.PathLike[str],
    *,
    float16: bool = False,
    training_data: str = "none (random weights)",
    licence: str = "unspecified",
    tolerance: float | None = None,
) -> ModelMetadata:
    """Export, verify and write ``path`` atomically; returns the metadata written."""
    path = Path(path)
    if not separator.config.streamable:
        raise UserError(
            f"The {separator.config.family} family is an offline baseline (it reads the whole "
            "song at once), so it cannot be exported for the real-time engine."
        )
    separator = separator.float().eval().cpu()
    precision = "float16 weights" if float16 else "float32"
    tolerance = (
        DEFAULT_TOLERANCE["float16" if float16 else "float32"] if tolerance is None else tolerance
    )
    model = _trace_to_onnx(separator)
    if float16:
        model = _to_float16_weights(model)
    onnx.checker.check_model(model)
    # The runtime's CPU settings (``OnnxHopModel``): the golden digest recorded below is then
    # what a runner on this machine answers, to the bit.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    _check_parity(session, separator, tolerance, path)

    config = separator.config
    front_end = separator.front_end
    golden_input = golden_features(GOLDEN_SEED, (GOLDEN_FRAMES, *separator.frame_shape))
    zero_state = {
        spec.name: np.zeros(spec.shape, np.float32) for spec in separator.net.state_spec()
    }
    golden_output = _run_sequence(session, golden_input[None], zero_state)[0]
    subband = getattr(front_end, "n_bands", 0)
    metadata = ModelMetadata(
        family=config.family,
        config=config.to_dict(),
        sample_rate=config.spectral_preset.sample_rate,
        n_channels=config.n_channels,
        preset=config.spectral_preset,
        front_end={"kind": "subband", "n_bands": subband} if subband else {"kind": "stft"},
        n_feature_channels=front_end.n_feature_channels,
        n_bins=front_end.n_bins,
        stems=config.stems,
        mask=config.mask,
        mask_domain=config.mask_domain,
        waveform_hop=bool(getattr(separator.net, "waveform_output", False)),
        state=tuple(StateTensor(spec.name, spec.shape) for spec in separator.net.state_spec()),
        latency_samples=measure_latency_samples(separator),
        parameters=sum(p.numel() for p in separator.parameters()),
        precision=precision,
        golden=GoldenPair(
            seed=GOLDEN_SEED,
            n_frames=GOLDEN_FRAMES,
            input_sha256=hashlib.sha256(golden_input.tobytes()).hexdigest(),
            output_sha256=hashlib.sha256(golden_output.tobytes()).hexdigest(),
            output_sums=tuple(stem_sums(golden_output[0]).tolist()),
        ),
        training_data=training_data,
        licence=licence,
        livestems_version=version(),
    )
    if metadata.latency_samples != separator.latency_samples:
        raise ExportError(
            f'Refusing to write "{path}": the front end delays by {metadata.latency_samples} '
            f"samples, not the {separator.latency_samples} it declares."
        )
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    model.producer_name, model.producer_version = "livestems", version()
    with atomic_write(path) as file:
        file.write(model.SerializeToString())
    return metadata
