"""30 s of a real stream on the JACK dummy server with an exported model: no under-runs, and
what the stream played equals the offline render, aligned by the reported latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.lstm import LstmConfig  # noqa: E402
from livestems.realtime.backends import Recorder, SoundDeviceBackend  # noqa: E402
from livestems.realtime.engine import Engine, EngineSettings  # noqa: E402
from livestems.realtime.onnx_runner import OnnxMaskModel  # noqa: E402
from livestems.realtime.processor import StreamProcessor, render_offline  # noqa: E402
from livestems.realtime.sources import FileSource  # noqa: E402
from tests.models.test_families import music_like, randomized  # noqa: E402

SECONDS = 30.0


@pytest.mark.slow
def test_thirty_seconds_on_jack_without_underruns_equal_to_offline(
    jack_server, tmp_path: Path
) -> None:
    path = tmp_path / "live.onnx"
    export_onnx(randomized(LstmConfig(preset="live", hidden_size=128), seed=40), path)
    model = OnnxMaskModel(path, provider="cpu")
    preset, sample_rate = model.metadata.preset, model.metadata.sample_rate
    signal = music_like(int((SECONDS + 1) * sample_rate), seed=41)[0].numpy().T.copy()

    processor = StreamProcessor(model, preset, 2, model.spectral_path())
    # 256-frame device blocks with a 20 ms worker head start: the 10 ms default meets zero
    # under-runs alone (and in the bench), but a full test run on a shared 2-core machine
    # now and then stalls the worker longer (the soak benchmark reports the default's figures).
    settings = EngineSettings(sample_rate, jack_server.period, min_buffer_ms=20.0)
    engine = Engine(processor, settings, FileSource(signal, sample_rate))
    recorder = Recorder(signal.shape[0], 2)
    backend = SoundDeviceBackend(engine, recorder=recorder)
    backend.start()
    try:
        backend.run_for(SECONDS)
    finally:
        backend.stop()
    snapshot = engine.telemetry.snapshot()
    assert engine.worker_error is None
    assert snapshot.frames_played >= (SECONDS - 0.5) * sample_rate
    assert snapshot.underruns == 0, (
        f"{snapshot.underruns} under-runs, p50/p99/max ms {snapshot.hop_percentiles_ms()}"
    )

    model.reset()
    offline_mix = render_offline(model, preset, signal, model.spectral_path()).sum(axis=0)
    played = recorder.recorded
    buffer = engine.buffer_frames
    n = played.shape[0]
    # The stream adds its buffer to the processor's latency; otherwise the same samples.
    np.testing.assert_allclose(played[buffer:n], offline_mix[: n - buffer], atol=1e-4, rtol=0)
    assert np.abs(played[engine.latency_samples :]).max() > 0.01  # it did play something
