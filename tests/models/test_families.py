"""The model families: causal, streaming equal to sequence, normalised masks, strict
configurations and checkpoints."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from livestems.models.families.config import ConfigError, SeparatorConfig  # noqa: E402
from livestems.models.families.cws import CwsConfig  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.models.families.registry import available_families, get_family  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.dsp.presets import PRESETS  # noqa: E402
from tests.helpers.networks import (  # noqa: E402
    assert_causal,
    config_id,
    music_like_tensor,
    randomized,
    small_configs,
)

PRESET_NAMES = list(PRESETS)


@pytest.mark.slow
@pytest.mark.parametrize("config", small_configs(), ids=config_id)
def test_causal_bit_for_bit_in_float64(config: SeparatorConfig) -> None:
    model = randomized(config).double()
    preset = config.spectral_preset
    n_samples = 6 * preset.n_fft + model.latency_samples
    cut = 3 * preset.n_fft + 37  # off the hop grid
    x = music_like_tensor(n_samples, seed=1, dtype=torch.float64)
    assert_causal(model, x, cut)


@pytest.mark.slow
@pytest.mark.parametrize("config", small_configs(), ids=config_id)
def test_streaming_equals_sequence_and_after_reset(config: SeparatorConfig) -> None:
    model = randomized(config)
    net = model.net
    generator = torch.Generator().manual_seed(2)
    shape = (1, 9, model.front_end.n_feature_channels, model.front_end.n_bins)

    def features() -> torch.Tensor:
        return torch.randn(shape, generator=generator).abs() * 3

    with torch.no_grad():
        first, second = features(), features()
        whole_first = net(first, *net.initial_state(1))
        whole_second = net(second, *net.initial_state(1))
        state = net.initial_state(1)
        for frames, whole in ((first, whole_first), (second, whole_second)):
            stepped = []
            for index in range(frames.shape[1]):
                masks, *state = net(frames[:, index : index + 1], *state)
                stepped.append(masks)
            torch.testing.assert_close(torch.cat(stepped, dim=1), whole[0], atol=1e-5, rtol=0)
            # The final state of both paths agrees too: the next hop would continue the same.
            for streamed, sequenced in zip(state, whole[1:], strict=True):
                torch.testing.assert_close(streamed, sequenced, atol=1e-5, rtol=0)
            state = net.initial_state(1)  # reset() before the second stream


@pytest.mark.parametrize("config", small_configs(), ids=config_id)
def test_state_spec_names_the_real_state(config: SeparatorConfig) -> None:
    model = randomized(config)
    net = model.net
    specs = net.state_spec()
    assert len({spec.name for spec in specs}) == len(specs)
    frames = torch.rand(3, 2, model.front_end.n_feature_channels, model.front_end.n_bins)
    with torch.no_grad():
        _, *new_state = net(frames, *net.initial_state(3))
    assert [tuple(s.shape) for s in new_state] == [
        tuple(3 if axis == spec.batch_axis else size for axis, size in enumerate(spec.shape))
        for spec in specs
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [c for c in small_configs() if c.mask != "sigmoid"],
    ids=config_id,
)
def test_normalised_masks_make_stems_sum_to_the_mix(config: SeparatorConfig) -> None:
    model = randomized(config)
    x = music_like_tensor(4 * config.spectral_preset.n_fft, seed=3)
    with torch.no_grad():
        stems = model(x)
        spectra = model.front_end.analyze(x)
        mix_through_the_path = model.front_end.synthesize(spectra.unsqueeze(2), x.shape[-1])[:, 0]
    torch.testing.assert_close(stems.sum(dim=1), mix_through_the_path, atol=1e-5, rtol=0)


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("family", ["lstm", "cws"])
def test_front_end_latency_is_measured_with_an_impulse(family: str, preset: str) -> None:
    config = get_family(family).config_class(preset=preset)
    front_end = SeparatorNet(config).front_end.double()
    n_samples = 4 * PRESETS[preset].n_fft
    impulse = torch.zeros(1, 2, n_samples, dtype=torch.float64)
    impulse[..., 1001] = 1.0
    out = front_end.synthesize(front_end.analyze(impulse).unsqueeze(2), n_samples)[0, 0, 0]
    assert int(out.abs().argmax()) - 1001 == front_end.latency_samples
    assert abs(float(out.abs().max()) - 1.0) < 2e-3


def test_the_registry_knows_both_families() -> None:
    assert {"lstm", "cws"} <= set(available_families())
    with pytest.raises(ConfigError, match=r"Unknown model family 'tcn'.*cws, (\w+, )*lstm"):
        get_family("tcn")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LstmConfig(bandwidth_hz=30000), r"at most the Nyquist frequency \(22050 Hz\)"),
        (lambda: CwsConfig(n_bands=3), r"n_bands must be a power of two among \(2, 4, 8\), got 3"),
        (lambda: CwsConfig(n_bands=16), r"got 16"),
        (lambda: LstmConfig(preset="stdio"), r"Unknown preset 'stdio'"),
        (lambda: LstmConfig(mask="relu"), r"Unknown mask 'relu'"),
        (lambda: CwsConfig(kernel_freq=4), r"kernel_freq odd"),
        (lambda: LstmConfig(stems=("vocals",)), r"needs at least two"),
    ],
)
def test_bad_configuration_fails_in_one_sentence(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build()
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_hop_must_be_a_multiple_of_the_bands() -> None:
    with pytest.raises(ValueError, match=r"hop of preset 'live' \(256 samples\) is not a multiple"):
        PRESETS["live"].subband(3)


@pytest.mark.slow
@pytest.mark.parametrize("config", small_configs()[:2], ids=config_id)
def test_checkpoint_rebuilds_the_model_from_the_file_alone(config, tmp_path) -> None:
    model = randomized(config, seed=5)
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, model, step=12)
    loaded, extra = load_checkpoint(path)
    assert extra == {"step": 12}
    assert loaded.config == config
    x = music_like_tensor(3 * config.spectral_preset.n_fft, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_checkpoint_problems_end_in_one_sentence(tmp_path) -> None:
    model = randomized(small_configs()[0])
    good = tmp_path / "good.ckpt"
    save_checkpoint(good, model)
    payload = torch.load(good, weights_only=True)

    def write(name: str, content) -> str:
        path = tmp_path / name
        torch.save(content, path)
        return str(path)

    missing_weight = {**payload, "state_dict": dict(list(payload["state_dict"].items())[1:])}
    wider = {**payload, "config": {**payload["config"], "hidden_size": 48}}
    newer = {**payload, "livestems_checkpoint": 99}
    unknown_field = {**payload, "config": {**payload["config"], "heads": 4}}
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    cases = {
        write("missing.ckpt", missing_weight): "do not fit its configuration",
        write("wider.ckpt", wider): "do not fit its configuration",
        write("newer.ckpt", newer): "newer than this livestems reads",
        write("unknown.ckpt", unknown_field): "unknown fields",
        write("plain.ckpt", {"weights": 1}): "not a livestems checkpoint",
        str(text): "not a readable torch checkpoint",
        str(tmp_path / "absent.ckpt"): "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as caught:
            load_checkpoint(path)
        assert path in str(caught.value)


def test_config_round_trips_through_a_dict() -> None:
    for config in small_configs():
        again = type(config).from_dict(config.to_dict())
        assert again == config and dataclasses.asdict(again) == dataclasses.asdict(config)
