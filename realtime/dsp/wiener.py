"""The single-frame multichannel Wiener post-filter, in numpy: the twin of
``models/layers/masks.py``'s ``wiener_postfilter``, for the stream processor.

Thread contract: pure functions. The stream processor calls ``wiener_postfilter`` on its own
thread (the engine's worker, or whoever renders offline), once per hop when the post-filter is
on; it allocates working memory per call (like numpy's FFTs on that thread), which is why the
audio callback never reaches it.

The masked mixture gives each stem a first estimate ``y_j = m_j * x`` per bin; its outer product
``y_j y_j^H`` stands for the stem's spatial covariance (one frame: no look-ahead, no history),
and each stem becomes ``y_j y_j^H (sum_k y_k y_k^H + eps I)^-1 x``. In mono this is the
power-ratio mask ``|y_j|^2 / sum_k |y_k|^2``, sharper than the amplitude mask; in stereo it also
uses the stems' inter-channel phase and level. The feature channels are whatever the front end
gives (two for the STFT, ``2 K`` band-major for K subbands), as in the torch twin.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WIENER_EPS", "wiener_from_covariances", "wiener_postfilter"]

#: What keeps a silent bin's covariance invertible (the torch twin's default).
WIENER_EPS = 1e-8


def wiener_postfilter(
    spectrum: np.ndarray, masks: np.ndarray, out: np.ndarray, eps: float = WIENER_EPS
) -> None:
    """Stem spectra from one frame's mixture and masks, into ``out``.

    Args:
        spectrum: [shape=(n_channels, n_bins), complex64], one frame of the mixture.
        masks: [shape=(n_stems, n_channels, n_bins), float32]
        out: [shape=(n_stems, n_channels, n_bins), complex64]
    """
    estimates = masks * spectrum[None]  # (stems, channels, bins)
    y = estimates.transpose(0, 2, 1)  # (stems, bins, channels)
    covariance = y[..., :, None] * y.conj()[..., None, :]  # (stems, bins, ch, ch)
    out[...] = wiener_from_covariances(covariance, spectrum.T, eps).transpose(0, 2, 1)


def wiener_from_covariances(covariance: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """Each stem's multichannel Wiener estimate from the stems' covariances, one frame:
    ``R_j (sum_k R_k + eps I)^-1 x``, whatever ``R_j`` stands for (one frame's outer product
    here, an average over the past in ``models/evaluation/blend.py``'s ``spatial_wiener``).

    Args:
        covariance: [shape=(n_stems, n_bins, n_channels, n_channels), complex]
        x: [shape=(n_bins, n_channels), complex], the mixture's frame.

    Returns:
        [shape=(n_stems, n_bins, n_channels)]
    """
    n_channels = x.shape[-1]
    mix_covariance = covariance.sum(axis=0) + eps * np.eye(n_channels, dtype=covariance.dtype)
    whitened = np.linalg.solve(mix_covariance, x[..., None])  # C_xx^-1 x, once for all stems
    return (covariance @ whitened[None])[..., 0]
