"""Tests for livestems.realtime.io.audio_file: every format in, every bad file refused clearly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livestems.realtime.io import audio_file
from livestems.realtime.io.audio_file import (
    MUSDB_STREAMS,
    AudioFileError,
    audio_info,
    load_audio,
    load_musdb_stems,
    save_audio_atomic,
)

SR = 44100
HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed")
# One distinct tone per MUSDB stream, so that a wrong -map shows up as a wrong frequency.
STEM_FREQS = (300.0, 500.0, 700.0, 900.0, 1100.0)


def sine(freq: float, n_samples: int, rate: int = SR, n_channels: int = 2) -> np.ndarray:
    """A sine at 0.5 amplitude, the right channel at 0.8 of the left so channels stay told
    apart. [shape=(n_samples, n_channels)] float32."""
    t = np.arange(n_samples) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    gains = np.array([1.0, 0.8, 0.6][:n_channels])
    return (mono[:, None] * gains).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin of a 1-D signal."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def check_output(audio: np.ndarray) -> None:
    assert audio.dtype == np.float32
    assert audio.ndim == 2 and audio.shape[1] == 2
    assert audio.flags.c_contiguous


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# ------------------------------------------------------------------------------ formats


def test_wav_float_round_trip_is_exact(tmp_path: Path) -> None:
    ref = sine(440.0, SR // 2)
    sf.write(tmp_path / "a.wav", ref, SR, subtype="FLOAT")
    audio = load_audio(tmp_path / "a.wav", SR)
    check_output(audio)
    np.testing.assert_array_equal(audio, ref)


def test_flac_24bit_round_trip_is_within_quantisation(tmp_path: Path) -> None:
    ref = sine(440.0, SR // 2)
    sf.write(tmp_path / "a.flac", ref, SR, subtype="PCM_24")
    audio = load_audio(str(tmp_path / "a.flac"), SR)
    check_output(audio)
    assert audio.shape == ref.shape
    assert np.max(np.abs(audio - ref)) < 2.0**-22


@pytest.mark.parametrize("suffix", [".ogg", ".mp3"])
def test_lossy_round_trip_keeps_signal(tmp_path: Path, suffix: str) -> None:
    ref = sine(440.0, SR)
    sf.write(tmp_path / f"a{suffix}", ref, SR)
    audio = load_audio(tmp_path / f"a{suffix}", SR)
    check_output(audio)
    # Encoders may pad a frame; compare the overlap, aligned at the start (libsndfile trims
    # the encoder delay of both formats).
    assert abs(audio.shape[0] - ref.shape[0]) <= 2048
    n = min(audio.shape[0], ref.shape[0])
    for ch in range(2):
        assert corr(audio[:n, ch], ref[:n, ch]) > 0.99
    energy_ratio = np.sum(audio[:n] ** 2) / np.sum(ref[:n] ** 2)
    assert 0.9 < energy_ratio < 1.1
    assert peak_hz(audio[:, 0], SR) == pytest.approx(440.0, abs=2.0)


def test_mono_is_duplicated_to_stereo(tmp_path: Path) -> None:
    ref = sine(440.0, 1000, n_channels=1)
    sf.write(tmp_path / "mono.wav", ref, SR, subtype="FLOAT")
    audio = load_audio(tmp_path / "mono.wav", SR)
    check_output(audio)
    np.testing.assert_array_equal(audio[:, 0], ref[:, 0])
    np.testing.assert_array_equal(audio[:, 1], ref[:, 0])


def test_resampling_48k_to_44k1_keeps_length_and_pitch(tmp_path: Path) -> None:
    n_in = 48000
    sf.write(tmp_path / "a48.wav", sine(1000.0, n_in, rate=48000), 48000, subtype="FLOAT")
    audio = load_audio(tmp_path / "a48.wav", SR)
    check_output(audio)
    assert audio.shape[0] == round(n_in * SR / 48000)
    assert peak_hz(audio[:, 0], SR) == pytest.approx(1000.0, abs=1.5)
    # The level survives too: the middle of a 0.5-amplitude sine has RMS 0.5 / sqrt(2).
    rms = np.sqrt(np.mean(audio[1000:-1000, 0] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_audio_info_reads_the_header(tmp_path: Path) -> None:
    sf.write(tmp_path / "m.flac", sine(440.0, 12345, rate=22050, n_channels=1), 22050)
    info = audio_info(tmp_path / "m.flac")
    assert (info.sample_rate, info.n_channels, info.n_samples) == (22050, 1, 12345)
    assert info.duration_s == pytest.approx(12345 / 22050)
    assert info.format == "FLAC"
    assert info.n_streams == 1


def test_a_truncated_data_chunk_is_refused_saying_how_much_was_read(tmp_path: Path) -> None:
    # A valid header whose data chunk is cut short (a copy or download that stopped): libsndfile
    # reads what is there without a word, and stems of half a song look like a whole one.
    ref = sine(440.0, 4000)
    sf.write(tmp_path / "full.wav", ref, SR, subtype="FLOAT")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "short.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioFileError, match=r"truncated: its header promises 0\.09 s but only"):
        load_audio(tmp_path / "short.wav", SR)


def test_a_streamed_wav_of_unknown_length_is_read_whole(tmp_path: Path) -> None:
    # A wav written to a pipe (ffmpeg -f wav -) states no data size: not truncated.
    ref = sine(440.0, 4000)
    sf.write(tmp_path / "full.wav", ref, SR, subtype="FLOAT")
    data = bytearray((tmp_path / "full.wav").read_bytes())
    start = data.index(b"data")
    data[start + 4 : start + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(data))
    np.testing.assert_array_equal(load_audio(tmp_path / "streamed.wav", SR), ref)


# ------------------------------------------------------------------------------- ffmpeg


@pytest.fixture(scope="module")
def stem_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MUSDB-like .stem.mp4: five AAC streams, one tone each, 1 s at 44.1 kHz stereo."""
    if not HAS_FFMPEG:
        pytest.skip("ffmpeg/ffprobe not installed")
    folder = tmp_path_factory.mktemp("stems")
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    for i, freq in enumerate(STEM_FREQS):
        sf.write(folder / f"s{i}.wav", sine(freq, SR), SR, subtype="FLOAT")
        cmd += ["-i", str(folder / f"s{i}.wav")]
    for i in range(len(STEM_FREQS)):
        cmd += ["-map", f"{i}:a"]
    out = folder / "song.stem.mp4"
    subprocess.run([*cmd, "-c:a", "aac", "-b:a", "128k", str(out)], check=True)
    return out


