"""The ``ensemble`` family (trained mask networks in one graph, their masks averaged). The
contract every family keeps (causality, streaming, batches, named state, stems that sum to the
mix, onnxruntime, the processor at any blocking) runs on two ensembles in
``tests/helpers/band_split_configs.py``'s set; here is what is its own: its stems are the mean
of its members' stems, it is assembled from checkpoints with their weights, and what cannot be
averaged is refused in one sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from livestems.models.families.config import ConfigError  # noqa: E402
from livestems.models.families.cws import CwsConfig  # noqa: E402
from livestems.models.families.ensemble import (  # noqa: E402
    EnsembleConfig,
    ensemble_config,
    ensemble_from_checkpoints,
)
from livestems.models.families.ensemble import main as ensemble_main  # noqa: E402
from livestems.models.families.hybrid import HybridConfig  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.models.families.registry import config_from_dict, get_family  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402

CWS = {"preset": "live", "n_bands": 2, "depth": 1, "mask_domain": "complex"}
MEMBERS = [
    CwsConfig(channels=4, stereo_features=True, **CWS),
    CwsConfig(channels=3, lstm_hidden=4, **CWS),
    CwsConfig(channels=2, **CWS),
]


def _members() -> list[SeparatorNet]:
    return [randomized(config, seed=index) for index, config in enumerate(MEMBERS)]


def _checkpoints(folder: Path) -> list[str]:
    paths = []
    for index, member in enumerate(_members()):
        path = folder / f"member{index}.pt"
        save_checkpoint(path, member, epoch=index)
        paths.append(str(path))
    return paths


def test_its_stems_are_the_mean_of_its_members_stems(tmp_path: Path) -> None:
    members = _members()
    ensemble = ensemble_from_checkpoints(_checkpoints(tmp_path))
    waveform = music_like_tensor(20000, seed=3)
    with torch.no_grad():
        expected = torch.stack([member(waveform) for member in members]).mean(0)
        stems = ensemble(waveform)
    torch.testing.assert_close(stems, expected, rtol=1e-5, atol=1e-6)
    # the members keep their weights, in order, and their own state tensors
    assert [spec.name for spec in ensemble.net.state_spec()][:2] == [
        "m0_conv0_past",
        "m0_conv1_past",
    ]
    assert "m1_lstm_h" in {spec.name for spec in ensemble.net.state_spec()}


def test_weighted_its_stems_are_the_weighted_mean_and_still_add_up_to_the_mix(
    tmp_path: Path,
) -> None:
    members = _members()
    ensemble = ensemble_from_checkpoints(_checkpoints(tmp_path), weights=(1, 0, 3))
    waveform = music_like_tensor(20000, seed=3)
    with torch.no_grad():
        expected = 0.25 * members[0](waveform) + 0.75 * members[2](waveform)
        stems = ensemble(waveform)
    torch.testing.assert_close(stems, expected, rtol=1e-5, atol=1e-6)
    # One weight per member, the same for every stem: softmax masks still sum to one, so the
    # stems add up to the mix, delayed by the latency (its first frames aside, where the
    # stream has not yet filled an analysis window), within the two-band PQMF's
    # reconstruction error (4e-4 here, for each member alone too).
    latency = ensemble.latency_samples
    settled = ensemble.config.spectral_preset.n_fft
    torch.testing.assert_close(
        stems.sum(dim=1)[..., settled:],
        waveform[..., settled - latency : stems.shape[-1] - latency],
        rtol=0,
        atol=1e-3,
    )


def test_the_command_writes_a_checkpoint_that_loads_and_names_its_members(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _checkpoints(tmp_path)
    out = tmp_path / "ensemble.pt"
    assert ensemble_main([*paths, "-o", str(out)]) == 0
    assert "the mean of 3 models' masks (cws, cws, cws)" in capsys.readouterr().out
    model, extra = load_checkpoint(out)
    assert extra["members"] == paths
    assert isinstance(model.config, EnsembleConfig)
    # the configuration alone rebuilds the members (as an exported file's metadata must)
    assert config_from_dict(json.loads(json.dumps(model.config.to_dict()))) == model.config
    reference = ensemble_from_checkpoints(paths)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)


def test_the_command_keeps_the_weights_in_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _checkpoints(tmp_path)
    out = tmp_path / "ensemble.pt"
    assert ensemble_main([*paths, "-o", str(out), "--weights", "1", "2", "1"]) == 0
    assert "masks, weighted 1 : 2 : 1 (cws, cws, cws)" in capsys.readouterr().out
    model, _ = load_checkpoint(out)
    assert isinstance(model.config, EnsembleConfig)
    assert model.config.weights == (1.0, 2.0, 1.0)
    assert config_from_dict(json.loads(json.dumps(model.config.to_dict()))) == model.config


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (["1", "2"], "The ensemble has 3 members and 2 weights: give one weight per member."),
        (["1", "-1", "1"], r"The ensemble's weights \[1.0, -1.0, 1.0\] must be finite"),
        (["1", "inf", "1"], "must be finite and not negative"),
        (["0", "0", "0"], "The ensemble's weights are all zero"),
    ],
)
def test_the_command_refuses_weights_that_do_not_fit_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], weights: list[str], message: str
) -> None:
    paths = _checkpoints(tmp_path)
    assert ensemble_main([*paths, "-o", str(tmp_path / "out.pt"), "--weights", *weights]) == 1
    error = capsys.readouterr().err.strip()
    assert re.search(message, error) and "\n" not in error, error
    assert not (tmp_path / "out.pt").exists()


def test_the_command_names_a_checkpoint_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _checkpoints(tmp_path)[:1] + [str(tmp_path / "missing.pt")]
    assert ensemble_main([*paths, "-o", str(tmp_path / "out.pt")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("livestems ensemble: Cannot load checkpoint")
    assert "missing.pt" in error and "no such file" in error and "\n" not in error
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([MEMBERS[0]], "two or more member models"),
        (
            [MEMBERS[0], CwsConfig(channels=2, **{**CWS, "n_bands": 4})],
            "read different front ends",
        ),
        (
            [MEMBERS[0], CwsConfig(channels=2, **{**CWS, "mask_domain": "magnitude"})],
            "Member 1 has mask_domain 'magnitude' where the ensemble has 'complex'",
        ),
        (
            [LstmConfig(preset="live", hidden_size=8), CwsConfig(preset="live", channels=2)],
            "read different front ends",
        ),
        (
            [
                HybridConfig(preset="live", hidden_size=8),
                LstmConfig(preset="live", hidden_size=8, mask_domain="complex"),
            ],
            "Member 0 is a hybrid model",
        ),
    ],
)
def test_what_cannot_be_averaged_is_refused_in_one_sentence(members, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        ensemble_config(members)
    assert "\n" not in str(raised.value)


def test_an_ensemble_of_ensembles_is_refused() -> None:
    inner = ensemble_config(MEMBERS[:2])
    with pytest.raises(ConfigError, match="Member 0 is itself an ensemble"):
        EnsembleConfig(
            preset="live",
            mask_domain="complex",
            members=(inner.to_dict(), MEMBERS[2].to_dict()),
        )


def test_the_default_is_two_small_cws_members_at_the_preset() -> None:
    config = get_family("ensemble").config(preset="ultra", mask_domain="complex")
    members = [config_from_dict(member) for member in config.members]
    assert [member.family for member in members] == ["cws", "cws"]
    assert {member.preset for member in members} == {"ultra"}
    assert {member.mask_domain for member in members} == {"complex"}
    net = SeparatorNet(config)
    single = SeparatorNet(members[0])
    count = sum(parameter.numel() for parameter in net.parameters())
    assert count == 2 * sum(parameter.numel() for parameter in single.parameters())
