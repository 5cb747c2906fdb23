"""A whole separator in torch: front end, mask network, masks applied, stems synthesised.

This is the model a checkpoint holds and training optimises. ``forward`` runs a whole waveform
through the network's sequence path; ``net`` alone (features and state in, masks and state out)
is what the ONNX export takes and what the real-time engine steps once per hop.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers.front_end import FrontEnd
from ..layers.masks import mask_values, network_features, wiener_postfilter
from ..layers.streaming import MaskNet, split_outputs
from .config import SeparatorConfig
from .registry import get_family


class SeparatorNet(nn.Module):
    """Args:
    config: the model's configuration; its family builds the network and front end.
    """

    def __init__(self, config: SeparatorConfig) -> None:
        super().__init__()
        family = get_family(config.family)
        self.config = config
        self.front_end: FrontEnd = family.build_front_end(config)
        self.net: MaskNet = family.build_net(config)

    @property
    def stems(self) -> tuple[str, ...]:
        return self.config.stems

    @property
    def latency_samples(self) -> int:
        return int(self.front_end.latency_samples)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One frame of the network's features (the exported graph's too):
        (n_feature_channels, n_bins), and (real, imaginary) last for complex masks."""
        pair = (2,) if self.config.n_mask_parts == 2 else ()
        return (self.front_end.n_feature_channels, self.front_end.n_bins, *pair)

    def features(self, spectra: torch.Tensor) -> torch.Tensor:
        """The network's features from complex spectra: magnitudes, or (complex masks) real
        and imaginary parts in a trailing axis."""
        return network_features(spectra, self.config.mask_domain)

    def masks(self, spectra: torch.Tensor) -> torch.Tensor:
        """Masks for whole spectra from the initial state.

        Args:
            spectra: [shape=(batch, n_frames, n_feature_channels, n_bins)], complex

        Returns:
            [shape=(batch, n_frames, n_stems, n_feature_channels, n_bins)], real, or complex
            for complex masks.
        """
        state = self.net.initial_state(spectra.shape[0], spectra.real.dtype, spectra.device)
        masks = self.net(self.features(spectra), *state)[0]
        return mask_values(masks, self.config.mask_domain)

    def forward(self, waveform: torch.Tensor, postfilter: bool = False) -> torch.Tensor:
        """Separate a whole waveform.

        Args:
            waveform: [shape=(batch, n_channels, n_samples)]
            postfilter: apply the single-frame multichannel Wiener post-filter.

        Returns:
            [shape=(batch, n_stems, n_channels, n_samples)], delayed by ``latency_samples``
            as the stream would be.
        """
        spectra = self.front_end.analyze(waveform)
        return self.separate_spectra(spectra, waveform.shape[-1], postfilter)

    def separate_spectra(
        self, spectra: torch.Tensor, n_samples: int, postfilter: bool = False
    ) -> torch.Tensor:
        """The stems of analysed spectra [shape=(batch, n_frames, n_feature_channels, n_bins)]
        as waveforms [shape=(batch, n_stems, n_channels, n_samples)] on the stream's timeline:
        the masked spectra's synthesis, plus a waveform branch's hops where the network has
        one."""
        state = self.net.initial_state(spectra.shape[0], spectra.real.dtype, spectra.device)
        masks, hops, _ = split_outputs(self.net, self.net(self.features(spectra), *state))
        masks = mask_values(masks, self.config.mask_domain)
        if postfilter:
            stem_spectra = wiener_postfilter(spectra, masks)
        else:
            stem_spectra = masks * spectra.unsqueeze(2)
        stems = self.front_end.synthesize(stem_spectra, n_samples)
        if hops is None:
            return stems
        return stems + self.waveform_timeline(hops, n_samples)

    def waveform_timeline(self, hops: torch.Tensor, n_samples: int) -> torch.Tensor:
        """A waveform branch's hops [shape=(batch, n_frames, hop, n_stems, n_channels)] on the
        stream's timeline [shape=(batch, n_stems, n_channels, n_samples)]: frame t's hop leaves
        with the hop its synthesis completes, from output sample t * hop + hop - 1 on (the
        processor's output FIFO starts with hop - 1 zeros)."""
        # (batch, n_frames, hop, stems, channels) -> (batch, stems, channels, n_frames * hop)
        timeline = hops.flatten(1, 2).permute(0, 2, 3, 1)
        timeline = torch.nn.functional.pad(timeline, (self.front_end.hop - 1, 0))
        timeline = timeline[..., :n_samples]
        return torch.nn.functional.pad(timeline, (0, n_samples - timeline.shape[-1]))
