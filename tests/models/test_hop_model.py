"""A torch model through the real-time processor: streaming in any blocking equals the offline
render and the torch separator's whole-sequence path."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.hop_model import TorchHopModel  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["live", "ultra"])
def test_processor_with_a_torch_lstm_equals_offline_and_torch(preset: str) -> None:
    config = LstmConfig(preset=preset, hidden_size=32, n_layers=2)
    separator = randomized(config, seed=8)
    spectral = config.spectral_preset
    signal = music_like_tensor(6 * spectral.n_fft + 51, seed=9)[0].numpy().T.copy()  # (n, 2)

    offline = render_offline(TorchHopModel(separator), spectral, signal)
    hop_model = TorchHopModel(separator)
    processor = StreamProcessor(hop_model, spectral)
    processor.prepare(spectral.sample_rate, 4096)
    rng = np.random.default_rng(10)
    for _ in range(2):  # a second time after reset(): the same samples again
        processor.reset()
        pieces, start = [], 0
        while start < signal.shape[0]:
            size = int(rng.choice([1, 64, 65, spectral.hop, spectral.hop + 1, 4096]))
            pieces.append(processor.process(signal[start : start + size]).copy())
            start += size
        streamed = np.concatenate(pieces, axis=1)
        np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0)

    with torch.no_grad():
        in_torch = separator(torch.from_numpy(signal.T.copy())[None])[0].numpy()
    # (n_stems, n_channels, n_samples) -> (n_stems, n_samples, n_channels)
    np.testing.assert_allclose(offline, in_torch.transpose(0, 2, 1), atol=1e-4, rtol=0)
