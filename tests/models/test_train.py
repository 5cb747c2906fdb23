"""livestems train: tiny real runs on synthetic songs, folders of stems and MUSDB18; exact
resume after a kill; data-parallel training with torchrun; configuration errors."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.data.datasets import MUSDB_VALID_TRACKS, STEMS, Track  # noqa: E402
from livestems.models.data.training_data import ExcerptSampler, SamplingConfig  # noqa: E402
from livestems.models.families.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from livestems.models.families.config import ConfigError  # noqa: E402
from livestems.models.families.from_onnx import separator_from_onnx  # noqa: E402
from livestems.models.families.registry import get_family  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.models.training.train import (  # noqa: E402
    TrainConfig,
    WeightAverage,
    build_model,
    fit_input_statistics,
    lending,
    load_initial_weights,
    load_training_data,
    make_scheduler,
    train,
    validation_sdr,
    waveform_sdr_loss,
)
from livestems.realtime.commands.cli import main as livestems  # noqa: E402
from livestems.realtime.errors import UserError  # noqa: E402
from tests.helpers.songs import tonal_song, write_song_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = {"hidden_size": 24, "n_layers": 1}


def tiny_config(**fields) -> TrainConfig:
    values = dict(
        family="lstm",
        size="small",
        preset="ultra",
        model=TINY_MODEL,
        sampling=SamplingConfig(excerpt_s=0.4),
        batch_size=3,
        batches_per_epoch=4,
        epochs=2,
        lr=3e-3,
        checkpoint_every=1,
        threads=1,
        device="cpu",
    )
    values.update(fields)
    return TrainConfig(**values)


@pytest.fixture
def song_folder(tmp_path: Path) -> Path:
    root = tmp_path / "songs"
    for index in range(4):
        write_song_folder(root, tonal_song(f"song{index}", index), with_mixture=False)
    return root


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_run_writes_its_files_and_the_validation_loss_goes_down(
    song_folder: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    config = tiny_config(folders=(str(song_folder),), epochs=4, batches_per_epoch=6)
    state = train(config, run, show_progress=False)
    assert state.epoch == 4
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt",
        "config.json",
        "last.pt",
        "log.jsonl",
    ]
    log = read_log(run)
    assert [record["epoch"] for record in log] == [0, 1, 2, 3]
    assert log[-1]["valid_loss"] < log[0]["valid_loss"]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert TrainConfig.from_file(run / "config.json") == config
    model, extra = load_checkpoint(run / "best.pt")
    assert extra["valid_loss"] == min(record["valid_loss"] for record in log)
    assert model.config.family == "lstm" and model.config.preset == "ultra"


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[0].state_dict()


# Every augmentation, the weight average, the cosine schedule and the extra losses: all of it
# must resume exactly.
EVERYTHING_ON = dict(
    sampling=SamplingConfig(
        excerpt_s=0.4,
        pitch_semitones=2.0,
        tempo_change=0.05,
        eq_probability=0.5,
        width_range=(0.5, 1.5),
        limiter_probability=0.5,
    ),
    ema_decay=0.99,
    lr_schedule="cosine",
    warmup_batches=3,
    complex_weight=0.5,
    mrstft_weight=0.1,
    sdr_weight=0.05,
)


@pytest.mark.slow
@pytest.mark.parametrize("extras", [{}, EVERYTHING_ON], ids=["plain", "everything-on"])
def test_a_run_killed_mid_epoch_and_resumed_ends_with_the_weights_of_an_unbroken_run(
    song_folder: Path, tmp_path: Path, extras: dict
) -> None:
    # eight batches an epoch: the kill lands mid-epoch even when a loaded machine lets the
    # run go several batches past the moment the test first sees batch 2
    config = tiny_config(folders=(str(song_folder),), epochs=2, batches_per_epoch=8, **extras)
    unbroken = tmp_path / "unbroken"
    train(config, unbroken, show_progress=False)

    # the same run in its own process, killed (SIGKILL: no clean-up at all) mid-epoch 1
    broken = tmp_path / "broken"
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.to_dict()))
    command = [
        sys.executable,
        "-m",
        "livestems.models.training.command",
        "--config",
        str(config_file),
    ]
    process = subprocess.Popen([*command, "--out", str(broken), "--no-progress"])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (broken / "last.pt").exists():
                loop = load_checkpoint(broken / "last.pt")[1]["loop"]
                if loop["epoch"] == 1 and loop["batch"] >= 2:
                    break
            if process.poll() is not None:
                pytest.fail("the run ended before it could be killed mid-epoch")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    killed_at = load_checkpoint(broken / "last.pt")[1]["loop"]
    assert killed_at["epoch"] == 1 and 0 < killed_at["batch"] < 8

    assert livestems(["train", "--out", str(broken), "--resume", "--no-progress"]) == 0
    for name in ("last.pt", "best.pt"):
        expected, resumed = weights(unbroken / name), weights(broken / name)
        assert expected.keys() == resumed.keys()
        for key in expected:
            assert torch.equal(expected[key], resumed[key]), f"{name}: {key} differs"
    assert [r["valid_loss"] for r in read_log(broken)] == [
        r["valid_loss"] for r in read_log(unbroken)
    ]


def test_resume_and_run_folder_mistakes_end_in_one_sentence(
    song_folder: Path, tmp_path: Path
) -> None:
    config = tiny_config(folders=(str(song_folder),), epochs=1, batches_per_epoch=1)
    with pytest.raises(UserError, match="Nothing to resume in .*: it has no last.pt"):
        train(config, tmp_path / "empty", resume=True)
    train(config, tmp_path / "run", show_progress=False)
    with pytest.raises(UserError, match="already holds a run .*pass --resume"):
        train(config, tmp_path / "run")
    changed = tiny_config(folders=(str(song_folder),), epochs=1, batches_per_epoch=1, lr=1.0)
    with pytest.raises(UserError, match="--resume continues the run .* with its own config.json"):
        train(changed, tmp_path / "run", resume=True)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"synthetic_songs": 1, "learning_rate": 1}, r"Unknown training setting\(s\): learning_"),
        (
            {},
            r"No training data: give --musdb PATH, --folder PATH, --synthetic N or "
            r"--midi-songs N\.",
        ),
        ({"synthetic_songs": 1, "loss": "sdr"}, r"Unknown loss 'sdr': choose one of l1, mse\."),
        ({"synthetic_songs": 1, "batch_size": 0}, r"batch_size must be at least 1, got 0\."),
        ({"synthetic_songs": 1, "sampling": {"crop": 1}}, r"Unknown sampling setting\(s\): crop"),
        ({"synthetic_songs": 1, "device": "tpu"}, r"Unknown device 'tpu'"),
        ({"synthetic_songs": 1, "sampling": 5}, r"sampling must be a table of sampling settings"),
        ({"synthetic_songs": 1, "model": {"hiden_size": 8}}, r"has no setting 'hiden_size'"),
        ({"synthetic_songs": 1, "lr": -1}, r"lr must be a number in \[1e-09, 10\], got -1\."),
        ({"synthetic_songs": 1, "sampling": {"excerpt_s": -1}}, r"excerpt_s must be in"),
        ({"synthetic_songs": 1, "sampling": {"width_range": [2, 1]}}, r"width_range must be"),
        ({"synthetic_songs": 1, "ema_decay": 1.5}, r"ema_decay must be a number in"),
        (
            {"synthetic_songs": 1, "ema_decay": 0.99, "ema_ramp": False},
            r"ema_ramp false .* needs ema_decay and init",
        ),
        ({"synthetic_songs": 1, "freeze_norms": True}, r"freeze_norms .* needs init"),
        ({"synthetic_songs": 1, "lr_schedule": "step"}, r"Unknown lr_schedule 'step'"),
        ({"synthetic_songs": 1, "select_by": "sisdr"}, r"Unknown select_by 'sisdr': choose one"),
        (
            {"synthetic_songs": 1, "data_path": "waveform", "sampling": {"eq_probability": 0.5}},
            r"The eq augmentation\(s\) need data_path spectral\.",
        ),
        ({"synthetic_songs": 1, "epochs": 2.5}, r"epochs must be a whole number, got 2\.5\."),
        # found by the fuzz test: a number where a list of folders goes
        ({"synthetic_songs": 1, "folders": 0}, r"folders must be a list of folder paths\."),
        ({"synthetic_songs": 1, "time_limit_s": "1h"}, r"time_limit_s must be a number"),
        ({"synthetic_songs": 1, "train_tracks": -2}, r"train_tracks must be a whole number"),
    ],
)
def test_bad_training_settings_are_refused_in_one_sentence(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_train_tracks_draws_nested_subsets_of_musdbs_train_split(tmp_path: Path) -> None:
    # a MUSDB18-HQ-style folder of eight training songs and one of MUSDB's validation songs
    for index in range(8):
        write_song_folder(tmp_path / "train", tonal_song(f"song{index}", index, 0.5), True)
    valid_song = tonal_song(MUSDB_VALID_TRACKS[0], 8, 0.5)
    write_song_folder(tmp_path / "train", valid_song, True)

    def songs(count: int, seed: int = 42) -> list[str]:
        train, valid = load_training_data(
            TrainConfig(musdb=str(tmp_path), train_tracks=count, seed=seed)
        )
        assert [track.name for track in valid] == [MUSDB_VALID_TRACKS[0]]
        return [track.name for track in train]

    every = songs(0)
    assert every == [f"song{index}" for index in range(8)]
    assert songs(8) == songs(100) == every
    three, five = songs(3), songs(5)
    assert len(three) == 3 and len(five) == 5
    assert set(three) < set(five) < set(every)
    assert three != every[:3]  # a shuffle, not the first songs by name
    assert songs(5, seed=7) == five  # the draw does not follow the run's seed


def test_songs_rendered_from_midi_files_train_a_model(tmp_path: Path) -> None:
    from livestems.models.synth.midi import bundled_midi_files

    if not bundled_midi_files():
        pytest.skip("no MIDI packages installed (./setup.sh --dev installs them)")
    config = tiny_config(
        midi_songs=2,
        synthetic_valid_songs=1,
        synthetic_duration_s=2.0,
        epochs=1,
        batches_per_epoch=2,
    )
    state = train(config, tmp_path / "midi", show_progress=False)
    assert state.step == 2 and math.isfinite(state.best_valid_loss)


def test_midi_songs_lend_only_the_stems_asked_for() -> None:
    from livestems.models.synth.midi import bundled_midi_files

    if not bundled_midi_files():
        pytest.skip("no MIDI packages installed (./setup.sh --dev installs them)")
    fields = dict(midi_songs=2, synthetic_songs=1, synthetic_duration_s=2.0)
    every, _ = load_training_data(tiny_config(**fields))
    lent, _ = load_training_data(tiny_config(**fields, midi_stems=("vocals", "other")))
    assert [t.name for t in lent] == [t.name for t in every]
    procedural, midi = (lent[0], every[0]), list(zip(lent[1:], every[1:], strict=True))
    assert all(np.array_equal(procedural[0].stems[s], procedural[1].stems[s]) for s in STEMS)
    for kept, whole in midi:
        for stem in ("vocals", "other"):
            assert np.array_equal(kept.stems[stem], whole.stems[stem])
            assert np.abs(kept.stems[stem]).max() > 0.01
        assert not np.any(kept.stems["drums"]) and not np.any(kept.stems["bass"])
        np.testing.assert_allclose(kept.mixture, kept.stems["vocals"] + kept.stems["other"])


def test_lent_stems_come_from_remixes_and_silent_ones_from_the_other_songs() -> None:
    # songs 0 and 1 lend every stem, songs 2 and 3 only vocals and other; each song's sources
    # sit at the song's own constant level, so a target's level says which song it came from
    tracks = []
    for k in range(4):
        stems = {stem: np.full((16000, 2), 0.1 * (k + 1), np.float32) for stem in STEMS}
        track = Track(f"s{k}", stems, np.sum(list(stems.values()), axis=0))
        tracks.append(lending(track, ("vocals", "other")) if k >= 2 else track)
    config = SamplingConfig(
        excerpt_s=0.25, gain_range=(1.0, 1.0), channel_swap_probability=0.0, remix_probability=0.5
    )
    levels = ExcerptSampler(tracks, config, 16000).batch(0, 0, 0, 256).targets[:, :, 0, 0]
    song = torch.round(levels / 0.1).long() - 1  # (sample, stem)
    vocals, drums, bass, other = (song[:, STEMS.index(s)] for s in STEMS)
    # -1 is silence: a draw kept after max_redraws found only lending songs (1 in 2**11)
    for stem in (drums, bass):
        assert set(stem.tolist()) <= {-1, 0, 1}
        assert float((stem == -1).float().mean()) < 0.02
    assert {2, 3} <= set(vocals.tolist()) and {2, 3} <= set(other.tolist())
    # a lending song's tunes sit over a lending-all song's drums: only a remix does that
    assert float((vocals >= 2).float().mean()) > 0.1


def test_midi_stems_must_name_stems() -> None:
    for bad in (["voice"], "vocals", [1]):
        with pytest.raises(ConfigError, match="midi_stems must be a list of stems"):
            TrainConfig.from_dict({"synthetic_songs": 1, "midi_songs": 1, "midi_stems": bad})
    # a key that would do nothing is refused rather than ignored
    with pytest.raises(ConfigError, match="it needs midi_songs"):
        TrainConfig.from_dict({"synthetic_songs": 1, "midi_stems": ["vocals"]})


def test_an_unknown_key_with_a_line_break_is_named_on_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        TrainConfig.from_dict({"synthetic_songs": 1, "lr\nrate": 1})
    assert "\n" not in str(refused.value) and "lr\\nrate" in str(refused.value)


def test_a_binary_config_file_is_refused_in_one_sentence(tmp_path: Path) -> None:
    binary = tmp_path / "config.json"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"is not (a text file|valid JSON)"):
        TrainConfig.from_file(binary)


def test_init_fine_tunes_from_a_checkpoint_and_refuses_one_that_does_not_fit(
    song_folder: Path, tmp_path: Path
) -> None:
    config = tiny_config(folders=(str(song_folder),), epochs=1, batches_per_epoch=2)
    train(config, tmp_path / "first", show_progress=False)
    start = dict(load_checkpoint(tmp_path / "first" / "best.pt")[0].named_parameters())
    tuned = dataclasses.replace(config, init=str(tmp_path / "first" / "best.pt"), lr=1e-9)
    train(tuned, tmp_path / "tuned", show_progress=False)
    after = dict(load_checkpoint(tmp_path / "tuned" / "best.pt")[0].named_parameters())
    # a learning rate of 1e-9 barely moves the weights: the run started from the checkpoint's
    # (batch norm's running statistics, which are not weights, follow the new batches)
    for key, value in start.items():
        torch.testing.assert_close(after[key], value, atol=1e-4, rtol=1e-4)
    other = dataclasses.replace(tuned, model={"hidden_size": 16, "n_layers": 1})
    with pytest.raises(UserError, match="fine-tuning needs the same family, size and preset"):
        train(other, tmp_path / "other", show_progress=False)


def test_the_exported_checkpoint_is_the_weight_average(song_folder: Path, tmp_path: Path) -> None:
    config = tiny_config(folders=(str(song_folder),), epochs=1, batches_per_epoch=4, ema_decay=0.5)
    train(config, tmp_path / "run", show_progress=False)
    best = weights(tmp_path / "run" / "best.pt")
    _, extra = load_checkpoint(tmp_path / "run" / "last.pt")
    average, last = extra["ema"]["model"], weights(tmp_path / "run" / "last.pt")
    assert extra["ema"]["updates"] == 4
    differs = False
    for key in best:
        assert torch.equal(best[key], average[key]), key
        differs |= not torch.equal(best[key], last[key])
    assert differs  # the average is not the last weights


# without a weight average the model that trains is the one validated between epochs, which
# must come back from validation with its norms still frozen
@pytest.mark.parametrize("ema_decay", [0.0, 0.5], ids=["trained-model", "average"])
def test_frozen_norms_keep_the_initial_statistics_while_the_weights_learn(
    song_folder: Path, tmp_path: Path, ema_decay: float
) -> None:
    config = tiny_config(folders=(str(song_folder),), epochs=1, batches_per_epoch=2)
    train(config, tmp_path / "first", show_progress=False)
    start = load_checkpoint(tmp_path / "first" / "best.pt")[0]
    tuned = dataclasses.replace(
        config, init=str(tmp_path / "first" / "best.pt"), freeze_norms=True, ema_decay=ema_decay
    )
    tuned = dataclasses.replace(tuned, epochs=2)
    train(tuned, tmp_path / "tuned", show_progress=False)
    for name in ("best.pt", "last.pt"):
        after = load_checkpoint(tmp_path / "tuned" / name)[0]
        buffers = dict(after.named_buffers())
        statistics = [key for key in buffers if key.endswith(("running_mean", "running_var"))]
        assert statistics
        for key in statistics:
            assert torch.equal(buffers[key], dict(start.named_buffers())[key]), (name, key)
        moved = dict(after.named_parameters())
        assert any(not torch.equal(moved[k], v) for k, v in start.named_parameters())


def test_frozen_norms_are_refused_for_a_model_without_batch_norms(tmp_path: Path) -> None:
    source = SeparatorNet(get_family("bsrnn").config("small", preset="ultra"))
    save_checkpoint(tmp_path / "bsrnn.pt", source)
    config = tiny_config(
        family="bsrnn", model={}, synthetic_songs=1, init=str(tmp_path / "bsrnn.pt")
    )
    config = dataclasses.replace(config, freeze_norms=True)
    with pytest.raises(UserError, match=r"this bsrnn model has no batch norm") as refused:
        train(config, tmp_path / "run", show_progress=False)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "run").exists()


def test_without_the_ramp_the_average_holds_the_initial_weights_at_the_full_decay() -> None:
    # a continuation's initial weights are its best so far: with the ramp the first update
    # hands the average nine tenths of the way to the moved weights, without it a hundredth
    model = build_model(tiny_config(synthetic_songs=1))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ramped, held = WeightAverage(model, 0.99), WeightAverage(model, 0.99, ramp=False)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    ramped.update(model)
    held.update(model)
    name, parameter = next(iter(held.model.named_parameters()))
    assert torch.allclose(parameter, start[name] + 0.01)
    assert torch.allclose(dict(ramped.model.named_parameters())[name], start[name] + 0.9)


def test_select_by_sdr_keeps_the_epoch_of_the_highest_validation_sdr(
    song_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each epoch logs its validation SDR; best.pt is the epoch with the highest, whatever the
    loss did, and holds the figure; the loss still drives early stopping. The command's last
    line names the SDR that chose best.pt, not the run's lowest loss (another epoch's)."""
    config = tiny_config(folders=(str(song_folder),), epochs=3, select_by="sdr")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.to_dict()))
    run = str(tmp_path / "run")
    assert livestems(["train", "--config", str(config_file), "--out", run, "--no-progress"]) == 0
    done = capsys.readouterr().out.splitlines()[-1]
    log = read_log(tmp_path / "run")
    expected = f"best validation SDR {log[-1]['best_valid_sdr']:.2f} dB at epoch "
    assert done.startswith("done: 3 epochs, ") and expected in done and "loss" not in done
    sdrs = [record["valid_sdr"] for record in log]
    assert all(math.isfinite(value) for value in sdrs)
    best = max(range(len(sdrs)), key=sdrs.__getitem__)
    assert log[-1]["best_epoch"] == best
    assert log[-1]["best_valid_sdr"] == sdrs[best]
    assert log[-1]["best_valid_loss"] == min(record["valid_loss"] for record in log)
    _, extra = load_checkpoint(tmp_path / "run" / "best.pt")
    assert extra["epoch"] == best and extra["valid_sdr"] == sdrs[best]


