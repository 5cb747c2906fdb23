"""Songs with the guitar known (``livestems.models.data.guitar_songs``): Frets on Fire's two
parts, the band split by a teacher and the true guitar in ``other``, cut into training songs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livestems.models.data.datasets import STEMS, load_tracks, stem_folder_tracks
from livestems.models.data.guitar_songs import (
    find_guitar_songs,
    main,
    segment_starts,
    write_guitar_songs,
)
from livestems.realtime.errors import UserError
from livestems.realtime.io.audio_file import load_audio, save_audio_atomic
from livestems.realtime.runtime.catalog import resolve_model
from livestems.realtime.runtime.separation import separate_signal
from tests.helpers.songs import tonal_song

TEACHER = "lstm-ultra"  # the cheapest bundled model: any model file is a teacher
RATE = 44100


def _pack(root: Path, names: list[str], seconds: float = 2.5) -> Path:
    """A song pack as Frets on Fire lays it out: ``song.ogg`` (the band) and ``guitar.ogg``."""
    for seed, name in enumerate(names):
        song = tonal_song(name, seed, seconds)
        folder = root / "pack" / name
        folder.mkdir(parents=True)
        band = song.stems["vocals"] + song.stems["drums"] + song.stems["bass"]
        save_audio_atomic(folder / "song.ogg", band / (2 * np.abs(band).max()), RATE)
        save_audio_atomic(folder / "guitar.ogg", song.stems["other"], RATE)
    return root


def test_the_guitar_is_true_the_rest_is_the_teachers_and_the_stems_sum_to_the_song(
    tmp_path: Path,
) -> None:
    root = _pack(tmp_path / "songs", ["Song A", "b"])
    model = resolve_model(TEACHER, provider="cpu")
    folders = write_guitar_songs(model, find_guitar_songs(root), tmp_path / "out", segment_s=0.5)
    # 2.5 s in segments of 0.5 s, every second one kept: 0, 1 and 2 s
    assert [f.name for f in folders] == [
        f"pack-{s}-{k:03d}" for s in ("song_a", "b") for k in range(3)
    ]
    band = load_audio(root / "pack" / "Song A" / "song.ogg", RATE)
    guitar = load_audio(root / "pack" / "Song A" / "guitar.ogg", RATE)
    n = min(len(band), len(guitar))
    teacher = separate_signal(model, np.ascontiguousarray(band[:n]))
    segment = RATE // 2
    written = [t for t in load_tracks(stem_folder_tracks(tmp_path / "out")) if "song_a" in t.name]
    assert len(written) == 3
    for k, track in enumerate(written):
        cut = slice(k * 2 * segment, k * 2 * segment + segment)
        for index, stem in enumerate(STEMS):
            expected = teacher[index, cut]
            if stem == "other":  # the true guitar joins the teacher's other
                expected = expected + guitar[cut]
            np.testing.assert_allclose(track.stems[stem], expected, atol=1e-6)
        # the training mix (the stems' sum) is the whole song: softmax masks sum to the band
        song = band[cut] + guitar[cut]
        residual = track.mixture - song
        assert 20 * np.log10(np.linalg.norm(song) / np.linalg.norm(residual)) > 40


def test_a_stopped_run_goes_on_and_a_broken_part_is_skipped_and_named(tmp_path: Path) -> None:
    root = _pack(tmp_path / "songs", ["a", "b", "c"])
    (root / "pack" / "b" / "guitar.ogg").write_bytes(b"not audio")
    (root / "pack" / "c" / "song.ogg").unlink()  # one part only: not a song
    lines: list[str] = []
    songs = find_guitar_songs(root, lines.append)
    assert [s.name for s in songs] == ["pack-a", "pack-b"]
    assert lines == [f"skipped pack-c: {root / 'pack' / 'c'} has guitar.ogg but no song.ogg."]
    lines.clear()
    model = resolve_model(TEACHER, provider="cpu")
    folders = write_guitar_songs(
        model, songs, tmp_path / "out", segment_s=1.0, every=1, report=lines.append
    )
    assert [f.name for f in folders] == ["pack-a-000", "pack-a-001"]
    assert lines[0] == "pack-a: 2 segments"
    assert lines[1].startswith("skipped pack-b: ") and "guitar.ogg" in lines[1]
    kept = (tmp_path / "out" / "pack-a-000" / "other.wav").stat().st_mtime_ns
    lines.clear()
    write_guitar_songs(
        model, songs[:1], tmp_path / "out", segment_s=1.0, every=1, report=lines.append
    )
    assert lines == []
    assert (tmp_path / "out" / "pack-a-000" / "other.wav").stat().st_mtime_ns == kept
    # a song shorter than one segment gives none, and says so
    write_guitar_songs(model, songs[:1], tmp_path / "out", segment_s=9.0, report=lines.append)
    assert lines == ["skipped pack-a: shorter than one segment (9 s)."]


def test_segments_are_whole_and_every_nth() -> None:
    assert segment_starts(10, 3, 1) == [0, 3, 6]
    assert segment_starts(10, 3, 2) == [0, 6]
    assert segment_starts(2, 3, 1) == []


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda root: None, "is not a folder"),
        (lambda root: root.mkdir(), "holds no Frets on Fire song"),
    ],
)
def test_no_songs_is_one_sentence(tmp_path: Path, capsys, make, words: str) -> None:
    make(tmp_path / "songs")
    assert main(["--songs", str(tmp_path / "songs"), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert words in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_another_teachers_folder_is_refused(tmp_path: Path, capsys) -> None:
    root = _pack(tmp_path / "songs", ["a"], seconds=1.5)
    out = tmp_path / "out"
    args = ["--songs", str(root), "--out", str(out), "--segment-s", "1"]
    assert main([*args, "--model", TEACHER]) == 0
    assert (
        "1 training songs cut from 1 Frets on Fire songs (lstm-ultra.onnx)"
        in capsys.readouterr().out
    )
    assert main([*args, "--model", "lstm-live"]) == 1
    assert "holds the stems of another teacher (lstm-ultra.onnx)" in capsys.readouterr().err
    with pytest.raises(UserError, match="--segment-s must be above 0"):
        write_guitar_songs(resolve_model(TEACHER, provider="cpu"), [], out, segment_s=0)


def test_the_guitar_alone_is_other_with_the_rest_silent_and_no_teacher(
    tmp_path: Path, capsys
) -> None:
    """``--guitar-only``: every target true, the guitar a source of ``other`` for remixes."""
    root = _pack(tmp_path / "songs", ["a"], seconds=2.5)
    out = tmp_path / "out"
    args = ["--songs", str(root), "--out", str(out), "--segment-s", "1", "--every", "1"]
    assert main([*args, "--guitar-only"]) == 0
    assert "(no teacher: the guitar alone)" in capsys.readouterr().out
    guitar = load_audio(root / "pack" / "a" / "guitar.ogg", RATE)
    tracks = load_tracks(stem_folder_tracks(out))
    assert [t.name for t in tracks] == ["pack-a-000", "pack-a-001"]
    for k, track in enumerate(tracks):
        np.testing.assert_array_equal(track.stems["other"], guitar[k * RATE : (k + 1) * RATE])
        for stem in ("vocals", "drums", "bass"):
            assert not track.stems[stem].any()
    # a teacher's stems never join the guitar alone in one folder, nor the other way round
    assert main([*args, "--model", TEACHER]) == 1
    assert "holds the stems of another teacher (no teacher: the guitar alone)" in (
        capsys.readouterr().err
    )
    assert main([*args, "--guitar-only", "--model", TEACHER]) == 1
    assert "--guitar-only uses no teacher" in capsys.readouterr().err
