"""The PQMF bank: near-perfect reconstruction at an exact delay, and streaming equal to offline."""

from __future__ import annotations

import numpy as np
import pytest

from livestems.realtime.dsp.pqmf import (
    PqmfDesign,
    StreamingPqmfAnalysis,
    StreamingPqmfSynthesis,
    design_pqmf,
    pqmf_analyze,
    pqmf_synthesize,
)
from tests.helpers.allocations import measure_allocations
from tests.helpers.signals import MIN_SNR_DB, music_like, snr_db, white_noise

SAMPLE_RATE = 44100


@pytest.fixture(params=[2, 4, 8], ids=lambda n_bands: f"K{n_bands}")
def design(request: pytest.FixtureRequest) -> PqmfDesign:
    return design_pqmf(request.param)


def reconstruct(signal: np.ndarray, design: PqmfDesign) -> np.ndarray:
    return pqmf_synthesize(pqmf_analyze(signal, design), design, signal.shape[0])


def aligned_snr_db(signal: np.ndarray, design: PqmfDesign) -> float:
    delay = design.delay_samples
    return snr_db(signal[:-delay], reconstruct(signal, design)[delay:])


def test_design_geometry(design: PqmfDesign) -> None:
    n_bands = design.n_bands
    assert design.order == 16 * n_bands
    assert design.delay_samples == design.order
    for filters in (design.analysis, design.synthesis):
        assert filters.shape == (n_bands, design.order + 1)
        assert filters.dtype == np.float64
        assert not filters.flags.writeable
    assert design_pqmf(n_bands) is design, "designs are cached"
    # The cutoff sits just above the nominal pi / 2K (Lin and Vaidyanathan's optimum).
    assert 1.0 < design.cutoff / (np.pi / (2 * n_bands)) < 1.25


@pytest.mark.parametrize("n_bands", [0, 1, 3, 6, 16, -4, 4.0, True, "4"])
def test_bad_n_bands_is_refused_in_one_sentence(n_bands: object) -> None:
    with pytest.raises(ValueError) as error:
        design_pqmf(n_bands)
    message = str(error.value)
    assert message.startswith("n_bands must be 2, 4 or 8 (a power of two), got ")
    assert message.endswith(".") and message.count(". ") == 0


@pytest.mark.parametrize("taps_per_band", [0, -1, 2.5])
def test_bad_taps_per_band_is_refused(taps_per_band: object) -> None:
    with pytest.raises(ValueError, match="^taps_per_band must be a positive integer"):
        design_pqmf(4, taps_per_band)


