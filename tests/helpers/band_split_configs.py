"""Small configurations of the ``bsrnn`` family and of complex masks (issue 16), shared by the
model tests (``tests/models/test_bsrnn.py``, ``test_complex_masks.py``) and the export tests
(``tests/export/test_bsrnn_onnx.py``). Tiny widths, so that every test runs in seconds.

The families' modules import torch, and only ``networks.py`` among the helpers may import it at
its top: these functions import them when called, after the test's
``pytest.importorskip("torch")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livestems.models.families.config import SeparatorConfig


def bsrnn_configs() -> list[SeparatorConfig]:
    """bsrnn at every preset with magnitude masks, and with complex masks of every kind."""
    from livestems.models.families.bsrnn import BsrnnConfig

    tiny = {"width": 8, "n_blocks": 2, "bands": "coarse"}
    return [
        BsrnnConfig(preset="studio", **tiny),
        BsrnnConfig(preset="live", **tiny),
        BsrnnConfig(preset="ultra", width=6, n_blocks=1, bands="fine", mask="ratio"),
        BsrnnConfig(preset="live", mask_domain="complex", **tiny),
        BsrnnConfig(preset="ultra", mask_domain="complex", mask="sigmoid", **tiny),
        BsrnnConfig(preset="live", mask_domain="complex", mask="ratio", n_channels=1, width=6),
    ]


def complex_configs() -> list[SeparatorConfig]:
    """Complex masks of the other families."""
    from livestems.models.families.cws import CwsConfig
    from livestems.models.families.lstm import LstmConfig

    return [
        LstmConfig(preset="live", hidden_size=16, n_layers=2, mask_domain="complex"),
        LstmConfig(preset="ultra", hidden_size=12, mask_domain="complex", mask="sigmoid"),
        # mid and side magnitudes beside left and right (computed in the graph from the phases)
        LstmConfig(preset="live", hidden_size=8, mask_domain="complex", stereo_features=True),
        CwsConfig(
            preset="live", n_bands=2, channels=4, depth=1, lstm_hidden=8, mask_domain="complex"
        ),
        # mid and side magnitudes beside left and right (computed in the graph from the phases)
        CwsConfig(
            preset="live",
            n_bands=4,
            channels=4,
            depth=1,
            mask_domain="complex",
            stereo_features=True,
        ),
        # each bin's deviation from a steady sinusoid (two past frames as state), after the
        # LSTM's state
        CwsConfig(
            preset="live",
            n_bands=2,
            channels=4,
            depth=1,
            lstm_hidden=4,
            mask_domain="complex",
            stereo_features=True,
            phase_deviation=True,
        ),
    ]


def ensemble_configs() -> list[SeparatorConfig]:
    """Ensembles (the mean of their members' masks): two ``cws`` of different widths and inputs
    on one subband front end, complex masks, one with stereo and phase features and an LSTM (so
    every kind of member state, each behind its prefix); and two ``lstm`` with magnitude masks,
    weighted 1 : 3 (the weights are constants in the graph)."""
    from livestems.models.families.cws import CwsConfig
    from livestems.models.families.ensemble import ensemble_config
    from livestems.models.families.lstm import LstmConfig

    cws = {"preset": "live", "n_bands": 2, "depth": 1, "mask_domain": "complex"}
    return [
        ensemble_config(
            [
                CwsConfig(
                    channels=4, lstm_hidden=4, stereo_features=True, phase_deviation=True, **cws
                ),
                CwsConfig(channels=3, **cws),
            ]
        ),
        ensemble_config(
            [
                LstmConfig(preset="live", hidden_size=8, n_layers=1),
                LstmConfig(preset="live", hidden_size=6, n_layers=2),
            ],
            weights=(1, 3),
        ),
    ]


def band_split_and_complex_configs() -> list[SeparatorConfig]:
    return bsrnn_configs() + complex_configs() + ensemble_configs()


def config_name(config: SeparatorConfig) -> str:
    """A test id: family, preset, mask kind and domain, and what else tells configs apart."""
    from livestems.models.families.bsrnn import BsrnnConfig

    extra = ""
    if isinstance(config, BsrnnConfig):
        extra = f"-{config.bands}-w{config.width}x{config.n_blocks}"
    if config.n_channels == 1:
        extra += "-mono"
    if getattr(config, "stereo_features", False):
        extra += "-stereo"
    if getattr(config, "phase_deviation", False):
        extra += "-phase"
    if getattr(config, "weights", ()):
        extra += "-weighted"
    return f"{config.family}-{config.preset}-{config.mask}-{config.mask_domain}{extra}"