@needs_ffmpeg
def test_stem_mp4_loads_the_stream_asked_for(stem_file: Path) -> None:
    for index, freq in enumerate(STEM_FREQS):
        audio = load_audio(stem_file, SR, stem_index=index)
        check_output(audio)
        assert abs(audio.shape[0] - SR) <= 2048  # AAC works in 1024-sample frames
        assert peak_hz(audio[:, 0], SR) == pytest.approx(freq, abs=2.0)
        assert corr(audio[:SR, 0], sine(freq, audio.shape[0])[:SR, 0]) > 0.99
        # The right channel was made at 0.8 of the left; channels must not be swapped.
        ratio = np.sqrt(np.sum(audio[:, 1] ** 2) / np.sum(audio[:, 0] ** 2))
        assert ratio == pytest.approx(0.8, abs=0.02)


@needs_ffmpeg
def test_load_musdb_stems_decodes_all_five(stem_file: Path) -> None:
    stems = load_musdb_stems(stem_file, 22050)
    assert tuple(stems) == MUSDB_STREAMS
    lengths = {a.shape[0] for a in stems.values()}
    assert len(lengths) == 1
    assert abs(lengths.pop() - 22050) <= 1024
    for (_, audio), freq in zip(stems.items(), STEM_FREQS, strict=True):
        check_output(audio)
        assert peak_hz(audio[:, 0], 22050) == pytest.approx(freq, abs=2.0)


