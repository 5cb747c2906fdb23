"""The ``bsrnn`` family, and complex masks in every family, against the contract every family
keeps (``tests/models/test_families.py`` states it for the others): causal bit for bit in
float64, streaming equal to the sequence, named state, normalised masks summing to the mix,
strict configurations and checkpoints. Then what is the band split's own: its bands, its cost."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.bsrnn import (  # noqa: E402
    BAND_LAYOUTS,
    BsrnnConfig,
    BsrnnMaskNet,
    band_groups,
)
from livestems.models.families.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from livestems.models.families.config import ConfigError, SeparatorConfig  # noqa: E402
from livestems.models.families.cost import flops_per_hop  # noqa: E402
from livestems.models.families.registry import available_families, get_family  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.dsp.presets import PRESETS  # noqa: E402
from tests.helpers.band_split_configs import (  # noqa: E402
    band_split_and_complex_configs,
    bsrnn_configs,
    config_name,
)
from tests.helpers.networks import assert_causal, music_like_tensor, randomized  # noqa: E402

CONFIGS = band_split_and_complex_configs()


def random_model(config: SeparatorConfig, seed: int = 0) -> SeparatorNet:
    """``randomized``, and every weight moved a little: a complex mask's imaginary head starts at
    zero (training starts from the magnitude mask), which would leave it untested."""
    model = randomized(config, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.net.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(0.1 * noise)
    return model


def signal(config: SeparatorConfig, n_samples: int, seed: int, dtype=torch.float32):
    """[shape=(1, n_channels, n_samples)]"""
    return music_like_tensor(n_samples, seed, dtype)[:, : config.n_channels].contiguous()


def random_features(model: SeparatorNet, n_frames: int, generator) -> torch.Tensor:
    """What the network reads, for a batch of one: magnitudes, or real and imaginary parts."""
    x = torch.randn((1, n_frames, *model.frame_shape), generator=generator) * 3
    return x if model.config.mask_domain == "complex" else x.abs()


@pytest.mark.parametrize("config", CONFIGS, ids=config_name)
def test_causal_bit_for_bit_in_float64(config: SeparatorConfig) -> None:
    model = random_model(config).double()
    preset = config.spectral_preset
    n_samples = 6 * preset.n_fft + model.latency_samples
    cut = 3 * preset.n_fft + 37  # off the hop grid
    x = signal(config, n_samples, seed=1, dtype=torch.float64)
    assert_causal(model, x, cut)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=config_name)
def test_streaming_equals_sequence_and_after_reset(config: SeparatorConfig) -> None:
    model = random_model(config)
    net = model.net
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _ in range(2):  # a second stream from the initial state: reset() between them
            frames = random_features(model, 9, generator)
            whole = net(frames, *net.initial_state(1))
            state = net.initial_state(1)
            stepped = []
            for index in range(frames.shape[1]):
                masks, *state = net(frames[:, index : index + 1], *state)
                stepped.append(masks)
            torch.testing.assert_close(torch.cat(stepped, dim=1), whole[0], atol=1e-5, rtol=0)
            # The final state of both paths agrees too: the next hop would continue the same.
            for streamed, sequenced in zip(state, whole[1:], strict=True):
                torch.testing.assert_close(streamed, sequenced, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=config_name)
def test_a_batch_is_its_items_run_apart(config: SeparatorConfig) -> None:
    # The bands run as the time LSTM's batch and the frames as the band LSTM's: the reshapes
    # between the two must keep every item's bands and frames its own.
    model = random_model(config)
    net = model.net
    generator = torch.Generator().manual_seed(3)
    items = [random_features(model, 4, generator) for _ in range(3)]
    with torch.no_grad():
        together = net(torch.cat(items), *net.initial_state(3))
        for index, item in enumerate(items):
            alone = net(item, *net.initial_state(1))
            torch.testing.assert_close(together[0][index], alone[0][0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=config_name)
def test_state_spec_names_the_real_state(config: SeparatorConfig) -> None:
    model = random_model(config)
    net = model.net
    specs = net.state_spec()
    assert len({spec.name for spec in specs}) == len(specs)
    frames = torch.rand(3, 2, *model.frame_shape)
    with torch.no_grad():
        _, *new_state = net(frames, *net.initial_state(3))
    assert [tuple(s.shape) for s in new_state] == [
        tuple(3 if axis == spec.batch_axis else size for axis, size in enumerate(spec.shape))
        for spec in specs
    ]


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.mask != "sigmoid"], ids=config_name)
def test_normalised_masks_make_stems_sum_to_the_mix(config: SeparatorConfig) -> None:
    model = random_model(config)
    x = signal(config, 4 * config.spectral_preset.n_fft, seed=3)
    with torch.no_grad():
        stems = model(x)
        spectra = model.front_end.analyze(x)
        masks = model.masks(spectra)
        mix_through_the_path = model.front_end.synthesize(spectra.unsqueeze(2), x.shape[-1])[:, 0]
    assert masks.is_complex() == (config.mask_domain == "complex")
    one = torch.ones((), dtype=masks.dtype)
    torch.testing.assert_close(masks.sum(dim=2), one.expand_as(masks.sum(dim=2)), atol=1e-6, rtol=0)
    torch.testing.assert_close(stems.sum(dim=1), mix_through_the_path, atol=1e-5, rtol=0)


def test_the_registry_knows_bsrnn_and_its_sizes() -> None:
    assert "bsrnn" in available_families()
    family = get_family("bsrnn")
    assert {"small", "medium", "default"} <= set(family.sizes)
    for size in family.sizes:
        assert isinstance(SeparatorNet(family.config(size)).net, BsrnnMaskNet)
    assert family.config("medium") == family.config("default")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("layout", BAND_LAYOUTS)
def test_bands_cover_every_bin_once_narrow_below_and_wide_above(preset: str, layout: str) -> None:
    spectral = PRESETS[preset]
    groups = band_groups(spectral, layout)
    edges = [group.start for group in groups] + [groups[-1].stop]
    assert edges[0] == 0 and edges[-1] == spectral.n_bins
    assert all(a.stop == b.start for a, b in zip(groups, groups[1:], strict=False))
    widths = [group.width for group in groups]
    # Every layout widens upwards; the last band (the rest, up to Nyquist) may be any width.
    assert widths[:-1] == sorted(widths[:-1]) and widths[0] < widths[-2]
    assert min(widths) >= 2
    assert 15 <= sum(group.n_bands for group in groups) <= 45


def test_the_fine_layout_at_live() -> None:
    groups = band_groups(PRESETS["live"], "fine")
    assert [(g.n_bands, g.width) for g in groups] == [
        (9, 5),  # 108 Hz bands up to 970 Hz
        (12, 12),
        (8, 23),
        (8, 46),
        (2, 93),
        (1, 98),  # the rest, to Nyquist
    ]


def test_cost_counts_every_band_of_every_layer() -> None:
    """``cost.py``'s MFLOPs per hop: the time LSTM steps once per band, the band LSTM once per
    band in each direction, and the per-band layers say their own cost."""
    config = BsrnnConfig(width=8, n_blocks=2, bands="coarse", mask_domain="complex")
    model = SeparatorNet(config)
    groups = config.band_groups
    n_bands, width, half = config.n_bands, config.width, config.width // 2
    n_parts, n_stems, n_channels = 2, len(config.stems), config.n_channels
    split = sum(2 * (g.width * n_channels * n_parts + 1) * width * g.n_bands for g in groups)
    time_lstm = 2 * 4 * width * (width + width) * n_bands
    band_lstm = 2 * (2 * 4 * half * (width + half)) * n_bands
    linears = 2 * (2 * width * width * n_bands)
    head = 2 * width * width * n_bands
    head += 2 * width * n_parts * n_stems * n_channels * config.spectral_preset.n_bins
    expected = split + config.n_blocks * (time_lstm + band_lstm + linears) + head
    assert flops_per_hop(model) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bands": "octaves"}, r"Unknown band layout 'octaves': choose one of coarse, fine\."),
        ({"width": 7}, r"width must be even and at least 2, got 7\."),
        ({"n_blocks": 0}, r"n_blocks must be at least 1, got 0\."),
        (
            {"mask_domain": "phase"},
            r"Unknown mask_domain 'phase': choose one of magnitude, complex",
        ),
    ],
)
def test_bad_configuration_fails_in_one_sentence(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        BsrnnConfig(**fields)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


@pytest.mark.parametrize("config", bsrnn_configs()[2:4], ids=config_name)
def test_checkpoint_rebuilds_the_model_from_the_file_alone(config, tmp_path) -> None:
    model = random_model(config, seed=5)
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, model, step=3)
    loaded, _ = load_checkpoint(path)
    assert loaded.config == config
    x = signal(config, 3 * config.spectral_preset.n_fft, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_config_round_trips_through_a_dict() -> None:
    for config in CONFIGS:
        again = type(config).from_dict(config.to_dict())
        assert again == config and dataclasses.asdict(again) == dataclasses.asdict(config)


def test_a_configuration_from_before_complex_masks_has_magnitude_masks() -> None:
    values = BsrnnConfig().to_dict()
    del values["mask_domain"]
    assert BsrnnConfig.from_dict(values).mask_domain == "magnitude"