def test_validation_sdr_is_the_scores_aggregation_of_a_plain_sdr() -> None:
    """A model whose every stem is half the mixture scores what the formula gives by hand: per
    stem the median over 1 s frames of 10 log10(|s|^2 / |mix / 2 - s|^2), the median over
    tracks, the mean over stems."""
    from livestems.models.data.datasets import Track

    class HalfTheMixture(torch.nn.Module):
        stems = ("a", "b")
        latency_samples = 0

        def __init__(self) -> None:
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            return torch.stack([waveform, waveform], dim=1) / 2

    rng = np.random.default_rng(3)
    tracks = []
    for gains in ((1.0, 0.5), (0.3, 1.0), (1.0, 1.0)):
        stems = {
            name: (gain * rng.standard_normal((2 * 8000, 2))).astype(np.float32)
            for name, gain in zip(("a", "b"), gains, strict=True)
        }
        tracks.append(Track("t", stems, stems["a"] + stems["b"], sample_rate=8000))
    expected = []
    for name, other in (("a", "b"), ("b", "a")):
        per_track = []
        for track in tracks:
            s = track.stems[name].astype(np.float64)
            e = (s - track.stems[other].astype(np.float64)) / 2
            frames = [
                10 * np.log10(np.mean(s[i : i + 8000] ** 2) / np.mean(e[i : i + 8000] ** 2))
                for i in (0, 8000)
            ]
            per_track.append(np.median(frames))
        expected.append(np.median(per_track))
    assert abs(np.mean(expected)) > 1.0
    assert validation_sdr(HalfTheMixture(), tracks) == pytest.approx(np.mean(expected), abs=1e-4)


