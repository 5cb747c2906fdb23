"""The ``hybrid`` family (a spectral mask branch and a causal waveform branch, stems summed)
against the contract every family keeps: causal bit for bit in float64 (at the stream's output,
and frame by frame, which a one-sample leak of the waveform branch fails), streaming equal to
the sequence, named state, stems that sum to the mix; then what is its own: the waveform
recovered from the frame, the waveform branch's latency measured with an impulse, strict
configurations, its cost."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from livestems.models.families.config import ConfigError  # noqa: E402
from livestems.models.families.cost import flops_per_hop  # noqa: E402
from livestems.models.families.hybrid import HybridConfig, HybridNet, waveform_delay  # noqa: E402
from livestems.models.families.registry import (  # noqa: E402
    available_families,
    config_from_dict,
    get_family,
)
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.models.layers.streaming import split_outputs  # noqa: E402
from livestems.realtime.dsp.presets import PRESETS  # noqa: E402
from tests.helpers.networks import assert_causal, music_like_tensor, randomized  # noqa: E402

TINY = {
    "hidden_size": 12,
    "n_layers": 1,
    "bandwidth_hz": 6000,
    "wave_channels": 8,
    "tcn_blocks": 2,
    "wave_hidden": 8,
}
CONFIGS = [
    HybridConfig(preset="live", **TINY),
    HybridConfig(preset="ultra", mask="ratio", wave_window=48, wave_stride=16, **TINY),
    HybridConfig(preset="live", mask="sigmoid", n_channels=1, wave_window=32, **TINY),
    HybridConfig(preset="stage", wave_window=64, wave_stride=32, **TINY),
]


def name(config: HybridConfig) -> str:
    return f"{config.preset}-{config.mask}-{config.n_channels}ch-k{config.wave_window}"


def random_model(config: HybridConfig, seed: int = 0) -> SeparatorNet:
    """``randomized``, every weight moved a little (the imaginary head starts at zero)."""
    model = randomized(config, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.net.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(0.1 * noise)
    return model


def signal(config: HybridConfig, n_samples: int, seed: int, dtype=torch.float32):
    """[shape=(1, n_channels, n_samples)]"""
    return music_like_tensor(n_samples, seed, dtype)[:, : config.n_channels].contiguous()


def features_of(model: SeparatorNet, x: torch.Tensor) -> torch.Tensor:
    return model.features(model.front_end.analyze(x))


def test_registered_with_a_small_size_and_a_round_trip_config() -> None:
    assert "hybrid" in available_families()
    family = get_family("hybrid")
    config = family.config("small")
    assert isinstance(config, HybridConfig) and config.mask_domain == "complex"
    assert config_from_dict(config.to_dict()) == config
    assert isinstance(SeparatorNet(config).net, HybridNet)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mask_domain": "magnitude"}, r"mask_domain must be 'complex'\."),
        ({"preset": "studio"}, r"use the live or ultra preset\."),
        ({"wave_stride": 48}, r"wave_stride must divide the hop \(256\), got 48\."),
        ({"wave_window": 1024}, r"at most the synthesis window \(512\)"),
        ({"wave_window": 512, "wave_stride": 128}, r"at most wave_stride \+ 255, got 512\."),
        ({"tcn_blocks": 0}, r"tcn_blocks must be at least 1, got 0\."),
    ],
)
def test_a_bad_configuration_is_one_sentence(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        HybridConfig(**fields)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("preset", ["live", "ultra"])
def test_the_newest_hop_is_recovered_from_the_frame(preset: str) -> None:
    config = HybridConfig(preset=preset, **TINY)
    model = SeparatorNet(config).double()
    hop = config.spectral_preset.hop
    x = signal(config, 20 * hop + 7, seed=2, dtype=torch.float64)
    recovered = model.net.recover(features_of(model, x))
    assert recovered.shape == (1, 2, 20 * hop)
    torch.testing.assert_close(recovered, x[..., : 20 * hop], atol=1e-9, rtol=0)
    assert waveform_delay(config.spectral_preset) == {"live": 255, "ultra": 127}[preset]


@pytest.mark.parametrize("config", CONFIGS, ids=name)
def test_causal_bit_for_bit_in_float64(config: HybridConfig) -> None:
    model = random_model(config).double()
    preset = config.spectral_preset
    n_samples = 6 * preset.n_fft + model.latency_samples
    cut = 3 * preset.n_fft + 37  # off the hop grid
    x = signal(config, n_samples, seed=1, dtype=torch.float64)
    assert_causal(model, x, cut)


def _frame_outputs(net: HybridNet, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        masks, hops, _ = split_outputs(net, net(features, *net.initial_state(1, features.dtype)))
    assert hops is not None
    return masks, hops


def _frame_causality_holds(model: SeparatorNet, config: HybridConfig) -> bool:
    """Frame t's masks and waveform hops, in float64, unchanged bit for bit when only the
    signal after frame t's newest sample changes."""
    hop = config.spectral_preset.hop
    n_frames, t = 24, 15
    x = signal(config, n_frames * hop, seed=3, dtype=torch.float64)
    perturbed = x.clone()
    perturbed[..., (t + 1) * hop :] += torch.randn(
        perturbed[..., (t + 1) * hop :].shape, dtype=x.dtype
    )
    masks, hops = _frame_outputs(model.net, features_of(model, x))
    masks_p, hops_p = _frame_outputs(model.net, features_of(model, perturbed))
    assert not torch.equal(hops[:, t + 1 :], hops_p[:, t + 1 :])
    return torch.equal(masks[:, : t + 1], masks_p[:, : t + 1]) and torch.equal(
        hops[:, : t + 1], hops_p[:, : t + 1]
    )


