"""``livestems separate`` with real model files: the sequence path equals the live path through
onnxruntime, and the stems written line up with the song and add up to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import soundfile as sf  # noqa: E402
import soxr  # noqa: E402

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.families.cws import CwsConfig  # noqa: E402
from livestems.models.families.registry import get_family  # noqa: E402
from livestems.realtime.commands.cli import main  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor  # noqa: E402
from livestems.realtime.runtime.onnx_model import OnnxHopModel  # noqa: E402
from livestems.realtime.runtime.separation import separate_file  # noqa: E402
from tests.helpers.networks import randomized  # noqa: E402

STEMS = ("vocals", "drums", "bass", "other")
RATE = 44100


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight softmax models (their stems sum to the mix): lstm and cws, small, live."""
    folder = tmp_path_factory.mktemp("models")
    configs = {
        "lstm": get_family("lstm").config("small", preset="live"),
        "cws": CwsConfig(preset="live", channels=4, depth=2),
    }
    paths = {}
    for name, config in configs.items():
        assert config.mask == "softmax"
        paths[name] = folder / f"{name}.onnx"
        export_onnx(randomized(config, seed=41), paths[name])
    return paths


def _music(n_samples: int, seed: int, rate: int = RATE, n_channels: int = 2) -> np.ndarray:
    """[shape=(n_samples, n_channels)]: tones and noise, below full scale."""
    t = np.arange(n_samples)[:, None] / rate
    tones = sum(
        np.sin(2 * np.pi * f * t + phase) / (i + 2)
        for i, (f, phase) in enumerate(((110, 0.0), (440, 1.0), (1320, 2.0)))
    )
    noise = 0.1 * np.random.default_rng(seed).standard_normal((n_samples, n_channels))
    return (0.5 * tones + noise)[:, :n_channels].astype(np.float32)