def test_the_sdr_loss_is_minus_the_sdr_in_db_and_pulls_towards_the_target() -> None:
    """Per stem and excerpt: an estimate with a tenth of the target's amplitude in error scores
    -20 dB whatever the stem's level, so a quiet stem weighs as a loud one; a gradient step on
    the estimate lowers it."""
    rng = np.random.default_rng(5)
    target = torch.from_numpy(rng.standard_normal((2, 3, 2, 4000)))
    target[:, 1] *= 1e-2  # a quiet stem
    noise = torch.from_numpy(rng.standard_normal(target.shape))
    noise /= torch.linalg.vector_norm(noise, dim=(-2, -1), keepdim=True)
    noise *= 0.1 * torch.linalg.vector_norm(target, dim=(-2, -1), keepdim=True)
    estimate = (target + noise).requires_grad_(True)
    loss = waveform_sdr_loss(estimate, target)
    assert loss.item() == pytest.approx(-20.0, abs=1e-3)
    loss.backward()
    assert estimate.grad is not None
    stepped = waveform_sdr_loss(estimate.detach() - 1e-4 * estimate.grad, target)
    assert stepped.item() < loss.item()


def test_the_cosine_schedule_warms_up_then_decays_to_its_floor() -> None:
    config = tiny_config(
        synthetic_songs=1, lr_schedule="cosine", warmup_batches=4, epochs=2, batches_per_epoch=10
    )
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=config.lr)
    scheduler = make_scheduler(config, optimizer)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(config.lr / 4)
    assert rates[3] == pytest.approx(config.lr)
    assert all(a >= b for a, b in zip(rates[3:], rates[4:], strict=False))
    assert rates[-1] == pytest.approx(
        config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    )


