"""A subband (``cws``) torch model through the real-time processor: the numpy subband path is
the twin of the torch ``SubbandFrontEnd``, so streaming in any blocking equals the offline
render, and both equal the torch separator's whole-sequence path, at the same latency."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.cws import CwsConfig  # noqa: E402
from livestems.models.families.hop_model import TorchHopModel  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.dsp.front_end import StftFrontEnd, SubbandFrontEnd  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from tests.helpers.networks import music_like_tensor, randomized  # noqa: E402

STREAM_ATOL = 1e-5  # streaming and offline numpy banks sum in another order
TORCH_ATOL = 1e-4  # float32 numpy against float32 torch


def _stream(hop_model: TorchHopModel, signal: np.ndarray, seed: int) -> list[np.ndarray]:
    """Two runs of the processor over ``signal`` in random block sizes, ``reset()`` before
    each: [shape=(n_stems, n_samples, n_channels)] per run."""
    preset = hop_model.preset
    processor = StreamProcessor(hop_model, preset, hop_model.n_channels, hop_model.front_end())
    processor.prepare(preset.sample_rate, 4096)
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(2):
        processor.reset()
        pieces, start = [], 0
        while start < signal.shape[0]:
            size = int(rng.choice([1, 64, 65, preset.hop, preset.hop + 1, 4096]))
            pieces.append(processor.process(signal[start : start + size]).copy())
            start += size
        runs.append(np.concatenate(pieces, axis=1))
    return runs


def _in_torch(separator: SeparatorNet, signal: np.ndarray) -> np.ndarray:
    """The separator's whole-sequence path: [shape=(n_stems, n_samples, n_channels)]."""
    with torch.no_grad():
        stems = separator(torch.from_numpy(signal.T.copy())[None])[0].numpy()
    # (n_stems, n_channels, n_samples) -> (n_stems, n_samples, n_channels)
    return stems.transpose(0, 2, 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "n_bands"),
    [
        ("live", 2),
        ("live", 4),
        ("live", 8),
        ("ultra", 2),
        ("ultra", 4),
        ("ultra", 8),
        ("studio", 8),
    ],
    ids=lambda value: f"K{value}" if isinstance(value, int) else value,
)
def test_cws_streams_as_it_renders_and_as_torch_runs_it(preset: str, n_bands: int) -> None:
    config = CwsConfig(preset=preset, n_bands=n_bands, channels=4, depth=2)
    separator = randomized(config, seed=n_bands)
    spectral = config.spectral_preset
    # The torch front end analyses whole blocks of K samples only, the stream every band
    # sample it has: they agree wherever the signal does not end within K - 1 samples of a
    # hop boundary (51 samples past one here).
    n_samples = (4 if preset == "studio" else 6) * spectral.n_fft + 51
    signal = music_like_tensor(n_samples, seed=n_bands)[0].numpy().T.copy()  # (n, 2)

    hop_model = TorchHopModel(separator)
    path = hop_model.front_end()
    assert path == SubbandFrontEnd(spectral, 2, n_bands)
    assert path.latency_samples == separator.latency_samples

    offline = render_offline(TorchHopModel(separator), spectral, signal, path)
    for streamed in _stream(hop_model, signal, seed=n_bands):
        np.testing.assert_allclose(streamed, offline, atol=STREAM_ATOL, rtol=0)
    in_torch = _in_torch(separator, signal)
    assert np.abs(in_torch).max() > 0.05  # the stems are not silence
    np.testing.assert_allclose(offline, in_torch, atol=TORCH_ATOL, rtol=0)


@pytest.mark.slow
def test_an_lstm_model_gets_the_stft_path() -> None:
    config = LstmConfig(preset="ultra", hidden_size=16, n_layers=1)
    separator = randomized(config, seed=3)
    spectral = config.spectral_preset
    signal = music_like_tensor(5 * spectral.n_fft + 51, seed=4)[0].numpy().T.copy()
    hop_model = TorchHopModel(separator)
    assert hop_model.front_end() == StftFrontEnd(spectral, 2)
    offline = render_offline(TorchHopModel(separator), spectral, signal)  # the default path
    for streamed in _stream(hop_model, signal, seed=5):
        np.testing.assert_allclose(streamed, offline, atol=STREAM_ATOL, rtol=0)
    np.testing.assert_allclose(offline, _in_torch(separator, signal), atol=TORCH_ATOL, rtol=0)


def test_a_subband_model_on_the_full_band_path_is_refused_in_one_sentence() -> None:
    config = CwsConfig(preset="ultra", n_bands=4, channels=4, depth=1)
    hop_model = TorchHopModel(randomized(config))
    spectral = config.spectral_preset
    processor = StreamProcessor(hop_model, spectral)  # forgot path=hop_model.front_end()
    processor.prepare(spectral.sample_rate, spectral.hop)
    with pytest.raises(
        ValueError, match=r"takes spectra of 8 x 129 .* path=hop_model\.front_end\(\)"
    ):
        processor.process(np.zeros((spectral.hop, 2), dtype=np.float32))
