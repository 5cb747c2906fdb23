"""A torch mask network as the real-time processor's ``HopModel``.

Lets ``livestems.realtime.processor.StreamProcessor`` (and ``render_offline``) run a torch model
through the very same streaming path the engine uses with onnxruntime: the tests compare the
two paths, and training can listen to a checkpoint before it is exported. Not for the engine
itself, which never imports torch.

Thread contract: owned by the thread that owns the processor; torch runs in that thread.
"""

from __future__ import annotations

import numpy as np
import torch

from .frontend import StftFrontEnd
from .separator import Separator


class TorchHopModel:
    """Args:
    separator: a model whose front end is the plain STFT (the processor's front end).
    """

    def __init__(self, separator: Separator) -> None:
        if not isinstance(separator.front_end, StftFrontEnd):
            raise ValueError("the real-time processor runs full-band STFT models only, for now")
        self.net = separator.net.eval()
        self.stems = separator.stems
        self.reset()

    def reset(self) -> None:
        self._state = self.net.initial_state(1)

    @torch.no_grad()
    def run(self, spectra: np.ndarray) -> np.ndarray:
        """[shape=(n_frames, n_channels, n_bins)] complex -> [shape=(n_frames, n_stems,
        n_channels, n_bins)] float32, continuing from the current state."""
        magnitude = torch.from_numpy(np.abs(spectra).astype(np.float32))[None]
        masks, *state = self.net(magnitude, *self._state)
        self._state = tuple(state)
        return masks[0].numpy()

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        """[shape=(n_channels, n_bins)] complex -> [shape=(n_stems, n_channels, n_bins)]"""
        return self.run(spectrum[None])[0]
