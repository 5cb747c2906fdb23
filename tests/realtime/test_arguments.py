"""Numbers and paths from the command line are checked before any work (issue 15, cases 6-7):
a usage error naming the option, or one sentence, never a traceback or a run that does nothing
and exits 0."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livestems.realtime.commands.cli import main
from livestems.realtime.io.audio_file import AudioFileError, audio_info, load_audio

BAD_NUMBERS = [
    ["play", "song.wav", "--block-size", "0"],
    ["play", "song.wav", "--block-size", "-1"],
    ["play", "song.wav", "--start", "nan"],
    ["play", "song.wav", "--start", "-1"],
    ["play", "song.wav", "--duration", "-3"],
    ["play", "song.wav", "--duration", "0"],
    ["play", "song.wav", "--duration", "nan"],
    ["live", "--block-size", "0"],
    ["live", "--duration", "inf"],
    ["bench", "--block-sizes", "0"],
    ["bench", "--block-sizes=-5"],
    ["bench", "--stream-seconds", "nan"],
    ["separate", "song.wav", "-o", "out", "--threads", "100000"],
    ["separate", "song.wav", "-o", "out", "--threads", "0"],
]


@pytest.mark.parametrize("argv", BAD_NUMBERS, ids=" ".join)
def test_numbers_out_of_range_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"livestems {argv[0]}: error: argument --")


def _wav_claiming(path: Path, rate: int) -> Path:
    sf.write(path, np.zeros((1000, 2), np.float32), 44100, subtype="PCM_16")
    header = bytearray(path.read_bytes())
    header[24:28] = struct.pack("<I", rate)  # the fmt chunk's sample rate
    path.write_bytes(bytes(header))
    return path


@pytest.mark.parametrize("rate", [1, 7999, 384001, 2**31 - 1])
def test_a_header_rate_outside_8k_to_384k_is_refused(tmp_path: Path, rate: int) -> None:
    path = _wav_claiming(tmp_path / "odd.wav", rate)
    for read in (audio_info, lambda p: load_audio(p, 44100)):
        with pytest.raises(AudioFileError, match=f"sample rate of {rate} Hz"):
            read(path)


def test_separate_refuses_a_damaged_rate_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _wav_claiming(tmp_path / "odd.wav", 2**31 - 1)
    assert main(["separate", str(path), "-o", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out" / "odd").exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_bench_checks_its_output_folder_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("")
    assert main(["bench", "--quick", "--no-stream", "-o", str(a_file)]) == 1
    assert capsys.readouterr().err.startswith(f'livestems: -o "{a_file}" is a file')


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_export_checks_its_output_before_exporting(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    (tmp_path / "afile").write_text("")
    (tmp_path / "folder.onnx").mkdir()
    output = tmp_path / ("afile/x.onnx" if where == "under a file" else "folder.onnx")
    assert main(["export", "--random", "lstm", "--size", "small", "-o", str(output)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("livestems: ") and error.count("\n") == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_into_a_read_only_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    output = folder / "x.onnx"
    assert main(["export", "--random", "lstm", "--size", "small", "-o", str(output)]) == 1
    assert "Cannot write into the folder" in capsys.readouterr().err
