"""A torch mask network as the real-time processor's ``HopModel``.

Lets ``livestems.realtime.engine.processor.StreamProcessor`` (and ``render_offline``) run a torch
model
through the very same streaming path the engine uses with onnxruntime: the tests compare the
two paths, and training can listen to a checkpoint before it is exported. Not for the engine
itself, which never imports torch.

Either front end runs: ``path()`` gives the real-time spectral path that matches the
separator's (the full-band STFT, or the PQMF subband bank with an STFT per band), to pass to
the processor.

Thread contract: owned by the thread that owns the processor; torch runs in that thread.
"""

from __future__ import annotations

import numpy as np
import torch

from ...realtime.dsp import front_end as streaming
from ...realtime.dsp.presets import SpectralPreset
from ...realtime.runtime.model_metadata import COMPLEX
from ..layers import front_end as torch_twin
from ..layers.masks import mask_values, network_features
from ..layers.streaming import split_outputs
from .separator import SeparatorNet


def streaming_front_end(separator: SeparatorNet) -> streaming.FrontEnd:
    """The real-time twin of ``separator.front_end``: the same geometry, bank and channels."""
    front_end = separator.front_end
    if isinstance(front_end, torch_twin.StftFrontEnd):
        return streaming.StftFrontEnd(front_end.preset, front_end.n_channels)
    if isinstance(front_end, torch_twin.SubbandFrontEnd):
        path = streaming.SubbandFrontEnd(front_end.preset, front_end.n_channels, front_end.n_bands)
        trained, streamed = front_end.pqmf.design, path.design
        # A bank built with other taps or another window would stream other bands than the
        # model was trained on.
        if not (
            trained.order == streamed.order
            and np.array_equal(trained.analysis, streamed.analysis)
            and np.array_equal(trained.synthesis, streamed.synthesis)
        ):
            raise ValueError(
                "The model's PQMF bank is not the default design the real-time subband path "
                "runs: rebuild it with Pqmf(n_bands)."
            )
        return path
    raise ValueError(f"No real-time spectral path for a {type(front_end).__name__} front end.")


class TorchHopModel:
    """Args:
    separator: a model with either front end; run it with ``StreamProcessor(hop_model,
        hop_model.preset, hop_model.n_channels, hop_model.front_end())``.
    """

    def __init__(self, separator: SeparatorNet) -> None:
        self._path = streaming_front_end(separator)
        self.net = separator.net.eval()
        self.stems = separator.stems
        self.mask_domain = separator.config.mask_domain
        # A waveform branch (the hybrid family): the last call's hops, [shape=(n_frames, hop,
        # n_stems * n_channels)], which the processor adds after synthesis.
        self.waveform_hop = bool(getattr(self.net, "waveform_output", False))
        self.last_waveform: np.ndarray | None = None
        self.reset()

    @property
    def preset(self) -> SpectralPreset:
        return self._path.preset

    @property
    def n_channels(self) -> int:
        return self._path.n_channels

    def front_end(self) -> streaming.FrontEnd:
        """The spectral path the processor must run for this model."""
        return self._path

    def reset(self) -> None:
        self._state = self.net.initial_state(1)

    @torch.no_grad()
    def run(self, spectra: np.ndarray) -> np.ndarray:
        """[shape=(n_frames, n_feature_channels, n_bins)] complex -> [shape=(n_frames, n_stems,
        n_feature_channels, n_bins)] float32 (complex64 for complex masks), continuing from the
        current state."""
        expected = (self._path.n_feature_channels, self._path.n_bins)
        if spectra.shape[1:] != expected:
            raise ValueError(
                f"This model takes spectra of {expected[0]} x {expected[1]} (feature channels x "
                f"bins) but got {spectra.shape[1]} x {spectra.shape[2]}: run the processor "
                "with path=hop_model.front_end()."
            )
        if self.mask_domain == COMPLEX:
            pairs = torch.from_numpy(np.asarray(spectra, dtype=np.complex64))[None]
            features = network_features(pairs, self.mask_domain)
        else:
            features = torch.from_numpy(np.abs(spectra).astype(np.float32))[None]
        masks, hops, self._state = split_outputs(self.net, self.net(features, *self._state))
        if hops is not None:
            self.last_waveform = hops[0].flatten(2).numpy()
        return mask_values(masks[0], self.mask_domain).numpy()

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        """[shape=(n_feature_channels, n_bins)] complex -> [shape=(n_stems,
        n_feature_channels, n_bins)]"""
        return self.run(spectrum[None])[0]
