"""Data sets and training samples: splits, folders of stems, augmentations, silence."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.data.datasets import (  # noqa: E402
    MUSDB_VALID_TRACKS,
    STEMS,
    DatasetError,
    Track,
    load_tracks,
    musdb_tracks,
    stem_folder_tracks,
)
from livestems.models.data.training_data import ExcerptSampler, SamplingConfig  # noqa: E402
from tests.helpers.songs import noise_track, tonal_song, write_song_folder  # noqa: E402

RATE = 44100


def test_a_folder_of_stems_loads_with_or_without_a_mixture_file(tmp_path: Path) -> None:
    first, second = noise_track("a", 1.0, 1), noise_track("b", 1.5, 2)
    write_song_folder(tmp_path, first, with_mixture=True)
    write_song_folder(tmp_path, second, with_mixture=False)
    tracks = load_tracks(stem_folder_tracks(tmp_path))
    assert [t.name for t in tracks] == ["a", "b"]
    for loaded, original in zip(tracks, (first, second), strict=True):
        assert tuple(loaded.stems) == STEMS
        np.testing.assert_array_equal(loaded.stack(), original.stack())
        np.testing.assert_allclose(loaded.mixture, original.mixture, atol=1e-6)


def test_a_song_folder_missing_a_stem_is_named_in_one_sentence(tmp_path: Path) -> None:
    folder = write_song_folder(tmp_path, noise_track("song", 0.5, 3), with_mixture=False)
    (folder / "bass.wav").unlink()
    with pytest.raises(DatasetError, match=r"song has no bass file \(bass.wav, bass.flac"):
        load_tracks(stem_folder_tracks(tmp_path))


def test_a_corrupt_stem_file_names_the_track(tmp_path: Path) -> None:
    folder = write_song_folder(tmp_path, noise_track("broken", 0.5, 3), with_mixture=False)
    (folder / "drums.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    with pytest.raises(DatasetError, match=r"Track 'broken' cannot be read: .*drums.wav"):
        load_tracks(stem_folder_tracks(tmp_path))


def test_a_broken_song_in_a_folder_is_skipped_and_named_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_song_folder(tmp_path, noise_track("good", 0.5, 1), with_mixture=False)
    broken = write_song_folder(tmp_path, noise_track("broken", 0.5, 3), with_mixture=False)
    (broken / "drums.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    missing = write_song_folder(tmp_path, noise_track("missing", 0.5, 4), with_mixture=False)
    (missing / "bass.wav").unlink()
    tracks = load_tracks(stem_folder_tracks(tmp_path), skip_broken=True)
    assert [track.name for track in tracks] == ["good"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "skipped" in lines[0] and "broken" in lines[0] and "drums.wav" in lines[0]
    assert "skipped" in lines[1] and "missing has no bass file" in lines[1]
    (tmp_path / "good" / "vocals.wav").write_bytes(b"nothing")
    with pytest.raises(DatasetError, match=r"None of the 3 songs could be read"):
        load_tracks(stem_folder_tracks(tmp_path), skip_broken=True)


def test_not_a_musdb_folder_and_an_unknown_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not a MUSDB18 folder: it has no train/ folder"):
        musdb_tracks(tmp_path, "train")
    with pytest.raises(DatasetError, match="Unknown split 'validation'"):
        musdb_tracks(tmp_path, "validation")
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetError, match="holds no MUSDB18 tracks for the train split"):
        musdb_tracks(tmp_path, "train")


def test_musdb18_hq_folders_follow_the_validation_list(tmp_path: Path) -> None:
    for name in (MUSDB_VALID_TRACKS[0], "Some Artist - Some Song"):
        write_song_folder(tmp_path / "train", noise_track(name, 0.3, 4), with_mixture=True)
    assert [r.name for r in musdb_tracks(tmp_path, "valid")] == [MUSDB_VALID_TRACKS[0]]
    train = musdb_tracks(tmp_path, "train")
    assert [r.name for r in train] == ["Some Artist - Some Song"]
    assert load_tracks(train)[0].n_samples == int(0.3 * RATE)


def test_musdb18_7_has_its_validation_tracks_held_out() -> None:
    root = os.environ.get("LIVESTEMS_MUSDB")
    if not root:
        pytest.skip("LIVESTEMS_MUSDB is not set (e.g. LIVESTEMS_MUSDB=../shared/data/musdb18-7)")
    valid, train = musdb_tracks(root, "valid"), musdb_tracks(root, "train")
    assert sorted(r.name for r in valid) == sorted(MUSDB_VALID_TRACKS)
    assert not {r.name for r in train} & set(MUSDB_VALID_TRACKS)
    assert len(train) == 80
    track = load_tracks(valid[:1])[0]
    assert track.stack().shape == (4, track.n_samples, 2)
    # MUSDB's own mixture is kept: the sum of the stems up to AAC coding noise
    residual = track.mixture - track.stack().sum(axis=0)
    assert 10 * np.log10(np.sum(track.mixture**2) / np.sum(residual**2)) > 15


def sampler(tracks, **fields) -> ExcerptSampler:
    return ExcerptSampler(tracks, SamplingConfig(**{"excerpt_s": 0.25, **fields}))


def test_batches_are_reproducible_and_the_mixture_is_the_sum_of_the_targets() -> None:
    tracks = [noise_track(f"t{i}", 1.0, i) for i in range(3)]
    draw = sampler(tracks)
    batch = draw.batch(seed=7, epoch=2, index=5, batch_size=6)
    assert batch.targets.shape == (6, 4, 2, int(0.25 * RATE))
    torch.testing.assert_close(batch.mixture, batch.targets.sum(dim=1), rtol=0, atol=0)
    again = sampler(tracks).batch(seed=7, epoch=2, index=5, batch_size=6)
    assert torch.equal(batch.targets, again.targets)
    for other in (dict(index=6), dict(epoch=3), dict(rank=1)):
        arguments = {"seed": 7, "epoch": 2, "index": 5, "batch_size": 6, **other}
        assert not torch.equal(batch.targets, draw.batch(**arguments).targets)


def test_gains_and_channel_swaps_are_applied_per_source() -> None:
    # one song whose left channel is +1 and right channel -1 everywhere: any sample's source is
    # gain * (+1, -1) or, swapped, gain * (-1, +1)
    n = RATE
    stems = {stem: np.tile(np.float32([1.0, -1.0]), (n, 1)) for stem in STEMS}
    track = Track("dc", stems, np.sum(list(stems.values()), axis=0))
    batch = sampler([track], gain_range=(0.5, 0.75), remix_probability=0.0).batch(0, 0, 0, 64)
    left = batch.targets[:, :, 0, :]
    gains = left.abs()
    assert torch.all(gains.amax(dim=2) == gains.amin(dim=2))  # one gain per source excerpt
    assert 0.5 <= float(gains.min()) and float(gains.max()) <= 0.75
    swapped = (left[:, :, 0] < 0).float().mean()
    assert 0.3 < float(swapped) < 0.7
    # and sources in one sample get different gains
    assert float(gains[:, :, 0].std(dim=1).mean()) > 0.01


def test_remixing_takes_sources_from_different_songs() -> None:
    # each song a constant level per song: song k's sources are all at level k + 1
    tracks = []
    for k in range(4):
        stems = {stem: np.full((RATE, 2), 0.1 * (k + 1), np.float32) for stem in STEMS}
        tracks.append(Track(f"s{k}", stems, np.sum(list(stems.values()), axis=0)))
    config = dict(gain_range=(1.0, 1.0), channel_swap_probability=0.0)
    coherent = sampler(tracks, remix_probability=0.0, **config).batch(0, 0, 0, 32)
    levels = coherent.targets[:, :, 0, 0]
    assert torch.all(levels == levels[:, :1])
    remixed = sampler(tracks, remix_probability=1.0, **config).batch(0, 0, 0, 32)
    levels = remixed.targets[:, :, 0, 0]
    assert float((levels != levels[:, :1]).any(dim=1).float().mean()) > 0.5


def test_excerpts_whose_target_is_silent_are_drawn_again_unless_asked() -> None:
    # vocals silent in the first 3 s of a 4 s song: an excerpt of 0.25 s starting there has no
    # vocals to learn from
    silent = {"vocals": slice(0, 3 * RATE)}
    tracks = [noise_track("intro", 4.0, 5, silent)]
    vocals_rms = lambda batch: batch.targets[:, 0].pow(2).mean(dim=(1, 2)).sqrt()  # noqa: E731
    aware = sampler(tracks).batch(0, 0, 0, 64)
    assert float(vocals_rms(aware).min()) > 0.01
    kept = sampler(tracks, keep_silent=True).batch(0, 0, 0, 64)
    assert int((vocals_rms(kept) < 1e-6).sum()) > 20


def test_an_all_silent_stem_is_still_drawn_rather_than_looping_forever() -> None:
    tracks = [noise_track("no-bass", 1.0, 6, {"bass": slice(None)})]
    batch = sampler(tracks).batch(0, 0, 0, 4)
    assert float(batch.targets[:, 2].abs().max()) == 0.0
    assert float(batch.targets[:, 0].abs().max()) > 0.0


def test_songs_shorter_than_an_excerpt_are_padded() -> None:
    short = noise_track("short", 0.1, 8)
    batch = sampler([short]).batch(0, 0, 0, 2)
    assert batch.targets.shape[-1] == int(0.25 * RATE)


def test_batches_cut_from_songs_held_as_one_tensor_equal_the_numpy_path() -> None:
    """``to(device)`` (the GPU's path) gathers the same excerpts, gains and swaps, value for
    value; songs of different lengths included (the held tensor is padded to the longest)."""
    tracks = [noise_track(f"t{i}", 0.6 + 0.3 * i, i) for i in range(3)]
    numpy_path = sampler(tracks, remix_probability=0.5)
    held_path = sampler(tracks, remix_probability=0.5).to("cpu")
    for index in range(4):
        expected = numpy_path.batch(seed=3, epoch=1, index=index, batch_size=5)
        got = held_path.batch(seed=3, epoch=1, index=index, batch_size=5)
        assert torch.equal(got.targets, expected.targets)
        assert torch.equal(got.mixture, expected.mixture)


def test_packed_vorbis_songs_read_back_as_a_musdb_folder(tmp_path: Path) -> None:
    """``pack`` writes MUSDB18-HQ's layout in Ogg Vorbis: the validation songs with their
    mixture, the training songs without (the stems' sum mixes them); read at 44.1 kHz."""
    from livestems.models.data.pack import write_song

    songs = tmp_path / "packed" / "train"
    valid_song = tonal_song(MUSDB_VALID_TRACKS[0], 1, seconds=0.5)
    write_song(valid_song, songs / valid_song.name, True, 0.6)
    write_song(
        tonal_song("Some Artist - Some Song", 2, seconds=0.5),
        songs / "Some Artist - Some Song",
        False,
        0.6,
    )
    assert sorted(p.name for p in (songs / "Some Artist - Some Song").iterdir()) == sorted(
        f"{stem}.ogg" for stem in STEMS
    )
    train = load_tracks(musdb_tracks(tmp_path / "packed", "train"))
    valid = load_tracks(musdb_tracks(tmp_path / "packed", "valid"))
    assert [t.name for t in train] == ["Some Artist - Some Song"]
    assert train[0].n_samples == valid[0].n_samples == int(0.5 * RATE)
    np.testing.assert_array_equal(train[0].mixture, train[0].stack().sum(axis=0))
    # the validation song's own mixture file is read, within Vorbis's coding error
    error = valid[0].mixture - valid_song.mixture
    assert 10 * np.log10(np.sum(valid_song.mixture**2) / np.sum(error**2)) > 10
