"""Mask activations and the single-frame Wiener post-filter."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from livestems.models.layers.masks import activate_masks, wiener_postfilter  # noqa: E402


@pytest.mark.parametrize("kind", ["softmax", "ratio"])
def test_normalised_masks_sum_to_one_across_stems(kind: str) -> None:
    logits = torch.randn(2, 5, 4, 2, 33) * 5
    masks = activate_masks(logits, kind, stem_dim=2)
    torch.testing.assert_close(masks.sum(dim=2), torch.ones(2, 5, 2, 33), atol=1e-6, rtol=0)
    assert masks.min() >= 0 and masks.max() <= 1


def test_sigmoid_masks_are_independent_per_stem() -> None:
    logits = torch.randn(1, 3, 4, 2, 9)
    masks = activate_masks(logits, "sigmoid", stem_dim=2)
    logits[:, :, 0] += 100
    again = activate_masks(logits, "sigmoid", stem_dim=2)
    torch.testing.assert_close(again[:, :, 1:], masks[:, :, 1:])


def _spectra(n_channels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (1, 6, n_channels, 17)
    mix = torch.complex(torch.randn(shape, generator=generator, dtype=torch.float64),
                        torch.randn(shape, generator=generator, dtype=torch.float64))  # fmt: skip
    logits = torch.randn(1, 6, 3, n_channels, 17, generator=generator, dtype=torch.float64)
    return mix, activate_masks(logits, "softmax", stem_dim=2)


def test_mono_post_filter_is_the_power_ratio_mask() -> None:
    mix, masks = _spectra(1, seed=1)
    filtered = wiener_postfilter(mix, masks, eps=0.0)
    power = (masks * mix.abs().unsqueeze(2)) ** 2
    expected = power / power.sum(dim=2, keepdim=True) * mix.unsqueeze(2)
    torch.testing.assert_close(filtered, expected)


def test_stereo_post_filter_keeps_the_sum_and_is_frame_local() -> None:
    mix, masks = _spectra(2, seed=2)
    filtered = wiener_postfilter(mix, masks, eps=1e-12)
    # The filtered stems still add up to the mix (eps aside).
    torch.testing.assert_close(filtered.sum(dim=2), mix, atol=1e-6, rtol=0)
    # Each frame is filtered from that frame alone: changing a later frame changes nothing before.
    later = mix.clone()
    later[:, 4:] *= 3
    again = wiener_postfilter(later, masks, eps=1e-12)
    assert torch.equal(again[:, :4], filtered[:, :4])


def test_post_filter_gives_a_whole_bin_to_the_only_stem_in_it() -> None:
    mix, masks = _spectra(2, seed=3)
    masks[..., 5] = 0.0
    masks[:, :, 1, :, 5] = 1.0  # bin 5 belongs to stem 1 alone, in both channels
    filtered = wiener_postfilter(mix, masks, eps=1e-12)
    torch.testing.assert_close(filtered[:, :, 1, :, 5], mix[..., 5])
    assert filtered[:, :, [0, 2], :, 5].abs().max() < 1e-9


def test_stereo_with_equal_channels_reduces_to_the_power_ratio_mask() -> None:
    mono_mix, mono_masks = _spectra(1, seed=4)
    filtered = wiener_postfilter(
        mono_mix.expand(-1, -1, 2, -1), mono_masks.expand(-1, -1, -1, 2, -1)
    )
    expected = wiener_postfilter(mono_mix, mono_masks)
    torch.testing.assert_close(filtered, expected.expand(-1, -1, -1, 2, -1), atol=1e-6, rtol=1e-6)
