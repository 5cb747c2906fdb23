"""The bleed gate: a stem's bins far below its frame's peak are silenced (off by default), the
same in the live and the sequence path, set from any thread, bad thresholds refused."""

from __future__ import annotations

import numpy as np
import pytest

from livestems.realtime.dsp.presets import PRESETS
from livestems.realtime.engine.processor import IdentityHopModel, StreamProcessor

RATE = 44100


def two_tones(seconds: float = 1.0) -> np.ndarray:
    """1 kHz at 0.5 and 5 kHz 60 dB below it, stereo [shape=(n, 2)]."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.5 * np.sin(2 * np.pi * 1000 * t) + 0.0005 * np.sin(2 * np.pi * 5000 * t)
    return np.stack([x, x], axis=1).astype(np.float32)


def level_db(x: np.ndarray, frequency: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    k = int(round(frequency * x.shape[0] / RATE))
    return float(20 * np.log10(spectrum[k - 2 : k + 3].max() + 1e-20))


def processor(gate_db: float | None) -> StreamProcessor:
    preset = PRESETS["live"]
    p = StreamProcessor(IdentityHopModel(preset), preset)
    p.prepare(RATE, 4096)
    p.set_bleed_gate(0, gate_db)
    return p


def test_the_gate_silences_what_is_far_below_the_stems_peak_and_keeps_the_rest() -> None:
    signal = two_tones()
    open_ = processor(None).process(signal)[0, RATE // 4 :, 0]
    gated = processor(-40.0).process(signal)[0, RATE // 4 :, 0]
    # off: the quiet tone is there, 60 dB down
    assert level_db(open_, 5000) - level_db(open_, 1000) == pytest.approx(-60, abs=3)
    # on at -40 dB: it is gone (more than 100 dB down), the loud tone untouched
    assert level_db(gated, 5000) - level_db(gated, 1000) < -100
    assert level_db(gated, 1000) == pytest.approx(level_db(open_, 1000), abs=0.1)
    # a gate below the quiet tone keeps it
    kept = processor(-80.0).process(signal)[0, RATE // 4 :, 0]
    assert level_db(kept, 5000) == pytest.approx(level_db(open_, 5000), abs=1)


def test_live_and_sequence_paths_gate_alike() -> None:
    signal = two_tones(0.5)
    live = processor(-30.0)
    sequence = processor(-30.0)
    # process() returns a view of its own buffer: each block is copied out
    blocks = [live.process(signal[i : i + 65]).copy() for i in range(0, 22050, 65)]
    out_live = np.concatenate(blocks, 1)
    out_sequence = np.zeros((signal.shape[0], 2), np.float32)
    sequence.process_sequence_into(signal, out_sequence)
    np.testing.assert_allclose(out_live[0], out_sequence[: out_live.shape[1]], atol=1e-6)
    assert live.bleed_gate_db(0) == pytest.approx(-30.0)
    live.set_bleed_gate(0, None)
    assert live.bleed_gate_db(0) is None


@pytest.mark.parametrize("threshold", [0.0, 6.0, -200.0, float("nan")])
def test_a_bad_threshold_is_one_sentence(threshold: float) -> None:
    with pytest.raises(ValueError, match="The bleed gate's threshold is a level below"):
        processor(None).set_bleed_gate(0, threshold)
