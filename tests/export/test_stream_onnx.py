"""30 s of a real stream on the JACK dummy server with an exported model: what the stream
played equals the offline render, aligned by the reported latency, in every block but the ones
the engine itself reported as under-runs (see tests/helpers/underruns.py for why a test does not
promise zero; the soak benchmark reports the figure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.realtime.backends.portaudio import Recorder, SoundDeviceBackend  # noqa: E402
from livestems.realtime.engine.engine import Engine, EngineSettings  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from livestems.realtime.engine.sources import FileSource  # noqa: E402
from livestems.realtime.runtime.onnx_model import OnnxHopModel  # noqa: E402
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402
from tests.helpers.underruns import assert_equal_but_for_underruns  # noqa: E402

SECONDS = 30.0


@pytest.mark.slow
def test_thirty_seconds_on_jack_equal_to_offline_but_for_counted_underruns(
    jack_server, tmp_path: Path
) -> None:
    path = tmp_path / "live.onnx"
    export_onnx(randomized(LstmConfig(preset="live", hidden_size=128), seed=40), path)
    model = OnnxHopModel(path, provider="cpu")
    preset, sample_rate = model.metadata.preset, model.metadata.sample_rate
    signal = music_like_tensor(int((SECONDS + 1) * sample_rate), seed=41)[0].numpy().T.copy()

    processor = StreamProcessor(model, preset, 2, model.front_end())
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
    # The dummy server's own clock slips on a loaded machine (its xruns), so most, not all.
    assert snapshot.samples_played >= 0.9 * SECONDS * sample_rate
    block = settings.block_size
    n_blocks = snapshot.samples_played // block
    print(f"{snapshot.underruns} under-runs in {n_blocks} blocks, "
          f"hop p50/p99/max ms {snapshot.hop_percentiles_ms()}")  # fmt: skip

    model.reset()
    offline_mix = render_offline(model, preset, signal, model.front_end()).sum(axis=0)
    played = recorder.recorded
    buffer = engine.buffer_samples
    n = played.shape[0]
    # The stream adds its buffer to the processor's latency; otherwise the same samples, except
    # in an under-run's block, which plays the dry input instead.
    assert_equal_but_for_underruns(
        played[buffer:n], offline_mix[: n - buffer], snapshot.underruns, block, n_blocks, 1e-4
    )
    assert np.abs(played[engine.latency_samples :]).max() > 0.01  # it did play something
