"""Masks: from a network's logits to one mask per stem, and the optional Wiener post-filter.

Every function here works frame by frame (nothing looks across time), so both are causal and
stream the same as they run on a whole sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional

# Keeps a ratio mask defined where every stem's activation is zero.
RATIO_FLOOR = 1e-8


def activate_masks(logits: torch.Tensor, kind: str, stem_dim: int) -> torch.Tensor:
    """Masks in [0, 1] from logits.

    Args:
        logits: any shape with the stems along ``stem_dim``.
        kind: ``sigmoid`` (independent per stem), ``softmax`` or ``ratio`` (non-negative
            activations divided by their sum): the last two sum to one across stems, so the
            stems add up to the mix.
    """
    if kind == "sigmoid":
        return torch.sigmoid(logits)
    if kind == "softmax":
        return torch.softmax(logits, dim=stem_dim)
    if kind == "ratio":
        positive = functional.softplus(logits) + RATIO_FLOOR
        return positive / positive.sum(dim=stem_dim, keepdim=True)
    raise ValueError(f"unknown mask kind {kind!r}")


def wiener_postfilter(mix: torch.Tensor, masks: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """A multichannel Wiener filter built from the current frame's estimates only.

    The masked mixture gives each stem a first estimate ``y_j = m_j * x`` per bin; its outer
    product ``y_j y_j^H`` stands for the stem's spatial covariance (one frame: no look-ahead,
    no history), and each stem becomes ``y_j y_j^H (sum_k y_k y_k^H + eps I)^-1 x``. In mono
    this is the power-ratio mask ``|y_j|^2 / sum_k |y_k|^2``, sharper than the amplitude mask;
    in stereo it also uses the stems' inter-channel phase and level.

    Args:
        mix: [shape=(batch, n_frames, n_channels, n_bins), complex]
        masks: [shape=(batch, n_frames, n_stems, n_channels, n_bins), real]

    Returns:
        Stem spectra [shape=(batch, n_frames, n_stems, n_channels, n_bins), complex].
    """
    n_channels = mix.shape[2]
    estimates = masks * mix.unsqueeze(2)
    # (batch, frames, stems, channels, bins) -> (batch, frames, stems, bins, channels)
    y = estimates.movedim(3, -1)
    # per stem and bin: the channels x channels covariance y y^H
    covariance = y.unsqueeze(-1) * y.conj().unsqueeze(-2)
    identity = torch.eye(n_channels, dtype=mix.dtype, device=mix.device)
    mix_covariance = covariance.sum(dim=2) + eps * identity
    # (batch, frames, channels, bins) -> (batch, frames, bins, channels, 1)
    x = mix.movedim(2, -1).unsqueeze(-1)
    # C_xx^-1 x, once per bin, shared by all stems
    whitened = torch.linalg.solve(mix_covariance, x)
    filtered = (covariance @ whitened.unsqueeze(2)).squeeze(-1)
    # (batch, frames, stems, bins, channels) -> (batch, frames, stems, channels, bins)
    return filtered.movedim(-1, 3)
