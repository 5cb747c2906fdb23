"""Teacher stems (``livestems.models.data.teacher_stems``): a model's stems of the training songs,
written as a folder of songs that training reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livestems.models.data.datasets import (
    MUSDB_VALID_TRACKS,
    STEMS,
    load_tracks,
    stem_folder_tracks,
)
from livestems.models.data.teacher_stems import main, write_teacher_stems
from livestems.realtime.runtime.catalog import resolve_model
from livestems.realtime.runtime.separation import separate_signal
from tests.helpers.songs import tonal_song, write_song_folder

TEACHER = "lstm-ultra"  # the cheapest bundled model: any model file is a teacher


def _songs(root: Path, names: list[str]) -> Path:
    for seed, name in enumerate(names):
        write_song_folder(root, tonal_song(name, seed), with_mixture=False)
    return root


def test_teacher_stems_are_the_models_aligned_stems_and_train_as_songs(tmp_path: Path) -> None:
    songs = _songs(tmp_path / "songs", ["a", "b"])
    model = resolve_model(TEACHER, provider="cpu")
    folders = write_teacher_stems(model, stem_folder_tracks(songs), tmp_path / "teacher")
    assert [folder.name for folder in folders] == ["a", "b"]
    originals = load_tracks(stem_folder_tracks(songs))
    written = load_tracks(stem_folder_tracks(tmp_path / "teacher"))
    for original, taught in zip(originals, written, strict=True):
        expected = separate_signal(model, original.mixture)
        for index, stem in enumerate(STEMS):
            assert taught.stems[stem].shape == original.mixture.shape
            np.testing.assert_array_equal(taught.stems[stem], expected[index])
        # softmax masks: the stems sum to the mixture the teacher heard, which is what the
        # spectral path mixes the student's excerpts from
        residual = taught.mixture - original.mixture
        assert 20 * np.log10(np.linalg.norm(original.mixture) / np.linalg.norm(residual)) > 40
        # the teacher separates: its vocals are nearer the true vocals than the mix is
        vocals = original.stems["vocals"]
        assert np.linalg.norm(taught.stems["vocals"] - vocals) < np.linalg.norm(
            original.mixture - vocals
        )


def test_a_stopped_run_goes_on_where_it_was(tmp_path: Path) -> None:
    songs = _songs(tmp_path / "songs", ["a", "b"])
    model = resolve_model(TEACHER, provider="cpu")
    write_teacher_stems(model, stem_folder_tracks(songs)[:1], tmp_path / "teacher")
    kept = (tmp_path / "teacher" / "a" / "vocals.wav").stat().st_mtime_ns
    done: list[str] = []
    write_teacher_stems(model, stem_folder_tracks(songs), tmp_path / "teacher", done.append)
    assert done == ["b"]
    assert (tmp_path / "teacher" / "a" / "vocals.wav").stat().st_mtime_ns == kept


def test_another_teachers_folder_is_refused_and_kept(tmp_path: Path, capsys) -> None:
    """Stems of two teachers in one folder would train a student towards a mix of both."""
    songs = _songs(tmp_path / "songs", ["a", "b"])
    out = tmp_path / "teacher"
    assert main(["--folder", str(songs), "--model", TEACHER, "--out", str(out)]) == 0
    kept = (out / "a" / "vocals.wav").read_bytes()
    (out / "b" / "drums.wav").unlink()  # a stopped run: one song to go
    capsys.readouterr()
    assert main(["--folder", str(songs), "--model", "lstm-live", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "holds the stems of another teacher (lstm-ultra.onnx)" in error
    assert error.count("\n") == 1
    assert (out / "a" / "vocals.wav").read_bytes() == kept
    assert not (out / "b" / "drums.wav").exists()
    # the same teacher finishes the song it had left
    assert main(["--folder", str(songs), "--model", TEACHER, "--out", str(out)]) == 0
    assert (out / "b" / "drums.wav").exists()


def test_only_musdbs_train_split_is_written(tmp_path: Path, capsys) -> None:
    """A teacher's stems of a validation song would carry its references into training."""
    musdb = tmp_path / "musdb"
    _songs(musdb / "train", [MUSDB_VALID_TRACKS[0], "A Train Song"])
    assert main(["--musdb", str(musdb), "--model", TEACHER, "--out", str(tmp_path / "t")]) == 0
    assert sorted(p.name for p in (tmp_path / "t").iterdir() if p.is_dir()) == ["A Train Song"]
    assert "1 songs' teacher stems (lstm-ultra.onnx)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        ([], "No songs: give --musdb PATH or --folder PATH."),
        (["--folder", "{songs}", "--folder", "{songs}"], "Two songs are named 'a'"),
        (["--folder", "{songs}", "--model", "{songs}/a/vocals.wav"], "not a valid ONNX model"),
        (["--folder", "{broken}"], "not audio that libsndfile can read"),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(
    tmp_path: Path, capsys, arguments: list[str], sentence: str
) -> None:
    songs = _songs(tmp_path / "songs", ["a"])
    broken = _songs(tmp_path / "broken", ["c"])
    (broken / "c" / "drums.wav").write_bytes(b"not audio")
    out = tmp_path / "out"
    filled = [a.format(songs=songs, broken=broken) for a in arguments]
    assert main([*filled, "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert sentence in error and error.count("\n") == 1
    assert not out.exists()