def test_config_files_in_json_and_toml_say_the_same(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text(
        'family = "cws"\nsynthetic_songs = 3\n[sampling]\nexcerpt_s = 2.5\n'
    )
    (tmp_path / "run.json").write_text(
        json.dumps({"family": "cws", "synthetic_songs": 3, "sampling": {"excerpt_s": 2.5}})
    )
    toml, as_json = (TrainConfig.from_file(tmp_path / f"run.{kind}") for kind in ("toml", "json"))
    assert toml == as_json and toml.sampling.excerpt_s == 2.5
    (tmp_path / "bad.json").write_text("{family: cws")
    with pytest.raises(ConfigError, match=r"bad.json is not valid json"):
        TrainConfig.from_file(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="Cannot read the training configuration"):
        TrainConfig.from_file(tmp_path / "missing.json")


def test_input_statistics_centre_and_scale_the_network_input() -> None:
    tracks = [tonal_song(f"s{i}", i) for i in range(2)]
    config = tiny_config(synthetic_songs=1)
    model = build_model(config)
    sampler = ExcerptSampler(tracks, config.sampling)
    assert fit_input_statistics(model, sampler, seed=0) == 1
    # over the excerpts the statistics were drawn from, every input bin that varies comes out
    # with mean 0 and standard deviation 1
    batches = [sampler.batch(0, 2**31 - 1, index, 4) for index in range(4)]
    mixture = torch.cat([batch.mixture for batch in batches])
    with torch.no_grad():
        magnitude = model.front_end.analyze(mixture).abs()[..., : model.net.n_in]
        normalised = (magnitude + model.net.input_mean) * model.net.input_scale
    per_bin = normalised.reshape(-1, model.net.n_in)
    varies = magnitude.reshape(-1, model.net.n_in).std(dim=0) > 1e-3
    assert int(varies.sum()) > 100
    torch.testing.assert_close(per_bin.mean(dim=0), torch.zeros(model.net.n_in), atol=1e-3, rtol=0)
    torch.testing.assert_close(
        per_bin.std(dim=0)[varies], torch.ones(int(varies.sum())), atol=1e-3, rtol=0
    )


def test_the_offline_umx_baseline_trains_and_is_never_exported(
    song_folder: Path, tmp_path: Path
) -> None:
    config = tiny_config(
        family="umx",
        preset="studio",
        model={"hidden_size": 16, "n_layers": 1},
        folders=(str(song_folder),),
        sampling=SamplingConfig(excerpt_s=0.6),
        epochs=1,
        batches_per_epoch=2,
        loss="mse",
    )
    train(config, tmp_path / "umx", show_progress=False)
    model, _ = load_checkpoint(tmp_path / "umx" / "best.pt")
    assert model.config.family == "umx"
    code = livestems(["export", str(tmp_path / "umx" / "best.pt"), "-o", str(tmp_path / "u.onnx")])
    assert code == 1 and not (tmp_path / "u.onnx").exists()


@pytest.mark.slow
def test_torchrun_trains_data_parallel_on_two_processes(song_folder: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    config_file = tmp_path / "config.json"
    config = tiny_config(folders=(str(song_folder),), epochs=1, batches_per_epoch=2)
    config_file.write_text(json.dumps(config.to_dict()))
    run = tmp_path / "ddp"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m",
         "livestems.models.training.command", "--config", str(config_file), "--out", str(run),
         "--no-progress"],
        capture_output=True, text=True, timeout=300, env=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(read_log(run)) == 1  # one process (rank 0) logs and writes
    # both ranks averaged their gradients: the weights moved from the initial ones
    initial = build_model(config).state_dict()
    trained = weights(run / "last.pt")
    assert not torch.equal(initial["net.fc1.weight"], trained["net.fc1.weight"])


def run_train_export_eval(tmp_path: Path, data_options: list[str], eval_options: list[str]):
    run, model_file, report = tmp_path / "run", tmp_path / "tiny.onnx", tmp_path / "eval.json"
    code = livestems(
        ["train", "--out", str(run), "--family", "lstm", "--size", "small", "--preset", "live",
         "--batch-size", "2", "--batches-per-epoch", "3", "--epochs", "2", "--excerpt-s", "1",
         "--lr", "0.003", "--threads", "1", "--no-progress", *data_options]
    )  # fmt: skip
    assert code == 0
    log = read_log(run)
    # the validation loss: the same songs each epoch (a training batch's loss is noisier)
    assert log[-1]["valid_loss"] < log[0]["valid_loss"]
    assert livestems(["export", str(run / "best.pt"), "-o", str(model_file)]) == 0
    assert model_file.exists()
    code = livestems(["eval", str(model_file), *eval_options, "--json", str(report)])
    assert code == 0
    scores = json.loads(report.read_text())
    return scores


def synthesizer_available() -> bool:
    return (
        shutil.which("fluidsynth") is not None
        and Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").exists()
    )


@pytest.mark.slow
def test_ci_trains_exports_and_evaluates_a_tiny_model_on_synthetic_songs(
    tmp_path: Path,
) -> None:
    if not synthesizer_available():
        if os.environ.get("CI"):
            pytest.fail("FluidSynth and fluid-soundfont-gm must be installed (./setup.sh --dev)")
        pytest.skip("FluidSynth or the GM sound font is not installed (./setup.sh --dev)")
    from livestems.models.evaluation.evaluate import evaluate_tracks, streaming_estimator
    from livestems.models.synth.procedural import render_songs

    run, model_file = tmp_path / "run", tmp_path / "tiny.onnx"
    code = livestems(
        ["train", "--out", str(run), "--synthetic", "4", "--synthetic-seconds", "4",
         "--family", "lstm", "--size", "small", "--preset", "live", "--batch-size", "2",
         "--batches-per-epoch", "4", "--epochs", "2", "--excerpt-s", "1", "--lr", "0.003",
         "--threads", "1", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    log = read_log(run)
    # the validation loss: the same songs each epoch (a training batch's loss is noisier)
    assert log[-1]["valid_loss"] < log[0]["valid_loss"]
    assert livestems(["export", str(run / "best.pt"), "-o", str(model_file)]) == 0
    tracks = render_songs([1_000_000, 1_000_001], duration_s=4.0)
    result = evaluate_tracks(streaming_estimator(model_file), tracks)
    scores = result.to_dict()
    assert len(scores["tracks"]) == 2
    assert set(scores["stems"]) == set(STEMS)
    assert all(scores["stems"][stem]["SDR"] is not None for stem in STEMS)


@pytest.mark.slow
def test_ci_trains_exports_and_evaluates_a_tiny_model_on_musdb18(tmp_path: Path) -> None:
    root = os.environ.get("LIVESTEMS_MUSDB")
    if not root:
        pytest.skip("LIVESTEMS_MUSDB is not set (e.g. LIVESTEMS_MUSDB=../shared/data/musdb18-7)")
    scores = run_train_export_eval(
        tmp_path,
        ["--musdb", root],
        ["--musdb", root, "--split", "valid", "--tracks", "2", "--seconds", "4"],
    )
    assert len(scores["tracks"]) == 2
    assert set(scores["stems"]) == set(STEMS)
    assert all(scores["stems"][stem]["SDR"] is not None for stem in STEMS)


def _saved_cws_source(path: Path) -> SeparatorNet:
    """A small magnitude-mask ``cws`` model, saved as a checkpoint to grow from; its batch norms'
    running statistics away from the identity, since they must travel too."""
    source = SeparatorNet(get_family("cws").config("small", preset="live", channels=2))
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    save_checkpoint(path, source)
    return source


def test_init_grows_a_cws_model_a_bottleneck_lstm_that_starts_at_zero(tmp_path: Path) -> None:
    # Seeded: in a network this narrow, a random draw can leave the decoder's path from the
    # bottleneck dead (every relu at zero), and then no branch there changes the masks.
    torch.manual_seed(1)
    cws = get_family("cws")
    source = _saved_cws_source(tmp_path / "source.pt")
    grown = SeparatorNet(cws.config("small", preset="live", channels=2, lstm_hidden=8))
    load_initial_weights(grown, str(tmp_path / "source.pt"))
    assert torch.count_nonzero(grown.net.lstm_out.weight) == 0
    assert torch.count_nonzero(grown.net.lstm.weight_ih_l0) > 0  # the branch itself can learn
    source.eval()
    grown.eval()
    spectra = torch.randn((1, 20, *source.frame_shape), dtype=torch.complex64)
    with torch.no_grad():
        torch.testing.assert_close(grown.masks(spectra), source.masks(spectra))
    # a branch whose closing layer is not zeroed changes the function: refused, left as it was
    unzeroed = SeparatorNet(cws.config("small", preset="live", channels=2, lstm_hidden=8))
    unzeroed.net.residual_outputs = ()
    before = {name: value.clone() for name, value in unzeroed.state_dict().items()}
    with pytest.raises(UserError, match="only adds residual branches"):
        load_initial_weights(unzeroed, str(tmp_path / "source.pt"))
    for name, value in unzeroed.state_dict().items():
        assert torch.equal(value, before[name]), name
    # another preset is another front end, whatever the weights' shapes
    ultra = SeparatorNet(cws.config("small", preset="ultra", channels=2, lstm_hidden=8))
    with pytest.raises(UserError, match="only adds residual branches"):
        load_initial_weights(ultra, str(tmp_path / "source.pt"))
    # wider convolutions are not a residual branch: refused, the model left as it was
    wider = SeparatorNet(cws.config("small", preset="live", channels=3, lstm_hidden=8))
    before = {name: value.clone() for name, value in wider.state_dict().items()}
    with pytest.raises(UserError, match="only adds residual branches"):
        load_initial_weights(wider, str(tmp_path / "source.pt"))
    for name, value in wider.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_init_grows_a_magnitude_cws_model_an_imaginary_half_that_starts_at_zero(
    tmp_path: Path,
) -> None:
    cws = get_family("cws")
    source = SeparatorNet(cws.config("small", preset="live", channels=2))
    save_checkpoint(tmp_path / "source.pt", source)
    grown = SeparatorNet(cws.config("small", preset="live", channels=2, mask_domain="complex"))
    load_initial_weights(grown, str(tmp_path / "source.pt"))
    half = grown.net.head.weight.shape[0] // 2
    assert torch.equal(grown.net.head.weight[:half], source.net.head.weight)
    assert torch.count_nonzero(grown.net.head.weight[half:]) == 0
    source.eval()
    grown.eval()
    spectra = torch.randn((1, 20, *source.frame_shape), dtype=torch.complex64)
    with torch.no_grad():
        masks = grown.masks(spectra)
        assert masks.is_complex() and torch.count_nonzero(masks.imag) == 0
        torch.testing.assert_close(masks.real, source.masks(spectra))
        # the stems as heard: the complex model's separation is the magnitude model's
        waveform = torch.randn((1, 2, 8000))
        torch.testing.assert_close(grown(waveform), source(waveform), atol=1e-5, rtol=1e-4)
    # the other way round (complex weights into a magnitude model) is refused, untouched
    save_checkpoint(tmp_path / "complex.pt", grown)
    back = SeparatorNet(cws.config("small", preset="live", channels=2))
    before = {name: value.clone() for name, value in back.state_dict().items()}
    with pytest.raises(UserError, match="an imaginary half of the masks"):
        load_initial_weights(back, str(tmp_path / "complex.pt"))
    for name, value in back.state_dict().items():
        assert torch.equal(value, before[name]), name
    # a family whose network reads other features with complex masks (bsrnn: the real and
    # imaginary parts) does not grow so
    bsrnn = get_family("bsrnn")
    tiny = {"width": 4, "n_blocks": 1, "bands": "coarse"}
    save_checkpoint(tmp_path / "bsrnn.pt", SeparatorNet(bsrnn.config("small", **tiny)))
    complex_bsrnn = SeparatorNet(bsrnn.config("small", mask_domain="complex", **tiny))
    with pytest.raises(UserError, match="an imaginary half of the masks"):
        load_initial_weights(complex_bsrnn, str(tmp_path / "bsrnn.pt"))


def _grow_lstm(tmp_path: Path, source: SeparatorNet, **grown: Any) -> SeparatorNet:
    """``source`` given an output mean per bin far from zero (a trained one's may be near it),
    grown by ``--init`` into an lstm of the ``grown`` configuration; both left in eval mode,
    the grown one checked to start from the source's masks with imaginary parts of zero."""
    with torch.no_grad():
        source.net.output_mean.normal_(generator=torch.Generator().manual_seed(0))
    save_checkpoint(tmp_path / "source.pt", source)
    model = SeparatorNet(get_family("lstm").config("small", **grown))
    load_initial_weights(model, str(tmp_path / "source.pt"))
    source.eval()
    model.eval()
    spectra = torch.randn((1, 20, *source.frame_shape), dtype=torch.complex64)
    with torch.no_grad():
        masks = model.masks(spectra)
    assert torch.count_nonzero(masks.imag) == 0
    torch.testing.assert_close(masks.real, source.masks(spectra))
    return model


def test_init_grows_an_lstm_of_sigmoid_masks_whose_output_mean_shifts_the_real_part_only(
    tmp_path: Path,
) -> None:
    # Softmax masks centre the imaginary logits across stems, which hides a per-bin shift of
    # them; sigmoid masks do not.
    source = SeparatorNet(get_family("lstm").config("small", hidden_size=8, mask="sigmoid"))
    _grow_lstm(tmp_path, source, hidden_size=8, mask="sigmoid", mask_domain="complex")


def test_init_grows_the_bundled_lstm_live_into_complex_masks_and_stereo_features(
    tmp_path: Path,
) -> None:
    """The shipped magnitude model grows an imaginary half and mid/side inputs and starts as
    the same separator; the imaginary path has a gradient from the first batch."""
    # the lstm-live bundled until session 16 (its continuation's init); its output mean per
    # bin is near zero (6.7e-5 at most): _grow_lstm moves it away
    source = separator_from_onnx(ROOT / "models/recipes/long-runs/lstm-live-frozen/init.onnx")
    grown = _grow_lstm(tmp_path, source, mask_domain="complex", stereo_features=True)
    n_in = source.net.fc1.weight.shape[1]
    assert torch.equal(grown.net.fc1.weight[:, :n_in], source.net.fc1.weight)
    assert torch.count_nonzero(grown.net.fc1.weight[:, n_in:]) == 0
    half = source.net.fc3.weight.shape[0]
    assert torch.count_nonzero(grown.net.bn3.weight[half:]) == 0
    assert torch.count_nonzero(grown.net.fc3.weight[half:]) > 0
    with torch.no_grad():
        waveform = torch.randn((1, 2, 8000))
        torch.testing.assert_close(grown(waveform), source(waveform), atol=1e-5, rtol=1e-4)
    grown.train()
    imaginary = grown.masks(torch.randn((1, 20, *source.frame_shape), dtype=torch.complex64)).imag
    (imaginary * torch.randn(imaginary.shape)).sum().backward()
    assert grown.net.bn3.weight.grad is not None
    assert torch.count_nonzero(grown.net.bn3.weight.grad[half:]) > 0


def test_a_model_torch_compile_cannot_compile_trains_without_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # torch 2.13's inductor fails on the backward of a cws model with a bottleneck LSTM; the
    # run says so in one sentence and trains eagerly (the same loss) instead of ending.
    root = tmp_path / "songs"
    for index in range(2):
        write_song_folder(root, tonal_song(f"song{index}", index), with_mixture=False)
    config = tiny_config(
        family="cws",
        preset="live",
        model={"channels": 2, "lstm_hidden": 4},
        folders=(str(root),),
        epochs=1,
        batches_per_epoch=1,
        compile=True,
    )
    train(config, tmp_path / "run", show_progress=False)
    err = capfd.readouterr().err
    (line,) = [line for line in err.splitlines() if "torch.compile could not compile" in line]
    assert line.endswith("training runs without it.") and "InductorError: " in line
    assert math.isfinite(read_log(tmp_path / "run")[0]["valid_loss"])


def _time_limited_config(song_folder: Path, time_limit_s: float) -> TrainConfig:
    """Epochs without end but for the time limit's plan, on a cosine with a short warm-up."""
    return tiny_config(
        folders=(str(song_folder),),
        epochs=100_000,
        lr_schedule="cosine",
        warmup_batches=2,
        min_lr_ratio=0.05,
        time_limit_s=time_limit_s,
    )


def test_a_time_limit_cuts_the_epochs_once_and_the_cosine_ends_at_the_cut(
    song_folder: Path, tmp_path: Path
) -> None:
    """After two epochs the run plans the epochs that fit in time_limit_s, logs the plan, keeps
    it through --resume, and the cosine schedule reaches its floor at the plan's last batch."""
    config = _time_limited_config(song_folder, 6.0)
    run = tmp_path / "run"
    train(config, run, show_progress=False, max_batches=3 * config.batches_per_epoch)
    log = read_log(run)
    planned = log[1]["planned_epochs"]
    assert 2 <= planned < 100_000
    assert "planned_epochs" not in log[0] and "planned_epochs" not in log[2]
    state = train(config, run, resume=True, show_progress=False)
    log = read_log(run)
    assert state.planned_epochs == planned
    assert len(log) <= planned and log[-1]["epoch"] <= planned - 1
    if len(log) == planned:  # not stopped early by the pace check: the cosine has ended
        assert log[-1]["lr"] == pytest.approx(config.lr * config.min_lr_ratio)


def test_epochs_lowered_for_a_resume_win_over_a_time_limits_plan(
    song_folder: Path, tmp_path: Path
) -> None:
    """A run whose time limit planned many epochs, resumed with fewer in its configuration (as
    one edits config.json before --resume), stops at the fewer, its cosine ended there."""
    config = _time_limited_config(song_folder, 3600.0)
    run = tmp_path / "run"
    train(config, run, show_progress=False, max_batches=2 * config.batches_per_epoch)
    assert read_log(run)[1]["planned_epochs"] > 4
    values = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**values, "epochs": 4}))
    train(TrainConfig.from_file(run / "config.json"), run, resume=True, show_progress=False)
    log = read_log(run)
    assert [record["epoch"] for record in log] == [0, 1, 2, 3]
    assert log[-1]["lr"] == pytest.approx(config.lr * config.min_lr_ratio)