def test_each_filter_passes_its_own_band(design: PqmfDesign) -> None:
    n_bands = design.n_bands
    n_fft = 8192
    omega = np.linspace(0.0, np.pi, n_fft // 2 + 1)
    for filters, gain in ((design.analysis, 1.0), (design.synthesis, float(n_bands))):
        energy = np.abs(np.fft.rfft(filters, n_fft, axis=-1)) ** 2
        for k in range(n_bands):
            own = (omega >= k * np.pi / n_bands) & (omega <= (k + 1) * np.pi / n_bands)
            # Half of each transition band lies outside [k, k + 1] pi / K by design ...
            assert energy[k, own].sum() / energy[k].sum() > 0.9
            # ... and beyond half a band further out there is only stopband leakage.
            near = (omega >= (k - 0.5) * np.pi / n_bands) & (omega <= (k + 1.5) * np.pi / n_bands)
            assert energy[k, near].sum() / energy[k].sum() > 1.0 - 1e-6
            np.testing.assert_allclose(np.sqrt(energy[k, own].max()), gain, rtol=2e-3)


@pytest.mark.parametrize("position", [1000, 1001, 1003, 1005, 1007])
def test_an_impulse_comes_out_after_exactly_the_delay(design: PqmfDesign, position: int) -> None:
    impulse = np.zeros((4096, 1), dtype=np.float32)
    impulse[position] = 1.0
    response = reconstruct(impulse, design)[:, 0]
    assert int(np.argmax(np.abs(response))) == position + design.delay_samples
    assert response[position + design.delay_samples] == pytest.approx(1.0, abs=2e-3)


@pytest.mark.slow
def test_noise_reconstructs_at_the_delay(design: PqmfDesign) -> None:
    signal = white_noise(2 * SAMPLE_RATE, 2, seed=1)
    output = reconstruct(signal, design)
    # The delay where the output best matches the input, among the first 4 N lags.
    lags = np.arange(4 * design.order)
    head = signal[: signal.shape[0] - lags[-1], 0].astype(np.float64)
    correlation = [float(np.dot(head, output[lag : lag + head.shape[0], 0])) for lag in lags]
    assert int(np.argmax(correlation)) == design.delay_samples
    assert aligned_snr_db(signal, design) >= MIN_SNR_DB


def test_music_reconstructs_at_the_delay(design: PqmfDesign) -> None:
    assert aligned_snr_db(music_like(seed=2), design) >= MIN_SNR_DB


def test_the_band_signals_keep_the_input_level(design: PqmfDesign) -> None:
    # A tone in the middle of band k lands in band k at its own amplitude (unit passband).
    n_bands = design.n_bands
    n_samples = 8192
    t = np.arange(n_samples)
    for k in range(n_bands):
        omega = (k + 0.5) * np.pi / n_bands
        tone = np.cos(omega * t)[:, None].astype(np.float32)
        bands = pqmf_analyze(tone, design)[design.order :]
        rms = np.sqrt(np.mean(bands[..., 0].astype(np.float64) ** 2, axis=0))
        np.testing.assert_allclose(rms[k], np.sqrt(0.5), rtol=2e-3)
        assert np.delete(rms, k).max() < 1e-3


def test_shapes_and_partial_blocks(design: PqmfDesign) -> None:
    n_bands = design.n_bands
    signal = white_noise(10 * n_bands + n_bands - 1, 3, seed=3)
    bands = pqmf_analyze(signal, design)
    assert bands.shape == (10, n_bands, 3) and bands.dtype == np.float32
    # The trailing partial block is not analysed: dropping it changes nothing.
    np.testing.assert_array_equal(bands, pqmf_analyze(signal[: 10 * n_bands], design))
    assert pqmf_analyze(signal[: n_bands - 1], design).shape == (0, n_bands, 3)
    for n_samples in (0, 1, 7 * n_bands + 1, 40 * n_bands):
        output = pqmf_synthesize(bands, design, n_samples)
        assert output.shape == (n_samples, 3) and output.dtype == np.float32
        shared = min(n_samples, 10 * n_bands + design.order)
        reference = pqmf_synthesize(bands, design, 10 * n_bands + design.order)
        np.testing.assert_allclose(output[:shared], reference[:shared], rtol=0, atol=1e-6)
    # Beyond the last band sample's reach, silence.
    assert not pqmf_synthesize(bands, design, 40 * n_bands)[10 * n_bands + design.order :].any()


def random_partition(n_total: int, unit: int, max_units: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < n_total:
        sizes.append(min(n_total - sum(sizes), unit * int(rng.integers(0, max_units + 1))))
    return sizes


def test_streaming_equals_offline(design: PqmfDesign) -> None:
    n_bands = design.n_bands
    max_block = 512
    signal = white_noise(SAMPLE_RATE // 4 // n_bands * n_bands, 2, seed=4)
    offline_bands = pqmf_analyze(signal, design)
    offline_signal = pqmf_synthesize(offline_bands, design, signal.shape[0])
    analysis = StreamingPqmfAnalysis(design, 2, max_block)
    synthesis = StreamingPqmfSynthesis(design, 2, max_block)
    # Fixed sizes first (one band sample, a hop, the most allowed), then random ones, each
    # time from a reset() after the state of a different signal.
    partitions = [
        [n_bands] * (signal.shape[0] // n_bands),
        [256] * (signal.shape[0] // 256) + [signal.shape[0] % 256],
        [max_block] * (signal.shape[0] // max_block) + [signal.shape[0] % max_block],
        *(random_partition(signal.shape[0], n_bands, max_block // n_bands, s) for s in range(3)),
    ]
    for partition in partitions:
        analysis.process(white_noise(max_block, 2, seed=5))
        synthesis.process(np.ones((max_block // n_bands, n_bands, 2), dtype=np.float32))
        analysis.reset()
        synthesis.reset()
        bands_parts, signal_parts = [], []
        start = 0
        for n_block in partition:
            bands = analysis.process(signal[start : start + n_block])
            assert bands.shape == (n_block // n_bands, n_bands, 2)
            bands_parts.append(bands.copy())
            output = synthesis.process(bands)
            assert output.shape == (n_block, 2)
            signal_parts.append(output.copy())
            start += n_block
        # Equal to float32 rounding: numpy's matmul may sum in another order for other sizes.
        streamed_bands = np.concatenate(bands_parts)
        np.testing.assert_allclose(
            streamed_bands, offline_bands, rtol=0, atol=1e-6 * np.abs(offline_bands).max()
        )
        np.testing.assert_allclose(
            np.concatenate(signal_parts),
            offline_signal,
            rtol=0,
            atol=2e-6 * np.abs(offline_signal).max(),
        )


def test_streaming_synthesis_alone_equals_offline(design: PqmfDesign) -> None:
    n_bands = design.n_bands
    rng = np.random.default_rng(6)
    bands = rng.standard_normal((300, n_bands, 2)).astype(np.float32)
    offline = pqmf_synthesize(bands, design, 300 * n_bands)
    synthesis = StreamingPqmfSynthesis(design, 2, 64 * n_bands)
    parts, start = [], 0
    for n_block in random_partition(300 * n_bands, n_bands, 64, seed=7):
        parts.append(synthesis.process(bands[start : start + n_block // n_bands]).copy())
        start += n_block // n_bands
    np.testing.assert_allclose(
        np.concatenate(parts), offline, rtol=0, atol=1e-6 * np.abs(offline).max()
    )


def test_streaming_refuses_blocks_it_cannot_take() -> None:
    design = design_pqmf(4)
    analysis = StreamingPqmfAnalysis(design, 2, max_block=256)
    synthesis = StreamingPqmfSynthesis(design, 2, max_block=256)
    with pytest.raises(ValueError, match="multiple of n_bands"):
        analysis.process(np.zeros((6, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="at most max_block"):
        analysis.process(np.zeros((260, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="at most 64 band samples"):
        synthesis.process(np.zeros((65, 4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="max_block must be a positive multiple"):
        StreamingPqmfAnalysis(design, 2, max_block=250)


def test_streaming_allocates_no_block_sized_buffer(design: PqmfDesign) -> None:
    n_bands = design.n_bands
    analysis = StreamingPqmfAnalysis(design, 2, max_block=1024)
    synthesis = StreamingPqmfSynthesis(design, 2, max_block=1024)
    signal = white_noise(1024, 2, seed=8)
    sizes = [1024, n_bands, 256, 5 * n_bands, 128]
    counter = [0]

    def step() -> None:
        n_block = sizes[counter[0] % len(sizes)]
        counter[0] += 1
        synthesis.process(analysis.process(signal[:n_block]))

    numpy_blocks, growth, transient = measure_allocations(step, 1000)
    assert numpy_blocks == 0
    assert abs(growth) <= 512, growth
    # numpy's own call machinery costs some hundred bytes; one temporary copy of a block
    # (1024 x 2 float32) would be 8 KiB.
    assert transient <= 4096, transient
