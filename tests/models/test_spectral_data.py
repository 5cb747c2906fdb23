"""Spectral batches and the augmentations of real recordings: the same data as the waveform
path, every augmentation doing what it says, the stems always summing to the mixture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.models.data import augment  # noqa: E402
from livestems.models.data.datasets import STEMS, Track  # noqa: E402
from livestems.models.data.spectral_data import SpectralSampler  # noqa: E402
from livestems.models.data.training_data import SamplingConfig  # noqa: E402
from livestems.models.layers.front_end import StftFrontEnd, SubbandFrontEnd  # noqa: E402
from livestems.realtime.dsp.presets import get_preset  # noqa: E402
from tests.helpers.songs import noise_track  # noqa: E402

RATE = 44100
PLAIN = SamplingConfig(excerpt_s=0.3)


def stft() -> StftFrontEnd:
    return StftFrontEnd(get_preset("ultra"), 2)


def sampler(tracks, front_end=None, **fields) -> SpectralSampler:
    config = dataclasses.replace(PLAIN, **fields)
    return SpectralSampler(tracks, config, front_end or stft())


@pytest.mark.slow
def test_a_spectral_batch_is_the_analysis_of_the_waveform_excerpts_it_stands_for() -> None:
    # gain, swap and remix drawn as the waveform path draws them; the spectra must equal the
    # front end's analysis of the whole song scaled and swapped, sliced at the excerpt's frames
    tracks = [noise_track(f"t{i}", 1.0, i) for i in range(3)]
    front_end = stft()
    draw = sampler(tracks, front_end)
    batch = draw.batch(seed=3, epoch=1, index=2, batch_size=4)
    rng = np.random.default_rng([3, 1, 2, 0])
    hop = front_end.hop
    for item in range(4):
        for stem, (song, start, gain, swap) in enumerate(draw.draws.plan(rng)):
            rng.uniform(1.0, 1.0)  # the width draw the spectral sampler makes
            rng.random()  # the EQ draw
            audio = tracks[song].stack()[stem] * np.float32(gain)
            if swap:
                audio = audio[:, ::-1]
            whole = front_end.analyze(torch.from_numpy(np.ascontiguousarray(audio.T))[None])[0]
            first = min(start // hop, whole.shape[0] - draw.excerpt_frames)
            expected = whole[first : first + draw.excerpt_frames]
            got = batch.targets[item, :, stem]
            # float16 storage: -96 dB relative
            scale = float(expected.abs().max())
            assert float((got - expected).abs().max()) < 2e-3 * scale
        rng.random()  # the limiter draw
    torch.testing.assert_close(batch.mixture, batch.targets.sum(dim=2), rtol=0, atol=0)


def test_spectral_batches_are_reproducible_and_differ_between_batches() -> None:
    tracks = [noise_track(f"t{i}", 1.0, i) for i in range(2)]
    fields = dict(eq_probability=0.5, width_range=(0.5, 1.5), limiter_probability=0.5)
    first = sampler(tracks, **fields).batch(1, 2, 3, 4)
    again = sampler(tracks, **fields).batch(1, 2, 3, 4)
    assert torch.equal(first.targets, again.targets)
    other = sampler(tracks, **fields).batch(1, 2, 4, 4)
    assert not torch.equal(first.targets, other.targets)


def test_width_zero_is_mono_and_width_one_changes_nothing() -> None:
    tracks = [noise_track("t", 1.0, 0)]
    mono = sampler(tracks, width_range=(0.0, 0.0), channel_swap_probability=0.0).batch(0, 0, 0, 3)
    torch.testing.assert_close(mono.targets[..., 0, :], mono.targets[..., 1, :])
    kept = sampler(tracks, width_range=(1.0, 1.0), channel_swap_probability=0.0).batch(0, 0, 0, 3)
    assert float((kept.targets[..., 0, :] - kept.targets[..., 1, :]).abs().max()) > 0.1


def test_eq_scales_each_bin_of_a_source_by_its_curve_and_stays_within_its_range() -> None:
    frequencies = np.geomspace(20, 20000, 200)
    rng = np.random.default_rng(0)
    curves = np.stack([augment.eq_curve(rng, frequencies, 6.0) for _ in range(50)])
    curves_db = 20 * np.log10(curves)
    assert curves_db.max() <= 18.0 and curves_db.min() >= -18.0
    assert curves_db.std() > 1.0  # not flat
    tracks = [noise_track("t", 1.0, 0)]
    plain = sampler(tracks).batch(0, 0, 0, 4)
    equalised = sampler(tracks, eq_probability=1.0).batch(0, 0, 0, 4)
    ratio = (equalised.targets.abs() / plain.targets.abs().clamp_min(1e-6)).mean(dim=1)
    # per source and bin one factor, the same in every frame where there is signal
    assert float(ratio.std(dim=-1).mean()) > 0.05
    torch.testing.assert_close(equalised.mixture, equalised.targets.sum(dim=2))


def test_the_limiter_holds_the_loudest_frame_and_lifts_the_quiet_ones() -> None:
    energy = np.concatenate([np.full(20, 1e-4), np.full(5, 1.0), np.full(40, 1e-4)])
    gains = augment.limiter_gains(energy, push_db=12.0, release_frames=4.0)
    level = np.sqrt(energy) * gains
    assert level.max() <= np.sqrt(energy).max() * 1.0001  # the ceiling holds
    assert gains[:20].min() == pytest.approx(10 ** (12 / 20), rel=1e-5)  # quiet: pushed
    assert gains[20:25].max() == pytest.approx(1.0, rel=1e-5)  # loud: held at the ceiling
    # the release: the frames after the loud part recover gradually, not at once
    assert gains[25] < gains[30] < gains[60]
    tracks = [noise_track("t", 1.0, 0)]
    limited = sampler(tracks, limiter_probability=1.0).batch(0, 0, 0, 2)
    torch.testing.assert_close(limited.mixture, limited.targets.sum(dim=2))


def test_pitch_and_tempo_variants_shift_the_pitch_and_change_the_length() -> None:
    t = np.arange(RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stems = {stem: np.stack([tone, tone], axis=1) for stem in STEMS}
    track = Track("tone", stems, np.sum(list(stems.values()), axis=0))
    variants = augment.pitch_tempo_variants([track], 1, 2.0, 0.05)
    for stem in range(4):
        semitones, tempo = augment._variant_parameters("tone", stem, 0, 2.0, 0.05)
        audio = variants[0][stem][0]
        assert audio.shape[0] == pytest.approx(RATE / tempo, rel=0.01)
        middle = audio[len(audio) // 4 : 3 * len(audio) // 4, 0]
        spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
        peak = np.argmax(spectrum) * RATE / len(middle)
        assert peak == pytest.approx(440 * 2 ** (semitones / 12), rel=0.01)


@pytest.mark.slow
def test_sources_taken_from_variants_still_sum_to_the_mixture() -> None:
    tracks = [noise_track("t", 1.0, 0)]
    batch = sampler(tracks, pitch_semitones=2.0, tempo_change=0.05, variant_probability=1.0).batch(
        0, 0, 0, 3
    )
    torch.testing.assert_close(batch.mixture, batch.targets.sum(dim=2))
    plain = sampler(tracks).batch(0, 0, 0, 3)
    assert not torch.allclose(plain.targets.abs(), batch.targets.abs(), atol=1e-3)
    # a variant's excerpt, analysed per batch, equals the same frames of the whole variant
    draw = sampler(tracks, pitch_semitones=2.0, tempo_change=0.05)
    audio = draw._variants[0][1][0]
    whole = stft().analyze(torch.from_numpy(audio.T.astype(np.float32))[None])[0]
    for first in (0, 3, 60):
        frames = torch.view_as_complex(draw._variant_frames(audio, first, draw.excerpt_frames))
        torch.testing.assert_close(frames, whole[first : first + draw.excerpt_frames])


def test_subband_bins_map_to_their_full_band_frequencies() -> None:
    front_end = SubbandFrontEnd(get_preset("live"), 2, 4)
    frequencies = front_end.bin_frequencies()
    assert frequencies.shape == (8, front_end.n_bins)
    band_width = RATE / 8
    for band in range(4):
        row = frequencies[2 * band]
        assert row.min() >= band * band_width - 1 and row.max() <= (band + 1) * band_width + 1
    # odd bands are mirrored by decimation: their bins count down
    assert frequencies[2, 0] > frequencies[2, -1]
    tracks = [noise_track("t", 1.0, 0)]
    batch = sampler(tracks, front_end, eq_probability=1.0, width_range=(0.5, 1.5)).batch(0, 0, 0, 2)
    torch.testing.assert_close(batch.mixture, batch.targets.sum(dim=2))