def test_a_time_limit_is_refused_out_of_range() -> None:
    with pytest.raises(ConfigError, match="time_limit_s must be a number"):
        tiny_config(synthetic_songs=1, time_limit_s=-1)


def test_init_grows_a_magnitude_cws_model_stereo_features_whose_weights_start_at_zero(
    tmp_path: Path,
) -> None:
    cws = get_family("cws")
    source = _saved_cws_source(tmp_path / "source.pt")
    grown = SeparatorNet(
        cws.config("small", preset="live", channels=2, mask_domain="complex", stereo_features=True)
    )
    load_initial_weights(grown, str(tmp_path / "source.pt"))
    n_in = source.net.input_norm.num_features
    first = grown.net.encoder[0].convs[0].conv.weight
    assert torch.equal(first[:, :n_in], source.net.encoder[0].convs[0].conv.weight)
    assert first.shape[1] == n_in + 2 * 4 and torch.count_nonzero(first[:, n_in:]) == 0
    torch.testing.assert_close(
        grown.net.input_norm.running_var[:n_in], source.net.input_norm.running_var
    )
    source.eval()
    grown.eval()
    spectra = torch.randn((1, 20, *source.frame_shape), dtype=torch.complex64)
    with torch.no_grad():
        # the complex model reads the phases (mid and side differ from left and right), yet
        # starts as the magnitude model
        torch.testing.assert_close(grown.masks(spectra).real, source.masks(spectra))
        waveform = torch.randn((1, 2, 8000))
        torch.testing.assert_close(grown(waveform), source(waveform), atol=1e-5, rtol=1e-4)
    # stereo features without complex masks are refused in one sentence
    with pytest.raises(UserError, match="stereo_features needs two channels and mask_domain"):
        cws.config("small", preset="live", stereo_features=True)


def test_init_grows_a_stereo_cws_model_the_phase_deviation_and_its_state(tmp_path: Path) -> None:
    cws = get_family("cws")
    stereo = {"preset": "live", "channels": 2, "mask_domain": "complex", "stereo_features": True}
    source = SeparatorNet(cws.config("small", **stereo))
    save_checkpoint(tmp_path / "source.pt", source)
    grown = SeparatorNet(cws.config("small", phase_deviation=True, **stereo))
    load_initial_weights(grown, str(tmp_path / "source.pt"))
    n_in = source.net.input_norm.num_features
    first = grown.net.encoder[0].convs[0].conv.weight
    assert first.shape[1] == n_in + 8 and torch.count_nonzero(first[:, n_in:]) == 0
    assert [spec.name for spec in grown.net.state_spec()][-1] == "spectrum_past"
    source.eval()
    grown.eval()
    with torch.no_grad():
        waveform = torch.randn((1, 2, 8000))
        torch.testing.assert_close(grown(waveform), source(waveform), atol=1e-5, rtol=1e-4)
    # it comes from the phases: refused without complex masks, in one sentence
    with pytest.raises(UserError, match="phase_deviation needs mask_domain complex"):
        cws.config("small", preset="live", phase_deviation=True)
