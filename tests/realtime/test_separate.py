"""The processor's whole-sequence path, and the parts of ``livestems separate`` that need no
model file (those that do are in ``tests/export/test_separate_onnx.py``: making one needs torch).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from livestems.realtime.commands.cli import main
from livestems.realtime.dsp.front_end import FrontEnd, StftFrontEnd, SubbandFrontEnd
from livestems.realtime.dsp.presets import PRESETS, SpectralPreset
from livestems.realtime.engine.processor import IdentityHopModel, StreamProcessor
from livestems.realtime.errors import UserError
from livestems.realtime.runtime import catalog as model_catalog
from livestems.realtime.runtime import separation as separate

ALL_PRESETS = list(PRESETS.values())


class SmoothedMagnitudeModel:
    """A stateful numpy model: each bin's mask follows a running mean of its magnitude, so a
    frame's masks depend on every frame before it (as an LSTM's do). ``run`` is ``step`` in a
    loop, so the two paths must agree bit for bit."""

    def __init__(self, path: FrontEnd, n_stems: int = 3) -> None:
        self.stems = tuple(f"stem{index}" for index in range(n_stems))
        self._state = np.zeros((path.n_feature_channels, path.n_bins), np.float32)
        self._weights = np.linspace(0.5, 2.0, n_stems, dtype=np.float32)[:, None, None]
        self.n_step_calls = 0
        self.n_run_calls = 0

    def reset(self) -> None:
        self._state.fill(0.0)

    def _masks(self, spectrum: np.ndarray) -> np.ndarray:
        self._state = np.float32(0.9) * self._state + np.float32(0.1) * np.abs(spectrum)
        logits = self._weights * self._state / (self._state + np.float32(1.0))
        return (np.exp(logits) / np.exp(logits).sum(axis=0)).astype(np.float32)

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        self.n_step_calls += 1
        return self._masks(spectrum)

    def run(self, spectra: np.ndarray) -> np.ndarray:
        self.n_run_calls += 1
        return np.stack([self._masks(spectrum) for spectrum in spectra])


def _paths(preset: SpectralPreset) -> list[FrontEnd]:
    return [StftFrontEnd(preset), SubbandFrontEnd(preset, 2, 4)]


def _noise(n_samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n_samples, 2)).astype(np.float32)


def _render(processor: StreamProcessor, signal: np.ndarray, sizes: list[int], how: str):
    """Feed ``signal`` in blocks (sizes cycled): ``live``, ``sequence`` or ``mixed`` (the two
    in turn)."""
    pieces, start, index = [], 0, 0
    while start < signal.shape[0]:
        stop = min(start + sizes[index % len(sizes)], signal.shape[0])
        sequence = how == "sequence" or (how == "mixed" and index % 2 == 0)
        run = processor.process_sequence if sequence else processor.process
        pieces.append(run(signal[start:stop]).copy())
        start, index = stop, index + 1
    return np.concatenate(pieces, axis=1)


def _processor(model, path: FrontEnd) -> StreamProcessor:
    processor = StreamProcessor(model, path.preset, path.n_channels, path)
    processor.prepare(path.preset.sample_rate, 512)
    return processor


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda preset: preset.name)
@pytest.mark.parametrize("how", ["sequence", "mixed"])
def test_sequence_path_equals_live_path_for_the_identity_model(
    preset: SpectralPreset, how: str
) -> None:
    for path in _paths(preset):
        signal = _noise(preset.n_fft * 5 + 77, seed=3)
        processor = _processor(IdentityHopModel.for_path(path), path)
        live = _render(processor, signal, [1000], "live")
        for sizes in ([2**16], [1, 64, 65, preset.hop, preset.hop + 1, 4096], [3001, 5]):
            processor.reset()
            np.testing.assert_array_equal(_render(processor, signal, sizes, how), live)


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda preset: preset.name)
def test_sequence_path_carries_model_state_across_chunks(preset: SpectralPreset) -> None:
    for path in _paths(preset):
        signal = _noise(preset.n_fft * 4 + 3 * preset.hop + 5, seed=4)
        model = SmoothedMagnitudeModel(path)
        processor = _processor(model, path)
        live = _render(processor, signal, [333], "live")
        for sizes, how in (([4096], "sequence"), ([2 * preset.hop + 7, 100], "mixed")):
            processor.reset()
            np.testing.assert_allclose(_render(processor, signal, sizes, how), live, atol=1e-6)


def test_one_model_call_per_chunk() -> None:
    path = StftFrontEnd(PRESETS["live"])
    model = SmoothedMagnitudeModel(path)
    processor = _processor(model, path)
    signal = _noise(2**14 * 3, seed=5)
    for start in range(0, signal.shape[0], 2**14):
        processor.process_sequence(signal[start : start + 2**14])
    assert (model.n_run_calls, model.n_step_calls) == (3, 0)
    # A block that completes no frame asks nothing of the model and still returns its samples.
    assert processor.process_sequence(signal[:1]).shape == (3, 1, 2)
    assert model.n_run_calls == 3


def test_sequence_path_checks_its_arguments() -> None:
    path = StftFrontEnd(PRESETS["live"])
    processor = _processor(IdentityHopModel.for_path(path), path)
    with pytest.raises(ValueError, match="expected a block of shape"):
        processor.process_sequence(np.zeros((10, 1), np.float32))
    with pytest.raises(ValueError, match="expected out of shape"):
        processor.process_sequence_into(np.zeros((10, 2), np.float32), np.zeros((9, 2), np.float32))


def test_song_names() -> None:
    assert separate.song_name(Path("a/Song One.stem.mp4")) == "Song One"
    assert separate.song_name(Path("b/take.2.flac")) == "take.2"
    names = separate.unique_names([Path("a/x.wav"), Path("b/x.flac"), Path("y.wav"), Path("x")])
    assert names == ["x", "x (2)", "y", "x (3)"]


def test_folders_expand_to_their_audio_files_sorted(tmp_path: Path) -> None:
    for name in ("b.flac", "a.wav", "c.stem.mp4", "notes.txt", ".hidden.wav", "D.MP3"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.wav").write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    expanded = separate.expand_inputs([tmp_path, "loose.ogg", empty])
    assert expanded[:5] == [tmp_path / n for n in ("D.MP3", "a.wav", "b.flac", "c.stem.mp4")] + [
        Path("loose.ogg")
    ]
    assert isinstance(expanded[5], UserError)
    assert str(expanded[5]) == (
        f'The folder "{empty}" holds no audio files (wav, flac, ogg, mp3, m4a, mp4).'
    )


def test_no_bundled_model_ends_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(model_catalog, "model_files", lambda: [])
    with pytest.raises(UserError, match="No model is installed with livestems"):
        model_catalog.find_model_file(None)
    assert main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        "livestems: No model is installed with livestems: pass --model FILE.onnx (make one with "
        "'livestems export').\n"
    )


def test_an_unknown_model_name_or_file_ends_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIVESTEMS_MODELS", str(tmp_path))
    out = str(tmp_path / "out")
    assert main(["separate", "x.wav", "-o", out, "--model", "nosuch"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("livestems: No model file or model named 'nosuch'")
    assert err.count("\n") == 1
    assert main(["separate", "x.wav", "-o", out, "--model", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("livestems: Cannot use model") and "no such file" in err


def test_progress_bar_draws_percent_speed_and_eta() -> None:
    stream = io.StringIO()
    bar = separate.ProgressBar("song.wav", stream, min_interval_s=0.0)
    bar(30.0, 120.0)
    bar(120.0, 120.0)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\rsong.wav   25%") and "x real time  ETA" in text
    assert "100%" in text and text.endswith("\r")