@pytest.mark.parametrize("config", CONFIGS, ids=name)
def test_causal_frame_by_frame_bit_for_bit_in_float64(config: HybridConfig) -> None:
    assert _frame_causality_holds(random_model(config).double(), config)


def test_the_frame_test_catches_a_waveform_branch_that_reads_one_sample_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sabotage check: the waveform branch sees one future sample (its input moved one
    sample earlier, so the last sample of each frame's hop is the next frame's first)."""
    config = CONFIGS[0]
    model = random_model(config).double()
    recover = model.net.recover.forward

    def one_ahead(features: torch.Tensor) -> torch.Tensor:
        x = recover(features)
        return torch.cat([x[..., 1:], x[..., -1:]], dim=-1)

    monkeypatch.setattr(model.net.recover, "forward", one_ahead)
    assert not _frame_causality_holds(model, config)


@pytest.mark.parametrize("config", CONFIGS, ids=name)
def test_streaming_equals_sequence_with_named_state(config: HybridConfig) -> None:
    model = random_model(config).double()
    net = model.net
    hop = config.spectral_preset.hop
    features = features_of(model, signal(config, 12 * hop, seed=4, dtype=torch.float64))
    specs = net.state_spec()
    assert len({spec.name for spec in specs}) == len(specs)
    assert {"lstm_h", "wave_h", "tcn_0"} <= {spec.name for spec in specs}
    # The decoder's unfinished overlap, where its window is longer than its stride.
    overlap = config.wave_window - config.wave_stride
    assert ("wave_tail" in {spec.name for spec in specs}) == (overlap > 0)
    whole = _frame_outputs(net, features)
    state = net.initial_state(1, torch.float64)
    stepped_masks, stepped_hops = [], []
    with torch.no_grad():
        for frame in range(features.shape[1]):
            masks, hops, state = split_outputs(net, net(features[:, frame : frame + 1], *state))
            assert [s.shape for s in state] == [spec.shape for spec in specs]
            stepped_masks.append(masks)
            stepped_hops.append(hops)
    torch.testing.assert_close(torch.cat(stepped_masks, 1), whole[0], atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cat(stepped_hops, 1), whole[1], atol=1e-10, rtol=0)
    assert whole[1].shape == (1, 12, hop, len(config.stems), config.n_channels)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.mask != "sigmoid"], ids=name)
def test_the_stems_sum_to_the_mix(config: HybridConfig) -> None:
    model = random_model(config).double()
    n_samples = 8 * config.spectral_preset.n_fft
    x = signal(config, n_samples, seed=5, dtype=torch.float64)
    with torch.no_grad():
        stems = model(x)
    latency = model.latency_samples
    delayed = torch.nn.functional.pad(x, (latency, 0))[..., :n_samples]
    torch.testing.assert_close(stems.sum(dim=1), delayed, atol=1e-9, rtol=0)
    # ...while the waveform branch does move energy between the stems.
    _, hops = _frame_outputs(model.net, features_of(model, x))
    assert float(hops.abs().max()) > 1e-3


def _pass_through(model: SeparatorNet) -> None:
    """The waveform branch as the identity into the first stem: the encoder copies each
    frame's newest stride of samples, the decoder puts them back, TCN and LSTM add zero."""
    net: HybridNet = model.net
    config = model.config
    stride, overlap = config.wave_stride, net.overlap
    with torch.no_grad():
        for parameter in net.parameters():
            if parameter is not None:
                parameter.zero_()
        for channel in range(config.n_channels):
            for i in range(stride):
                filter_ = channel * stride + i
                net.encoder.weight[filter_, channel, overlap + i] = 1.0
                net.decoder.weight[filter_, channel, overlap + i] = 1.0


