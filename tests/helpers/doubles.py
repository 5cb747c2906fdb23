"""Hop models for tests that need a known answer (no torch, no model file)."""

from __future__ import annotations

import numpy as np

from livestems.realtime.dsp.presets import SpectralPreset
from livestems.realtime.engine.processor import IdentityHopModel


class ChannelSplitModel(IdentityHopModel):
    """Two stems: the left channel and the right channel (masks of one and zero)."""

    stems = ("left", "right")

    def __init__(self, preset: SpectralPreset) -> None:
        self._masks = np.zeros((2, 2, preset.n_bins), dtype=np.float32)
        self._masks[0, 0] = 1.0
        self._masks[1, 1] = 1.0
