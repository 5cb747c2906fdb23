"""``livestems practice`` against the engine: the offline render of a practice track equals,
sample for sample, what the engine plays offline with the same settings (tempo, key, count-in,
loop, faders), with the engine's latency cut; and the command's bad values end in one
sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("pylibrb")

from livestems.realtime.backends.portaudio import OfflineBackend, Recorder  # noqa: E402
from livestems.realtime.engine.engine import Engine, EngineSettings  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor  # noqa: E402
from livestems.realtime.io.generated_song import generated_song  # noqa: E402
from livestems.realtime.practice.practice_source import PracticeSource  # noqa: E402
from livestems.realtime.practice.render import (  # noqa: E402
    PracticeSettings,
    configure_mixer,
    configure_source,
    render_practice,
)
from livestems.realtime.runtime.onnx_model import OnnxHopModel  # noqa: E402
from tests.helpers.tiny_model import MODEL  # noqa: E402

RATE = 44100
BLOCK = 256


#: A beat grid at 100 BPM for the generated song, downbeats every fourth beat.
BEATS = np.arange(0.1, 4.0, 0.6)
DOWNBEATS = BEATS[::4]


def engine_render(song: np.ndarray, settings: PracticeSettings, n_samples: int) -> np.ndarray:
    """What the engine plays offline: [shape=(n_samples, 2)], its latency cut."""
    processor = StreamProcessor.for_model(OnnxHopModel(MODEL))
    engine = Engine(processor, EngineSettings(RATE, BLOCK), PracticeSource(song, RATE, 4 * BLOCK))
    configure_source(engine.source, settings, BEATS, 100.0, DOWNBEATS)
    configure_mixer(engine.mixer, engine.processor, settings)
    engine.reset()
    latency = engine.latency_samples
    recorder = Recorder(n_samples + latency, 2)
    OfflineBackend(engine, recorder).render(n_samples + latency)
    assert engine.telemetry.snapshot().underruns == 0 and engine.source.underruns == 0
    return recorder.recorded[latency:]


@pytest.mark.parametrize(
    "settings",
    [
        PracticeSettings(),
        PracticeSettings(
            tempo=0.8,
            transpose=-2.0,
            count_in=True,
            loop=(1.0, 2.5),
            loop_passes=2,
            gains_db={"drums": -6.0},
            mute=("vocals",),
            pans={"bass": -0.5, "other": 1.0},
            bleed_gates_db={"drums": -30.0},
        ),
        PracticeSettings(tempo=1.25, transpose=0.5, solo=("bass",), start=0.5),
        PracticeSettings(
            tempo=0.9, click=True, gains_db={"click": -3.0}, pans={"click": 0.5}, count_in=True
        ),
    ],
    ids=["as-recorded", "slow-lower-count-in-loop", "fast-solo", "click-stem"],
)
def test_the_practice_render_is_the_engines_offline_render(settings: PracticeSettings) -> None:
    song = generated_song(4.0)
    track = render_practice(
        StreamProcessor.for_model(OnnxHopModel(MODEL)), song, settings, BEATS, 100.0, DOWNBEATS
    )
    n = track.shape[0] - 2 * BLOCK  # the engine's last block may hold the song's end
    played = engine_render(song, settings, n)
    assert np.abs(played).max() > 0.01
    np.testing.assert_allclose(played, track[:n], atol=2e-5)


def test_the_command_writes_a_track_and_refuses_bad_values_in_one_sentence(
    tmp_path: Path,
) -> None:
    song = tmp_path / "song.wav"
    soundfile.write(song, generated_song(3.0), RATE)
    out = tmp_path / "track.wav"

    def practice(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "livestems.realtime.commands.cli",
                "practice",
                str(song),
                "-o",
                str(out),
                "--model",
                str(MODEL),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    done = practice("--tempo", "0.8", "--mute", "vocals")
    assert done.returncode == 0, done.stderr
    track, rate = soundfile.read(out)
    assert rate == RATE and track.shape[0] == pytest.approx(3.0 / 0.8 * RATE, abs=RATE * 0.01)
    for extra, words in [
        (("--tempo", "0"), "Tempo must be between 0.5 and 1.5"),
        (("--tempo", "3"), "Tempo must be between 0.5 and 1.5"),
        (("--transpose", "30"), "Transpose must be between -12 and +12"),
        (("--loop", "2-1"), "The loop's end B must come after its start A"),
        (("--mute", "kazoo"), "No stem called 'kazoo'"),
        (("--gate", "click=-40"), "No stem called 'click'"),
        (("--pan", "bass=2"), "Pan must be between -1 and 1"),
        (("--gate", "drums=10"), "The bleed gate's threshold is a level below"),
    ]:
        done = practice(*extra)
        assert done.returncode == 1, extra
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (extra, done.stderr)


def test_the_click_stem_clicks_on_the_grid_at_any_tempo_and_is_off_by_default() -> None:
    song = np.zeros((4 * RATE, 2), np.float32)  # silence: only the clicks are heard
    processor = StreamProcessor.for_model(OnnxHopModel(MODEL))
    silent = render_practice(processor, song, PracticeSettings(), BEATS, 100.0, DOWNBEATS)
    assert np.abs(silent).max() < 1e-4
    for tempo in (1.0, 0.8):
        settings = PracticeSettings(tempo=tempo, click=True)
        track = render_practice(processor, song, settings, BEATS, 100.0, DOWNBEATS)
        loud = np.flatnonzero(np.abs(track[:, 0]) > 0.2)
        onsets = loud[np.concatenate([[True], np.diff(loud) > RATE // 10])]
        expected = np.round(BEATS / tempo * RATE)
        assert len(onsets) == len(BEATS)
        np.testing.assert_allclose(onsets, expected, atol=0.002 * RATE)
