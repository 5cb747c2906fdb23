"""The Wiener post-filter at run time equals its torch twin: streaming in any blocking, the
offline render and ``SeparatorNet(..., postfilter=True)`` give the same stems."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.families.cws import CwsConfig  # noqa: E402
from livestems.models.families.hop_model import TorchHopModel  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from livestems.models.families.separator import SeparatorNet  # noqa: E402
from livestems.realtime.dsp.wiener import wiener_postfilter  # noqa: E402
from livestems.realtime.engine.processor import StreamProcessor, render_offline  # noqa: E402
from livestems.realtime.io.generated_song import generated_song  # noqa: E402


def _network(config: object, seed: int) -> SeparatorNet:
    torch.manual_seed(seed)
    net = SeparatorNet(config)  # type: ignore[arg-type]
    with torch.no_grad():  # random statistics too, so that the masks differ from stem to stem
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_mono_is_the_power_ratio_mask() -> None:
    rng = np.random.default_rng(0)
    spectrum = (rng.standard_normal((1, 9)) + 1j * rng.standard_normal((1, 9))).astype(np.complex64)
    masks = rng.uniform(0.05, 1.0, (3, 1, 9)).astype(np.float32)
    out = np.empty((3, 1, 9), np.complex64)
    wiener_postfilter(spectrum, masks, out, eps=0.0)
    power = masks**2 / (masks**2).sum(axis=0)
    np.testing.assert_allclose(out, power * spectrum, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [LstmConfig(preset="live", hidden_size=16, n_layers=1), CwsConfig(preset="live")],
    ids=["lstm", "cws"],
)
def test_the_post_filter_streams_as_it_renders_and_as_torch_computes(config: object) -> None:
    net = _network(config, seed=4)
    hop_model = TorchHopModel(net)
    front_end = hop_model.front_end()
    signal = generated_song(0.6, front_end.preset.sample_rate, seed=2)
    offline = render_offline(TorchHopModel(net), front_end.preset, signal, front_end, True)
    plain = render_offline(TorchHopModel(net), front_end.preset, signal, front_end)
    assert np.abs(offline - plain).max() > 1e-3  # it does something

    processor = StreamProcessor.for_model(hop_model, postfilter=True)
    processor.prepare(front_end.preset.sample_rate, 1024)
    rng = np.random.default_rng(1)
    pieces, start = [], 0
    while start < signal.shape[0]:
        size = int(rng.choice([1, 63, front_end.preset.hop, 1024]))
        pieces.append(processor.process(signal[start : start + size]).copy())
        start += size
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), offline, atol=1e-5, rtol=0)

    with torch.no_grad():
        in_torch = net(torch.from_numpy(signal.T.copy())[None], postfilter=True)[0].numpy()
    np.testing.assert_allclose(offline, in_torch.transpose(0, 2, 1), atol=2e-4, rtol=0)
