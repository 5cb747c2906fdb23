"""The onnxruntime runner: loads a livestems model file, checks it, and steps it with its state.

Thread contract: a runner is loaded on the main thread (it blocks on disk and on onnxruntime's
graph optimisation), then owned by one thread, the engine's worker (or whoever renders
offline), which calls ``step``/``run``/``reset``. It takes no lock. The audio callback never
calls it: onnxruntime may allocate and, on CUDA, synchronise with the device.

The runner is the processor's ``HopModel``: complex spectra in, masks out, recurrent and
convolution state kept between calls until ``reset()``. A model with magnitude masks reads the
spectra's magnitudes and gives float32 masks; one with complex masks (its metadata's
``mask_domain``) reads the spectra as (real, imaginary) pairs and gives complex64 masks, both
views of the graph's float32 arrays, not copies. On CPU it runs with a small, fixed
thread count (one by default: a per-hop graph is too small to gain from a thread pool, and
waking one costs latency). On CUDA it keeps the state on the device between hops with I/O
binding, so only the frame's features and the masks cross the bus.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from ..dsp.front_end import FrontEnd, StftFrontEnd, SubbandFrontEnd
from ..errors import UserError
from .model_metadata import (
    FEATURES_INPUT,
    MASKS_OUTPUT,
    METADATA_KEY,
    WAVEFORM_OUTPUT,
    ModelFileError,
    ModelMetadata,
    check_against_graph,
    golden_features,
    stem_sums,
)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_CHOICES = ("auto", "cpu", "cuda")


def available_providers() -> list[str]:
    return list(onnxruntime.get_available_providers())


def _providers_for(requested: str) -> list[str]:
    if requested not in PROVIDER_CHOICES:
        choices = ", ".join(PROVIDER_CHOICES)
        raise UserError(f"Unknown execution provider {requested!r}: choose one of {choices}.")
    available = available_providers()
    if requested == "cuda" and CUDA not in available:
        raise UserError(
            "CUDA was asked for, but this onnxruntime has no CUDA provider (it has "
            f"{', '.join(available)}); on an NVIDIA machine, install onnxruntime-gpu with "
            "'./setup.sh --gpu'."
        )
    if requested == "cpu" or CUDA not in available:
        return [CPU]
    return [CUDA, CPU]


class OnnxHopModel:
    """A livestems model file, run by onnxruntime.

    Args:
        path: the ``.onnx`` file.
        provider: ``auto`` (CUDA when onnxruntime has it and a GPU answers, else CPU), ``cpu``
            or ``cuda`` (an error when it cannot be had).
        cpu_threads: onnxruntime's intra-op threads on CPU.
    """

    def __init__(self, path: str | os.PathLike[str], provider: str = "auto", cpu_threads: int = 1):
        self.path = Path(path)
        name = f'"{path}"'
        if not self.path.exists():
            raise ModelFileError(f"Cannot use model {name}: no such file.")
        if self.path.is_dir():
            raise ModelFileError(f"Cannot use model {name}: it is a directory, not a model file.")
        providers = _providers_for(provider)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: warnings would reach the terminal UI
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=providers
            )
        except Exception as error:  # onnxruntime raises its own types for every kind of damage
            detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise ModelFileError(
                f"Cannot use model {name}: it is not a valid ONNX model or it is truncated "
                f"({detail})."
            ) from error
        self.provider = self.session.get_providers()[0]
        if provider == "cuda" and self.provider != CUDA:
            raise UserError(
                f"CUDA was asked for, but onnxruntime could not use a GPU for {name} "
                "(is an NVIDIA driver installed and a GPU visible?)."
            )
        metadata_json = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if metadata_json is None:
            raise ModelFileError(
                f"Cannot use model {name}: it has no livestems metadata (export models with "
                "'livestems export')."
            )
        self.metadata = ModelMetadata.from_json(metadata_json, self.path)
        check_against_graph(
            self.metadata,
            {tensor.name: tuple(tensor.shape) for tensor in self.session.get_inputs()},
            {tensor.name: tuple(tensor.shape) for tensor in self.session.get_outputs()},
            self.path,
        )
        self.stems = self.metadata.stems
        self._state_names = [tensor.name for tensor in self.metadata.state]
        self._zero_state = {
            tensor.name: np.zeros(tensor.shape, dtype=np.float32) for tensor in self.metadata.state
        }
        self._features = np.zeros((1, 1, *self.metadata.frame_shape), dtype=np.float32)
        # Complex masks: the features are the spectrum itself, written through this view.
        self._spectrum_view = (
            self._features.view(np.complex64)[..., 0] if self.metadata.complex_masks else None
        )
        # A waveform branch: the last call's hops [shape=(n_frames, hop, n_stems *
        # n_channels)], which the processor adds after synthesis (metadata ``waveform_hop``).
        self.waveform_hop = self.metadata.waveform_hop
        self.last_waveform: np.ndarray | None = None
        self._binding: Any = None
        if self.provider == CUDA:
            self._prepare_device_state()
        self.reset()

    def front_end(self) -> FrontEnd:
        """The front end the model was trained with, for the stream processor."""
        meta = self.metadata
        if meta.front_end["kind"] == "subband":
            return SubbandFrontEnd(meta.preset, meta.n_channels, meta.n_bands)
        return StftFrontEnd(meta.preset, meta.n_channels)

    # -- state ------------------------------------------------------------------------------

    def _prepare_device_state(self) -> None:
        """Two sets of device buffers per state tensor, swapped after each run."""
        self._binding = self.session.io_binding()
        self._device_in = {
            name: onnxruntime.OrtValue.ortvalue_from_numpy(zeros, "cuda", 0)
            for name, zeros in self._zero_state.items()
        }
        self._device_out = {
            name: onnxruntime.OrtValue.ortvalue_from_numpy(zeros, "cuda", 0)
            for name, zeros in self._zero_state.items()
        }

    def reset(self) -> None:
        """Clear all recurrent and convolution state."""
        if self._binding is not None:
            for name, zeros in self._zero_state.items():
                self._device_in[name].update_inplace(zeros)
        else:
            self._state = dict(self._zero_state)

    # -- running ----------------------------------------------------------------------------

    def run_features(self, features: np.ndarray) -> np.ndarray:
        """The graph's masks for a run of frames, continuing from the current state.

        Args:
            features: [shape=(n_frames, *metadata.frame_shape), float32]: magnitudes
                [shape=(n_frames, n_feature_channels, n_bins)], or for complex masks real and
                imaginary parts [shape=(n_frames, n_feature_channels, n_bins, 2)].

        Returns:
            [shape=(n_frames, n_stems, n_feature_channels, n_bins), float32], with a trailing
            axis of 2 (real, imaginary) for complex masks.
        """
        batch = features[None]
        if self._binding is None:
            feed = {FEATURES_INPUT: batch, **self._state}
            masks, *new_state = self.session.run(None, feed)
            if self.waveform_hop:
                hops, *new_state = new_state
                self.last_waveform = hops[0].reshape(*hops.shape[1:3], -1)
            self._state = dict(zip(self._state_names, new_state, strict=True))
            return masks[0]
        binding = self._binding
        binding.bind_cpu_input(FEATURES_INPUT, np.ascontiguousarray(batch))
        # copy_outputs_to_cpu() returns the outputs in the order they were first bound: the
        # masks (and waveform hops) first, so that they come before the state.
        binding.bind_output(MASKS_OUTPUT, "cpu")
        if self.waveform_hop:
            binding.bind_output(WAVEFORM_OUTPUT, "cpu")
        for tensor in self.metadata.state:
            binding.bind_ortvalue_input(tensor.name, self._device_in[tensor.name])
            binding.bind_ortvalue_output(tensor.output_name, self._device_out[tensor.name])
        self.session.run_with_iobinding(binding)
        outputs = binding.copy_outputs_to_cpu()
        masks = outputs[0]
        if self.waveform_hop:
            hops = outputs[1]
            self.last_waveform = hops[0].reshape(*hops.shape[1:3], -1)
        self._device_in, self._device_out = self._device_out, self._device_in
        return masks[0]

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        """The processor's hop: [shape=(n_feature_channels, n_bins)] complex ->
        [shape=(n_stems, n_feature_channels, n_bins)], float32 or (complex masks) complex64"""
        if self._spectrum_view is not None:
            self._spectrum_view[0, 0] = spectrum
        else:
            np.abs(spectrum, out=self._features[0, 0])
        return self._as_masks(self.run_features(self._features[0])[0])

    def run(self, spectra: np.ndarray) -> np.ndarray:
        """Whole sequences: [shape=(n_frames, n_feature_channels, n_bins)] complex ->
        [shape=(n_frames, n_stems, n_feature_channels, n_bins)], float32 or complex64"""
        if self._spectrum_view is not None:
            pairs = np.ascontiguousarray(spectra, dtype=np.complex64).view(np.float32)
            return self._as_masks(self.run_features(pairs.reshape(*spectra.shape, 2)))
        return self.run_features(np.abs(spectra).astype(np.float32))

    def _as_masks(self, masks: np.ndarray) -> np.ndarray:
        """Complex masks as complex64: the (real, imaginary) pairs viewed, not copied."""
        if self._spectrum_view is None:
            return masks
        return np.ascontiguousarray(masks).view(np.complex64)[..., 0]

    # -- checks -----------------------------------------------------------------------------

    def verify_golden(self, tolerance: float = 1e-3, exact: bool = False) -> bool:
        """Run the golden input from a fresh state and compare with what export recorded.

        Two checks of different strength. The masks summed per stem (``golden.output_sums``)
        must match within ``tolerance`` on every machine and provider: that is what makes a
        file usable, and a miss is always an error. The SHA-256 of the masks' bytes
        (``golden.output_sha256``) is what onnxruntime answered on the exporting machine's CPU,
        to the bit; float arithmetic is not bit-reproducible across machines (onnxruntime's
        CPU kernels choose code paths by instruction set, SSE, AVX2, AVX-512 or NEON, its
        versions change kernels and graph fusions, and CUDA sums in another order), so a
        digest that differs proves nothing by itself and is no error unless ``exact``. A digest
        that matches proves the output is the exported one, bit for bit: the return value says
        which it was.

        Args:
            tolerance: relative and absolute, on each stem's sum.
            exact: also require the digest (on the CPU provider of a machine and onnxruntime
                known to reproduce the export, such as the one that exported the file).

        Returns:
            whether the output is the exported one to the bit (its digest matched).

        Raises:
            ModelFileError: the golden input cannot be reproduced, a sum is off, or (``exact``)
                the digest differs.
        """
        golden = self.metadata.golden
        features = golden_features(golden.seed, (golden.n_frames, *self.metadata.frame_shape))
        if hashlib.sha256(features.tobytes()).hexdigest() != golden.input_sha256:
            raise ModelFileError(f'Model "{self.path}": the golden input cannot be reproduced.')
        self.reset()
        masks = self.run_features(features)
        self.reset()
        sums = stem_sums(masks)
        expected = np.asarray(golden.output_sums)
        if not np.allclose(sums, expected, rtol=tolerance, atol=tolerance):
            raise ModelFileError(
                f'Model "{self.path}" does not reproduce its golden output on {self.provider} '
                f"(mask sums {np.round(sums, 3).tolist()} instead of "
                f"{np.round(expected, 3).tolist()})."
            )
        # The exporter hashed [shape=(1, n_frames, ...)]: the same bytes as these masks.
        digest = hashlib.sha256(np.ascontiguousarray(masks, dtype=np.float32).tobytes())
        matches = digest.hexdigest() == golden.output_sha256
        if exact and not matches:
            raise ModelFileError(
                f'Model "{self.path}" reproduces its golden output on {self.provider} within '
                f"{tolerance:g}, but not bit for bit (its output digest differs)."
            )
        return matches
