"""The stream processor: identity in, the input delayed by exactly the preset's latency out,
in any blocking, after reset, and equal to the offline render sample for sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestems.realtime.dsp.front_end import StftFrontEnd
from livestems.realtime.dsp.presets import PRESETS, SpectralPreset
from livestems.realtime.engine.processor import (
    IdentityHopModel,
    StreamProcessor,
    measure_latency_samples,
    render_offline,
)
from tests.helpers.processing import run_blocks

ALL_PRESETS = list(PRESETS.values())
TOLERANCE = 1e-5


def _identity_processor(preset: SpectralPreset, max_block: int) -> StreamProcessor:
    processor = StreamProcessor(IdentityHopModel(preset), preset)
    processor.prepare(preset.sample_rate, max_block)
    return processor


def _noise(preset: SpectralPreset, n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (n_samples, 2)).astype(np.float32)


def _assert_delayed_copy(out: np.ndarray, signal: np.ndarray, delay: int) -> None:
    """``out`` [shape=(1, n, 2)] is ``signal`` delayed by ``delay`` samples, zeros before."""
    assert out.shape == (1, *signal.shape)
    np.testing.assert_allclose(out[0, delay:], signal[: signal.shape[0] - delay], atol=TOLERANCE)
    np.testing.assert_allclose(out[0, :delay], 0.0, atol=TOLERANCE)


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda preset: preset.name)
@pytest.mark.parametrize("block_kind", ["1", "64", "65", "hop", "hop+1", "4096"])
def test_identity_is_the_input_delayed_by_the_latency(
    preset: SpectralPreset, block_kind: str
) -> None:
    block = {"hop": preset.hop, "hop+1": preset.hop + 1}.get(block_kind) or int(block_kind)
    # Block size 1 costs a Python call per sample: keep that signal just past the delay.
    n_samples = preset.latency_samples + (3 if block == 1 else 12) * preset.hop + 29
    signal = _noise(preset, n_samples, seed=block)
    processor = _identity_processor(preset, max_block=block)
    _assert_delayed_copy(run_blocks(processor, signal, [block]), signal, preset.latency_samples)


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda preset: preset.name)
def test_reset_in_mid_stream_starts_over(preset: SpectralPreset) -> None:
    processor = _identity_processor(preset, max_block=4096)
    run_blocks(processor, _noise(preset, preset.n_fft + 3 * preset.hop + 11, seed=1), [100])
    processor.reset()
    signal = _noise(preset, preset.latency_samples + 6 * preset.hop, seed=2)
    _assert_delayed_copy(run_blocks(processor, signal, [77]), signal, preset.latency_samples)


@settings(max_examples=25, deadline=None)
@given(
    preset=st.sampled_from(ALL_PRESETS),
    sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=12),
    reset_after=st.integers(min_value=0, max_value=5000),
)
def test_random_blocking_and_a_reset_anywhere(
    preset: SpectralPreset, sizes: list[int], reset_after: int
) -> None:
    processor = _identity_processor(preset, max_block=1024)
    run_blocks(processor, _noise(preset, reset_after, seed=11), sizes) if reset_after else None
    processor.reset()
    signal = _noise(preset, preset.latency_samples + 4 * preset.hop + 3, seed=12)
    _assert_delayed_copy(run_blocks(processor, signal, sizes), signal, preset.latency_samples)


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda preset: preset.name)
def test_streaming_equals_offline_render_exactly(preset: SpectralPreset) -> None:
    signal = _noise(preset, preset.n_fft * 3 + 7, seed=4)
    offline = render_offline(IdentityHopModel(preset), preset, signal)
    for sizes in ([1000], [1, 64, 65, preset.hop, preset.hop + 1, 4096]):
        streamed = run_blocks(_identity_processor(preset, max_block=512), signal, sizes)
        np.testing.assert_array_equal(streamed, offline)


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda preset: preset.name)
@pytest.mark.parametrize("block_size", [1, 64, 65, 1000])
def test_impulse_comes_out_at_exactly_the_reported_latency(
    preset: SpectralPreset, block_size: int
) -> None:
    if block_size == 1 and preset.name == "studio":
        block_size = 3  # the same re-blocking path, at a third of the Python calls
    assert measure_latency_samples(preset, block_size) == preset.latency_samples


def test_latency_budgets_of_the_low_delay_presets() -> None:
    assert PRESETS["stage"].latency_ms(44100) <= 24.0
    assert PRESETS["live-fine"].latency_ms(44100) <= 12.0
    assert PRESETS["live"].latency_ms(44100) <= 12.0
    assert PRESETS["ultra"].latency_ms(44100) <= 6.0
    assert measure_latency_samples(PRESETS["stage"]) / 44100 * 1000 <= 24.0
    assert measure_latency_samples(PRESETS["live-fine"]) / 44100 * 1000 <= 12.0
    assert measure_latency_samples(PRESETS["live"]) / 44100 * 1000 <= 12.0
    assert measure_latency_samples(PRESETS["ultra"]) / 44100 * 1000 <= 6.0


def test_blocks_longer_than_max_block_are_accepted() -> None:
    preset = PRESETS["ultra"]
    processor = _identity_processor(preset, max_block=16)
    signal = _noise(preset, 5000, seed=9)
    _assert_delayed_copy(run_blocks(processor, signal, [4096]), signal, preset.latency_samples)


def test_wrong_sample_rate_is_refused_in_one_sentence() -> None:
    preset = PRESETS["live"]
    processor = StreamProcessor(IdentityHopModel(preset), preset)
    with pytest.raises(ValueError, match=r"runs at 44100 Hz but the stream is at 48000 Hz"):
        processor.prepare(48000, 256)


def test_wrong_channel_count_and_unprepared_use_are_refused() -> None:
    preset = PRESETS["live"]
    processor = StreamProcessor(IdentityHopModel(preset), preset)
    with pytest.raises(RuntimeError, match="prepare"):
        processor.process(np.zeros((4, 2), dtype=np.float32))
    processor.prepare(44100, 64)
    with pytest.raises(ValueError, match="shape"):
        processor.process(np.zeros((4, 1), dtype=np.float32))


def test_process_reports_the_plugin_surface() -> None:
    preset = PRESETS["live"]
    processor = _identity_processor(preset, max_block=64)
    assert processor.stems == ("mix",)
    assert processor.latency_samples == preset.latency_samples
    out = processor.process(np.zeros((65, 2), dtype=np.float32))
    assert out.shape == (1, 65, 2) and out.dtype == np.float32


@pytest.mark.parametrize("n_channels", [1, 2])
def test_an_explicit_stft_path_is_the_default(n_channels: int) -> None:
    preset = PRESETS["ultra"]
    path = StftFrontEnd(preset, n_channels)
    signal = _noise(preset, 3 * preset.n_fft + 5, seed=21)[:, :n_channels].copy()
    default = StreamProcessor(IdentityHopModel(preset, n_channels), preset, n_channels)
    explicit = StreamProcessor(IdentityHopModel.for_path(path), preset, n_channels, path)
    outputs = []
    for processor in (default, explicit):
        processor.prepare(preset.sample_rate, 300)
        assert processor.latency_samples == preset.latency_samples
        outputs.append(run_blocks(processor, signal, [300, 7]))
    np.testing.assert_array_equal(outputs[1], outputs[0])
    offline = render_offline(IdentityHopModel(preset, n_channels, path), preset, signal, path)
    np.testing.assert_array_equal(offline, outputs[0])
    assert measure_latency_samples(preset, 64, path) == preset.latency_samples