@needs_ffmpeg
def test_audio_info_of_a_stem_file_counts_streams(stem_file: Path) -> None:
    info = audio_info(stem_file, stem_index=3)
    assert (info.sample_rate, info.n_channels, info.n_streams) == (SR, 2, 5)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)


@needs_ffmpeg
def test_m4a_mono_48k_goes_through_ffmpeg(tmp_path: Path) -> None:
    sf.write(tmp_path / "in.wav", sine(1000.0, 48000, rate=48000, n_channels=1), 48000)
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(tmp_path / "in.wav"),
            "-c:a",
            "aac",
            str(tmp_path / "voice.m4a"),
        ],
        check=True,
    )
    audio = load_audio(tmp_path / "voice.m4a", SR)
    check_output(audio)
    np.testing.assert_array_equal(audio[:, 0], audio[:, 1])
    assert abs(audio.shape[0] - SR) <= 2048
    assert peak_hz(audio[:, 0], SR) == pytest.approx(1000.0, abs=2.0)


# ------------------------------------------------------------------------------ bad input


def expect_refusal(path: Path, *contains: str, stem_index: int = 0) -> AudioFileError:
    """Load ``path`` and check the error is one sentence naming the file."""
    with pytest.raises(AudioFileError) as caught:
        load_audio(path, SR, stem_index=stem_index)
    message = str(caught.value)
    assert path.name in message
    assert message.startswith(f'Cannot load "{path}": ')
    assert message.endswith(".") and "\n" not in message
    # One sentence: no full stop before the last, except inside numbers like "0.500".
    body = message[:-1].replace(str(path), "")
    assert ". " not in body, message
    for text in contains:
        assert text in message, message
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    expect_refusal(tmp_path / "nowhere.wav", "no such file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.wav").mkdir()
    expect_refusal(tmp_path / "folder.wav", "directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "song.wav").write_bytes(b"")
    err = expect_refusal(tmp_path / "song.wav", "empty (0 bytes)")
    assert str(err) == f'Cannot load "{tmp_path / "song.wav"}": it is empty (0 bytes).'


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_text_renamed_as_audio(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"notes{suffix}"
    path.write_text("this is a shopping list, not a song\n" * 20)
    err = expect_refusal(path, "not audio")
    assert isinstance(err.__cause__, sf.LibsndfileError)


@needs_ffmpeg
def test_text_renamed_as_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.stem.mp4"
    path.write_text("this is a shopping list, not a song\n" * 20)
    expect_refusal(path, "ffprobe cannot read it")


def test_wav_cut_inside_its_header(tmp_path: Path) -> None:
    sf.write(tmp_path / "full.wav", sine(440.0, 1000), SR, subtype="FLOAT")
    for cut in (12, 30, 44):
        path = tmp_path / f"cut{cut}.wav"
        path.write_bytes((tmp_path / "full.wav").read_bytes()[:cut])
        err = expect_refusal(path, "damaged or truncated")
        assert isinstance(err.__cause__, sf.LibsndfileError)


def test_flac_cut_in_the_middle(tmp_path: Path) -> None:
    sf.write(tmp_path / "full.flac", sine(440.0, SR), SR)
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "half.flac").write_bytes(data[: len(data) // 2])
    expect_refusal(tmp_path / "half.flac", "damaged or truncated")


def test_zero_length_audio(tmp_path: Path) -> None:
    sf.write(tmp_path / "silent.wav", np.zeros((0, 2), np.float32), SR, subtype="FLOAT")
    assert audio_info(tmp_path / "silent.wav").n_samples == 0
    expect_refusal(tmp_path / "silent.wav", "no audio (0 samples)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path: Path, bad: float) -> None:
    audio = sine(440.0, SR)
    audio[SR // 2, 1] = bad
    audio[SR // 2 + 10, :] = bad
    sf.write(tmp_path / "broken.wav", audio, SR, subtype="FLOAT")
    expect_refusal(tmp_path / "broken.wav", "3 NaN or infinite", "0.500 s", "sample 22050")


def test_three_channels(tmp_path: Path) -> None:
    sf.write(tmp_path / "surround.wav", sine(440.0, 1000, n_channels=3), SR)
    expect_refusal(tmp_path / "surround.wav", "3 channels", "mono or stereo")


def test_stem_index_on_a_single_stream_file(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", sine(440.0, 1000), SR)
    expect_refusal(tmp_path / "a.wav", "stream 1 was asked for", stem_index=1)


@needs_ffmpeg
@pytest.mark.parametrize("index", [5, -1])
def test_stem_index_out_of_range(stem_file: Path, index: int) -> None:
    expect_refusal(
        stem_file, f"stream {index} was asked for", "5 audio streams (0 to 4)", stem_index=index
    )


@needs_ffmpeg
def test_musdb_loader_refuses_a_single_stream_file(tmp_path: Path) -> None:
    sf.write(tmp_path / "in.wav", sine(440.0, 4410), SR)
    path = tmp_path / "one.m4a"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(tmp_path / "in.wav"), str(path)], check=True
    )
    with pytest.raises(AudioFileError, match="1 audio stream"):
        load_musdb_stems(path, SR)


def test_ffmpeg_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "song.stem.mp4"
    path.write_bytes(b"\0" * 100)  # never opened: the check for ffmpeg comes first
    monkeypatch.setattr(audio_file.shutil, "which", lambda name: None)
    expect_refusal(path, "needs ffmpeg; install it with apt-get install ffmpeg")


# ---------------------------------------------------------------------------------- save


@pytest.mark.parametrize(("suffix", "tolerance"), [(".wav", 0.0), (".flac", 2.0**-22)])
def test_save_atomic_round_trip(tmp_path: Path, suffix: str, tolerance: float) -> None:
    ref = sine(440.0, 4410)
    path = tmp_path / f"out{suffix}"
    path.write_bytes(b"old contents")  # replaced whole
    save_audio_atomic(path, ref, SR)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 != 0o600  # not mkstemp's private mode
    audio = load_audio(path, SR)
    assert np.max(np.abs(audio - ref)) <= tolerance


def test_save_atomic_ogg_and_bad_suffix(tmp_path: Path) -> None:
    save_audio_atomic(tmp_path / "out.ogg", sine(440.0, SR), SR)
    assert peak_hz(load_audio(tmp_path / "out.ogg", SR)[:, 0], SR) == pytest.approx(440, abs=2)
    with pytest.raises(AudioFileError, match="suffix"):
        save_audio_atomic(tmp_path / "out.xyz", sine(440.0, 100), SR)
    assert sorted(os.listdir(tmp_path)) == ["out.ogg"]


# ------------------------------------------------------------------------- real MUSDB data


@needs_ffmpeg
def test_real_musdb_track() -> None:
    root = os.environ.get("LIVESTEMS_MUSDB")
    if not root:
        pytest.skip("LIVESTEMS_MUSDB is not set (e.g. LIVESTEMS_MUSDB=../shared/data/musdb18-7)")
    tracks = sorted(Path(root).glob("train/*.stem.mp4"))
    if not tracks:
        pytest.skip(f"no train/*.stem.mp4 under LIVESTEMS_MUSDB={root}")
    info = audio_info(tracks[0])
    assert (info.sample_rate, info.n_channels, info.n_streams) == (44100, 2, 5)
    stems = load_musdb_stems(tracks[0], 44100)
    mixture = stems["mixture"]
    assert mixture.shape[1] == 2 and mixture.shape[0] > 44100
    assert all(a.shape == mixture.shape for a in stems.values())
    total = sum(stems[name] for name in MUSDB_STREAMS[1:])
    # Over all 94 tracks of MUSDB18-7: correlation >= 0.998 and 24-33 dB SDR (AAC noise).
    assert corr(total, mixture) > 0.99
    sdr = 10 * np.log10(np.sum(mixture**2) / np.sum((mixture - total) ** 2))
    assert sdr > 15.0