@pytest.mark.parametrize("preset", ["live", "ultra"])
def test_the_waveform_branch_has_the_latency_of_the_spectral_path(preset: str) -> None:
    config = HybridConfig(
        preset=preset, **{**TINY, "wave_channels": 64}, wave_window=48, wave_stride=32
    )
    model = SeparatorNet(config).double().eval()
    _pass_through(model)
    p = config.spectral_preset
    n_samples = 6 * p.n_fft
    impulse_at = 2 * p.n_fft + 3 * p.hop + 17
    x = torch.zeros(1, 2, n_samples, dtype=torch.float64)
    x[..., impulse_at] = 1.0
    _, hops = _frame_outputs(model.net, features_of(model, x))
    timeline = model.waveform_timeline(hops, n_samples)[0, 0, 0]
    # The decoder's sample for input n + lookahead stands for input n and leaves at n + the
    # spectral path's latency: a pass-through branch, which estimates input n by input n,
    # comes out ``lookahead`` samples early. (A trained branch delays by the look-ahead.)
    lookahead = model.net.lookahead
    assert lookahead == waveform_delay(p) - (config.wave_window - config.wave_stride) > 0
    assert model.latency_samples == p.latency_samples
    assert int(timeline.abs().argmax()) - impulse_at == model.latency_samples - lookahead
    # The identity into the first stem, centred across the four stems.
    assert float(timeline.max()) == pytest.approx(0.75, abs=1e-9)


def test_cost_counts_the_waveform_branch() -> None:
    config = CONFIGS[0]
    model = SeparatorNet(config)
    spectral = SeparatorNet(
        get_family("lstm").config(
            preset="live",
            mask_domain="complex",
            **{k: v for k, v in TINY.items() if k in ("hidden_size", "n_layers", "bandwidth_hz")},
        )
    )
    preset = config.spectral_preset
    n_frames = preset.hop // config.wave_stride
    width, channels, outputs = config.wave_channels, config.n_channels, 4 * config.n_channels
    recovery = 2 * (2 * preset.n_bins) * channels * preset.hop
    encoder = 2 * config.wave_window * channels * width * n_frames
    tcn = config.tcn_blocks * 2 * (config.tcn_kernel * width * width + width * width) * n_frames
    lstm = 2 * 4 * config.wave_hidden * (width + config.wave_hidden) * n_frames
    lstm += 2 * config.wave_hidden * width * n_frames
    decoder = 2 * config.wave_window * outputs * width * n_frames
    waveform = recovery + encoder + tcn + lstm + decoder
    assert flops_per_hop(model) == flops_per_hop(spectral) + waveform


def test_a_checkpoint_round_trips(tmp_path) -> None:
    config = CONFIGS[1]
    model = random_model(config)
    path = tmp_path / "hybrid.pt"
    save_checkpoint(path, model)
    loaded, _ = load_checkpoint(path)
    assert loaded.config == config
    x = signal(config, 4 * config.spectral_preset.n_fft, seed=6)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model(x), atol=0, rtol=0)


def test_every_preset_but_studio_builds() -> None:
    built = []
    for preset in PRESETS:
        try:
            built.append(dataclasses.replace(CONFIGS[0], preset=preset).preset)
        except ConfigError:
            pass
    assert built == ["stage", "live-fine", "live", "ultra"]


def test_the_training_loss_judges_the_stems_with_the_waveform_branch_added() -> None:
    """The masks alone would leave the waveform branch untrained: the loss is taken on the
    stems the stream gives (synthesis plus the branch's hops), so the branch's weights get a
    gradient, and a branch that reproduces the targets' residual lowers the loss."""
    from livestems.models.data.spectral_data import SpectralBatch
    from livestems.models.training.train import TrainConfig, loss_value

    config = CONFIGS[0]
    model = random_model(config, seed=3)
    n_stems = len(config.stems)
    sources = torch.stack([signal(config, 8192, seed=10 + s)[0] * 0.3 for s in range(n_stems)])
    targets = model.front_end.analyze(sources)  # (stems, frames, channels, bins)
    batch = SpectralBatch(targets.sum(dim=0, keepdim=True), targets.unsqueeze(0).transpose(1, 2))
    loss = loss_value(model, batch, TrainConfig(family="hybrid", synthetic_songs=1))
    loss.backward()
    for branch in (model.net.encoder, model.net.decoder, model.net.lstm):
        gradient = sum(float(p.grad.abs().sum()) for p in branch.parameters())
        assert gradient > 0.0, branch
    # the branch is part of what is judged: silencing it changes the loss
    with torch.no_grad():
        model.net.decoder.weight.zero_()
        silenced = loss_value(model, batch, TrainConfig(family="hybrid", synthetic_songs=1))
    assert abs(float(silenced) - float(loss.detach())) > 1e-6
