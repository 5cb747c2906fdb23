"""The Python API: ``livestems.separate`` and ``livestems.Separator``, on the bundled model."""

from __future__ import annotations

import numpy as np
import pytest

import livestems
from livestems.realtime.errors import UserError
from livestems.realtime.io.generated_song import generated_song
from livestems.realtime.runtime.catalog import bundled_model_file

pytestmark = pytest.mark.skipif(bundled_model_file() is None, reason="no bundled model here")


@pytest.fixture(scope="module")
def separator() -> livestems.Separator:
    return livestems.Separator.load("lstm-live", provider="cpu")


def _stream(separator: livestems.Separator, audio: np.ndarray, seed: int) -> np.ndarray:
    """The stems of ``audio`` streamed in random blocks, then flushed: (n_stems, n, channels)."""
    rng = np.random.default_rng(seed)
    pieces, start = [], 0
    while start < audio.shape[0]:
        n = int(rng.integers(1, separator.max_block + 1))
        pieces.append(separator.process(audio[start : start + n]))
        start += n
    pieces.append(separator.flush())
    return np.concatenate(pieces, axis=1)


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_streaming_in_any_blocks_equals_separating_offline(
    separator: livestems.Separator, rate: int
) -> None:
    audio = generated_song(3.0, rate, seed=5)
    offline = separator.separate(audio, rate)
    separator.prepare(rate, max_block=512)
    latency = separator.latency_samples
    streamed = _stream(separator, audio, seed=rate)
    assert streamed.shape == (4, audio.shape[0] + latency, 2)
    edge = 64  # soxr's one-shot and streaming resamplers differ in their first few samples
    for index, (name, stem) in enumerate(offline.items()):
        got = streamed[index, latency : latency + audio.shape[0]]
        if name == "other" and rate != 44_100:
            # offline, "other" also holds what the resampling round trip lost: the song's band
            # above 22.05 kHz (the hi-hat noise), and nothing below 20 kHz
            lost = np.fft.rfft(stem - got, axis=0)
            bins = np.fft.rfftfreq(stem.shape[0], 1 / rate)
            below = np.abs(lost[bins < 20_000]).max()
            assert below < 1e-2 * np.abs(lost).max(), below
            continue
        np.testing.assert_allclose(got[edge:-edge], stem[edge:-edge], atol=2e-4, err_msg=name)
    # and it is a separation, not a copy
    assert np.abs(offline["vocals"] - audio).max() > 0.01


def test_the_latency_at_the_model_rate_is_the_processors(separator: livestems.Separator) -> None:
    separator.prepare(44_100, max_block=256)
    assert separator.latency_samples == separator.model.metadata.latency_samples == 510


def test_reset_starts_the_same_stream_again(separator: livestems.Separator) -> None:
    audio = generated_song(1.0, 48_000, seed=1)
    separator.prepare(48_000, max_block=300)
    first = _stream(separator, audio, seed=0)
    separator.reset()
    again = _stream(separator, audio, seed=0)
    np.testing.assert_array_equal(first, again)


def test_process_returns_arrays_the_caller_owns(separator: livestems.Separator) -> None:
    separator.prepare(44_100, max_block=128)
    block = generated_song(0.01, 44_100)[:128]
    first = separator.process(block)
    kept = first.copy()
    separator.process(block * 0.5)
    np.testing.assert_array_equal(first, kept)


def test_mono_audio_gives_mono_stems_that_sum_to_it() -> None:
    mono = generated_song(1.0, 22_050, seed=2)[:, 0]
    stems = livestems.separate(mono, 22_050)
    assert all(stem.shape == (mono.shape[0], 1) for stem in stems.values())
    np.testing.assert_allclose(sum(stems.values())[:, 0], mono, atol=1e-6)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros((100, 2), np.float32), 1000, "between 8000 and 384000"),
        (np.zeros((100, 2), np.float32), 44_100.5, "whole number"),
        (np.zeros((2, 100, 2), np.float32), 44_100, "samples first"),
        (np.zeros((100, 5), np.float32), 44_100, "1 or 2 channels"),
        (np.full((100, 2), np.nan, np.float32), 44_100, "NaN"),
        (np.zeros((100, 2), np.int16), 44_100, "floating point"),
    ],
)
def test_bad_input_is_one_sentence(audio: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        livestems.separate(audio, rate)  # type: ignore[arg-type]
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


def test_an_unknown_model_and_an_unprepared_stream_are_one_sentence(
    separator: livestems.Separator,
) -> None:
    with pytest.raises(UserError, match="No model file or model named 'nope'"):
        livestems.Separator.load("nope")
    fresh = livestems.Separator(separator.model)
    with pytest.raises(UserError, match="prepare"):
        fresh.process(np.zeros((10, 2), np.float32))
    fresh.prepare(44_100, 64)
    with pytest.raises(UserError, match=r"\(n_samples, 2\)"):
        fresh.process(np.zeros((10, 3), np.float32))


def test_the_wiener_post_filter_is_a_switch_that_changes_the_stems() -> None:
    audio = generated_song(1.0, 44_100, seed=4)
    plain = livestems.separate(audio, 44_100)
    sharpened = livestems.separate(audio, 44_100, postfilter=True)
    np.testing.assert_allclose(sum(sharpened.values()), audio, atol=1e-5)
    assert max(np.abs(sharpened[k] - plain[k]).max() for k in plain) > 1e-3