def _write(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    sf.write(path, audio, rate, subtype="FLOAT")
    return path


def _stems(folder: Path, suffix: str = "wav") -> dict[str, tuple[np.ndarray, int]]:
    return {
        stem: sf.read(folder / f"{stem}.{suffix}", dtype="float32", always_2d=True)
        for stem in STEMS
    }


def _processor(model: OnnxHopModel) -> StreamProcessor:
    meta = model.metadata
    processor = StreamProcessor.for_model(model)
    processor.prepare(meta.sample_rate, 4096)
    return processor


@pytest.mark.parametrize("family", ["lstm", "cws"])
def test_sequence_path_equals_live_path_in_onnxruntime(
    models: dict[str, Path], family: str
) -> None:
    model = OnnxHopModel(models[family], provider="cpu")
    processor = _processor(model)
    signal = _music(60 * model.metadata.preset.hop + 123, seed=1)
    live = np.concatenate(
        [processor.process(signal[i : i + 300]).copy() for i in range(0, signal.shape[0], 300)],
        axis=1,
    )
    for sizes in ([2**12], [5000, 257, 1, 3333]):
        processor.reset()
        pieces, start, index = [], 0, 0
        while start < signal.shape[0]:
            stop = min(start + sizes[index % len(sizes)], signal.shape[0])
            pieces.append(processor.process_sequence(signal[start:stop]))
            start, index = stop, index + 1
        assert len(pieces) > 3  # state crosses several chunk boundaries
        np.testing.assert_allclose(np.concatenate(pieces, axis=1), live, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", ["lstm", "cws"])
def test_stems_line_up_with_the_song_and_add_up_to_it(
    models: dict[str, Path], family: str, tmp_path: Path
) -> None:
    song = _music(3 * RATE + 77, seed=2)
    source = _write(tmp_path / "My Song.wav", song)
    model = OnnxHopModel(models[family], provider="cpu")
    seen: list[tuple[float, float]] = []
    report = separate_file(
        source,
        model,
        tmp_path / "out",
        chunk_seconds=0.3,
        progress=lambda done, total: seen.append((done, total)),
    )
    folder = tmp_path / "out" / "My Song"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.wav" for s in STEMS)
    assert report.outputs == {stem: folder / f"{stem}.wav" for stem in STEMS}
    assert report.duration_s == pytest.approx(song.shape[0] / RATE)
    assert report.wall_s > 0 and report.real_time_factor == report.wall_s / report.duration_s
    assert report.sample_rate == RATE and report.aligned
    stems = _stems(folder)
    for audio, rate in stems.values():
        assert rate == RATE and audio.shape == song.shape
    total = sum(audio for audio, _ in stems.values())
    np.testing.assert_allclose(total, song, atol=1e-3, rtol=0)
    # Aligned: each stem is the live processor's output, moved back by its latency.
    processor = _processor(model)
    latency = processor.latency_samples
    padded = np.concatenate([song, np.zeros((latency, 2), np.float32)])
    live = np.concatenate(
        [processor.process(padded[i : i + 4096]).copy() for i in range(0, len(padded), 4096)],
        axis=1,
    )
    for index, stem in enumerate(STEMS):
        np.testing.assert_allclose(stems[stem][0], live[index, latency:], atol=1e-4, rtol=0)
    assert seen[-1] == (pytest.approx(report.duration_s), report.duration_s)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and len(seen) >= 10


def test_mono_48k_song_gives_mono_48k_stems(models: dict[str, Path], tmp_path: Path) -> None:
    song = _music(2 * 48000 + 5, seed=3, rate=48000, n_channels=1)
    source = tmp_path / "mono.flac"
    sf.write(source, song, 48000, subtype="PCM_24")
    song = sf.read(source, dtype="float32", always_2d=True)[0]
    model = OnnxHopModel(models["lstm"], provider="cpu")
    report = separate_file(source, model, tmp_path / "out", format="flac")
    assert report.sample_rate == 48000
    stems = _stems(tmp_path / "out" / "mono", "flac")
    for audio, rate in stems.values():
        assert rate == 48000 and audio.shape == song.shape
    total = sum(audio for audio, _ in stems.values())
    # The stems add up to the song as the model's rate carries it there and back (the white
    # noise above 22.05 kHz cannot pass a 44.1 kHz model).
    round_trip = soxr.resample(soxr.resample(song, 48000, RATE, "HQ"), RATE, 48000, "HQ")
    np.testing.assert_allclose(total, round_trip[: song.shape[0]], atol=1e-3, rtol=0)


@pytest.mark.slow
def test_a_mono_model_separates_each_channel_of_a_stereo_song(tmp_path: Path) -> None:
    model_path = tmp_path / "mono.onnx"
    config = get_family("lstm").config("small", preset="live", n_channels=1)
    export_onnx(randomized(config, seed=42), model_path)
    model = OnnxHopModel(model_path, provider="cpu")
    song = _music(RATE + 321, seed=7)
    separate_file(_write(tmp_path / "stereo.wav", song), model, tmp_path / "out")
    for channel in (0, 1):
        source = _write(tmp_path / f"channel{channel}.wav", song[:, channel])
        separate_file(source, model, tmp_path / "out")
        alone = _stems(tmp_path / "out" / f"channel{channel}")
        for stem, (audio, _) in _stems(tmp_path / "out" / "stereo").items():
            assert alone[stem][0].shape == (song.shape[0], 1)
            np.testing.assert_allclose(audio[:, channel], alone[stem][0][:, 0], atol=1e-6)


def test_command_line_folder_flac_and_no_align(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    songs = tmp_path / "songs"
    songs.mkdir()
    audio = {name: _music(RATE + 1000 * i, seed=i) for i, name in enumerate(("b", "a"))}
    for name, song in audio.items():
        _write(songs / f"{name}.wav", song)
    (songs / "cover.jpg").write_bytes(b"\xff\xd8")
    out = tmp_path / "out"
    model = str(models["lstm"])
    assert main(["separate", str(songs), "-o", str(out), "--model", model, "--no-align"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{songs / 'a.wav'} -> {out / 'a'}/ (vocals, drums, bass, other)")
    assert lines[-1] == f"Separated 2 of 2 songs into {out}."
    latency = OnnxHopModel(models["lstm"]).metadata.latency_samples
    for name, song in audio.items():
        total = sum(a for a, _ in _stems(out / name).values())
        # Not aligned: the stems are delayed by the latency, and that much longer.
        assert total.shape == (song.shape[0] + latency, 2)
        np.testing.assert_allclose(total[latency:], song, atol=1e-3, rtol=0)
        np.testing.assert_allclose(total[:latency], 0.0, atol=1e-3)
    assert main(["separate", str(songs / "a.wav"), "-o", str(out), "--model", model,
                 "--format", "flac", "--provider", "cpu"]) == 0  # fmt: skip
    stems = _stems(out / "a", "flac")
    assert all(a.shape == audio["a"].shape for a, _ in stems.values())


def test_a_bad_file_among_good_ones(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path / "good.wav", _music(RATE // 2, seed=4))
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    other = tmp_path / "other" / "good.wav"
    other.parent.mkdir()
    _write(other, _music(RATE // 2, seed=5))
    out = tmp_path / "out"
    args = [str(good), str(bad), str(tmp_path / "missing.mp3"), str(other), "-o", str(out)]
    assert main(["separate", *args, "--model", str(models["lstm"])]) == 1
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert errors == [
        f'livestems: Cannot load "{bad}": it is not audio that libsndfile can read '
        "(not a valid WAV file).",
        f'livestems: Cannot load "{tmp_path / "missing.mp3"}": no such file.',
    ]
    assert captured.out.splitlines()[-1] == f"Separated 2 of 4 songs into {out}."
    # Both good files, the second under its own folder; nothing half-written anywhere.
    assert sorted(p.name for p in out.iterdir()) == ["good", "good (2)"]
    for folder in out.iterdir():
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.wav" for s in STEMS)


def test_model_by_name_and_progress_on_stderr(
    models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LIVESTEMS_MODELS", str(models["cws"].parent))
    song = _write(tmp_path / "song.wav", _music(RATE, seed=6))
    out = tmp_path / "out"
    assert main(["separate", str(song), "-o", str(out), "--model", "cws", "--progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("\rsong.wav ") and "100%" in err and "x real time  ETA" in err
    assert sorted(p.name for p in (out / "song").iterdir()) == sorted(f"{s}.wav" for s in STEMS)
    # Without --progress and without a terminal, stderr stays quiet.
    assert main(["separate", str(song), "-o", str(out), "--model", "cws"]) == 0
    assert capsys.readouterr().err == ""
