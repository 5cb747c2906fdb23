"""Small torch networks with random weights, and a music-like tensor to feed them.

This module imports torch at its top: only tests that need torch import it, after
``pytest.importorskip("torch")`` (or inside a fixture that skips without torch).
"""

from __future__ import annotations

import torch

from livestems.models.families.config import SeparatorConfig
from livestems.models.families.cws import CwsConfig
from livestems.models.families.lstm import LstmConfig
from livestems.models.families.separator import SeparatorNet
from livestems.realtime.dsp.presets import PRESETS


def small_configs() -> list[SeparatorConfig]:
    """Every family at every preset, small enough for fast tests (cws: every K somewhere)."""
    configs: list[SeparatorConfig] = []
    for preset in PRESETS:
        configs.append(LstmConfig(preset=preset, hidden_size=24, n_layers=2, bandwidth_hz=9000))
        configs.append(
            CwsConfig(preset=preset, n_bands=4, channels=4, depth=2, dilation=1, lstm_hidden=12)
        )
    configs.append(CwsConfig(preset="live", n_bands=2, channels=4, depth=1, mask="ratio"))
    configs.append(CwsConfig(preset="ultra", n_bands=8, channels=4, depth=2, mask="sigmoid"))
    return configs


def config_id(config: SeparatorConfig) -> str:
    extra = f"-k{config.n_bands}" if isinstance(config, CwsConfig) else ""
    return f"{config.family}-{config.preset}{extra}-{config.mask}"


def randomized(config: SeparatorConfig, seed: int = 0) -> SeparatorNet:
    """A model with random weights and random batch-norm statistics, in evaluation mode."""
    torch.manual_seed(seed)
    model = SeparatorNet(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def music_like_tensor(
    n_samples: int, seed: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """[shape=(1, 2, n_samples)]: noise plus a few tones, so masks see structure. (The numpy
    ``signals.music_like`` is a richer song-like signal for the DSP tests.)"""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(n_samples, dtype=torch.float64) / 44100
    tones = sum(torch.sin(2 * torch.pi * f * t) / (i + 1) for i, f in enumerate((110, 440, 1320)))
    noise = 0.1 * torch.randn(2, n_samples, generator=generator, dtype=torch.float64)
    return (0.3 * tones + noise).to(dtype)[None]


def assert_causal(model: torch.nn.Module, x: torch.Tensor, cut: int) -> None:
    """A separator's output sample n depends on input samples up to n only, bit for bit, and a
    change at ``cut`` does come through once the model's latency has passed."""
    perturbed = x.clone()
    perturbed[..., cut:] += torch.randn(perturbed[..., cut:].shape, dtype=x.dtype)
    with torch.no_grad():
        before, after = model(x), model(perturbed)
    assert torch.equal(before[..., :cut], after[..., :cut])
    latency = int(model.latency_samples)
    assert not torch.allclose(before[..., cut + latency :], after[..., cut + latency :])
