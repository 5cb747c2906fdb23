"""Masks: from a network's logits to one mask per stem, and the optional Wiener post-filter.

Every function here works frame by frame (nothing looks across time), so both are causal and
stream the same as they run on a whole sequence.

Masks are magnitude masks (real, computed from the mixture's magnitudes) or complex masks
(``mask_domain="complex"``: computed from the spectrum's real and imaginary parts, so that they
can correct phase as well as level). A network always works on real tensors: for complex masks
its features and masks carry a trailing axis of 2 (real, imaginary), ``torch.view_as_real``'s
layout, which is also what the exported graph reads and writes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional

from ...realtime.runtime.model_metadata import COMPLEX

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


def activate_complex_masks(
    real_logits: torch.Tensor, imaginary_logits: torch.Tensor, kind: str, stem_dim: int
) -> torch.Tensor:
    """Complex masks, as (real, imaginary) pairs, from a real and an imaginary logit each.

    The real part is the magnitude mask of ``kind`` (``activate_masks``: in [0, 1]); the
    imaginary part is ``tanh`` of its logit: a mask turns a bin's phase by less than 90 degrees
    either way and is bounded (below sqrt(2) in magnitude, sqrt(5) once centred), so that no
    input can make it amplify without limit. With a normalised kind (``softmax``, ``ratio``) the
    imaginary parts are centred across the stems (their mean subtracted): the real parts sum to
    one and the imaginary parts to zero, so the masks sum to 1 + 0j and the stems to the mix,
    exactly as with magnitude masks. Imaginary logits of zero give the magnitude mask itself.

    Args:
        real_logits, imaginary_logits: the same shape, the stems along ``stem_dim``.
        kind: as for ``activate_masks``.

    Returns:
        [shape=(*real_logits.shape, 2)]: real and imaginary parts, interleaved last (the
        layout of ``torch.view_as_real`` and of numpy's complex64), in one copy at the end.
    """
    real = activate_masks(real_logits, kind, stem_dim)
    imaginary = torch.tanh(imaginary_logits)
    if kind != "sigmoid":
        imaginary = imaginary - imaginary.mean(dim=stem_dim, keepdim=True)
    return torch.stack([real, imaginary], dim=-1)


def network_features(spectra: torch.Tensor, mask_domain: str) -> torch.Tensor:
    """What a mask network reads from complex spectra [shape=(...)]: the magnitudes
    [shape=(...)], or for complex masks the real and imaginary parts [shape=(..., 2)]."""
    if mask_domain == COMPLEX:
        return torch.view_as_real(spectra.resolve_conj()).contiguous()
    return spectra.abs()


def parts_magnitude(parts: torch.Tensor) -> torch.Tensor:
    """The magnitudes [shape=(...)] of (real, imaginary) pairs [shape=(..., 2)]: what a network
    with complex masks reads as its magnitudes."""
    return parts.square().sum(dim=-1).sqrt()


def mask_values(masks: torch.Tensor, mask_domain: str) -> torch.Tensor:
    """A network's masks as what multiplies the spectra: real masks as they are, (real,
    imaginary) pairs [shape=(..., 2)] as a complex tensor [shape=(...)]."""
    if mask_domain == COMPLEX:
        return torch.view_as_complex(masks.contiguous())
    return masks


def wiener_postfilter(mix: torch.Tensor, masks: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """A multichannel Wiener filter built from the current frame's estimates only.

    The masked mixture gives each stem a first estimate ``y_j = m_j * x`` per bin; its outer
    product ``y_j y_j^H`` stands for the stem's spatial covariance (one frame: no look-ahead,
    no history), and each stem becomes ``y_j y_j^H (sum_k y_k y_k^H + eps I)^-1 x``. In mono
    this is the power-ratio mask ``|y_j|^2 / sum_k |y_k|^2``, sharper than the amplitude mask;
    in stereo it also uses the stems' inter-channel phase and level.

    Args:
        mix: [shape=(batch, n_frames, n_channels, n_bins), complex]
        masks: [shape=(batch, n_frames, n_stems, n_channels, n_bins), real or complex]

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
