"""The synthetic multitrack generator, with the real FluidSynth and FluidR3_GM sound font.

Each stem is checked for the instrument it claims by what it sounds like: the bass's energy lies
below 300 Hz, the lead is one periodic voice in a vocal band, the drums are noise-like and
broadband, the other stem is chords in the middle of the spectrum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy import signal

from livestems.models.data.datasets import STEMS, Track
from livestems.models.synth import procedural as synth
from livestems.models.synth.composer import BEND, compose
from livestems.models.synth.fluidsynth import (
    SynthesizerUnavailableError,
    sound_font_path,
)
from livestems.realtime.errors import UserError
from livestems.realtime.runtime.catalog import DEMO_SONG

SR = 44100
# Seed 7 has the brightest bass of the first two dozen (a finger bass); 4 a slap bass.
SEEDS = (0, 4, 7, 14)
DURATION_S = 4.0

try:
    sound_font_path()
    HAVE_SOUND_FONT = True
except SynthesizerUnavailableError:
    HAVE_SOUND_FONT = False
needs_fluidsynth = pytest.mark.skipif(
    not HAVE_SOUND_FONT, reason="FluidSynth's GM sound font is missing (./setup.sh --dev)"
)


@pytest.fixture(scope="module")
def songs() -> dict[int, Track]:
    if not HAVE_SOUND_FONT:
        pytest.skip("FluidSynth's GM sound font is missing (./setup.sh --dev)")
    return {seed: synth.render_song(seed, DURATION_S, use_cache=False) for seed in SEEDS}


def band_fraction(audio: np.ndarray, low_hz: float, high_hz: float) -> float:
    """The share of the signal's power between two frequencies."""
    freqs, power = signal.welch(audio.mean(axis=1), SR, nperseg=4096)
    return float(power[(freqs >= low_hz) & (freqs < high_hz)].sum() / power.sum())


def spectral_flatness(audio: np.ndarray) -> float:
    """Median over the sounding frames of geometric over arithmetic mean power (noise: ~1)."""
    freqs, _, spectrum = signal.stft(audio.mean(axis=1), SR, nperseg=2048)
    power = np.abs(spectrum[(freqs > 50) & (freqs < 16000)]) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(power), axis=0)) / np.mean(power, axis=0)
    energy = power.sum(axis=0)
    return float(np.median(flatness[energy > 0.01 * energy.max()]))


def periodicity(audio: np.ndarray) -> float:
    """Median over the sounding frames of the autocorrelation's peak for a 150-900 Hz pitch.

    One voice is periodic at its pitch (near 1); a chord's notes are not at any such lag.
    """
    mono = audio.mean(axis=1)
    n = 2048
    peaks = []
    for start in range(0, mono.shape[0] - n, n):
        frame = mono[start : start + n] * np.hanning(n)
        if np.sum(frame**2) < 1e-6:
            continue
        autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(frame, 2 * n)) ** 2)[:n]
        peaks.append(autocorrelation[SR // 900 : SR // 150].max() / autocorrelation[0])
    return float(np.median(peaks))


def midi_hz(pitch: int) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


@needs_fluidsynth
def test_the_same_seed_gives_the_same_audio_whatever_was_rendered_before() -> None:
    first = synth.render_song(3, 2.0, use_cache=False)
    synth.render_song(8, 2.0, use_cache=False)
    again = synth.render_song(3, 2.0, use_cache=False)
    for stem in STEMS:
        assert np.array_equal(first.stems[stem], again.stems[stem]), stem
    assert np.array_equal(first.mixture, again.mixture)
    assert first.name == "synth-000003"


def test_different_seeds_give_different_songs(songs: dict[int, Track]) -> None:
    scores = [compose(seed) for seed in range(12)]
    assert len({(s.key, s.mode, round(s.tempo_bpm)) for s in scores}) >= 10
    assert len({tuple(p.program for p in s.parts) for s in scores}) == 12
    assert not np.allclose(songs[0].mixture, songs[4].mixture)


def test_stems_sum_to_the_mixture_in_float32(songs: dict[int, Track]) -> None:
    for track in songs.values():
        assert track.mixture.dtype == np.float32
        assert track.mixture.shape == (round(DURATION_S * SR), 2)
        assert list(track.stems) == list(STEMS)
        total = np.zeros_like(track.mixture)
        for stem in STEMS:
            assert track.stems[stem].dtype == np.float32
            total += track.stems[stem]
        np.testing.assert_allclose(total, track.mixture, rtol=0, atol=1e-6)


def test_no_stem_is_silent_and_the_mixture_does_not_clip(songs: dict[int, Track]) -> None:
    half_second = SR // 2
    for seed, track in songs.items():
        peak = np.max(np.abs(track.mixture))
        assert 0.5 < peak < 1.0, seed
        for stem, audio in track.stems.items():
            n = audio.shape[0] // half_second
            rms = np.sqrt(np.mean(audio[: n * half_second].reshape(n, -1) ** 2, axis=1))
            # plays (above -45 dBFS) in most half-seconds of the song
            assert np.mean(rms > 10 ** (-45 / 20)) >= 0.75, (seed, stem)


def test_bass_energy_lies_below_300_hz(songs: dict[int, Track]) -> None:
    for seed, track in songs.items():
        assert band_fraction(track.stems["bass"], 0, 300) > 0.85, seed
    for seed in range(20):
        assert all(n.pitch <= 45 for n in compose(seed).notes_of("bass")), seed


def test_vocals_are_one_voice_in_a_vocal_band(songs: dict[int, Track]) -> None:
    for seed, track in songs.items():
        vocals = track.stems["vocals"]
        assert band_fraction(vocals, 100, 5000) > 0.95, seed
        assert periodicity(vocals) > 0.7, seed
        assert periodicity(vocals) > periodicity(track.stems["other"]) + 0.15, seed
    for seed in range(20):
        score = compose(seed)
        notes = sorted(score.notes_of("vocals"), key=lambda n: n.start_s)
        assert all(150 <= midi_hz(n.pitch) <= 900 for n in notes), seed
        # monophonic: each note ends before the next begins; phrases leave breaths
        assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(notes, notes[1:], strict=False))
        gaps = [b.start_s - a.end_s for a, b in zip(notes, notes[1:], strict=False)]
        assert max(gaps) >= 0.2, seed
        assert any(c.number == BEND and c.value != 8192 for c in score.controls)


def test_drums_are_broadband_and_noise_like(songs: dict[int, Track]) -> None:
    for seed, track in songs.items():
        drums = spectral_flatness(track.stems["drums"])
        assert drums > 0.03, seed
        for stem in ("vocals", "bass", "other"):
            assert drums > 10 * spectral_flatness(track.stems[stem]), (seed, stem)
        assert band_fraction(track.stems["drums"], 4000, SR / 2) > 0.01, seed


def test_other_is_chords_in_the_middle_of_the_spectrum(songs: dict[int, Track]) -> None:
    for seed, track in songs.items():
        assert band_fraction(track.stems["other"], 150, 4000) > 0.8, seed
        notes = compose(seed, DURATION_S).notes_of("other")
        starts = [n.start_s for n in notes]
        sounding = [sum(n.start_s <= t < n.end_s for n in notes) for t in starts]
        assert max(sounding) >= 3, seed


@needs_fluidsynth
def test_the_cache_returns_the_rendered_song(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVESTEMS_CACHE", str(tmp_path))
    rendered = synth.render_song(5, 1.0)
    assert len(list((tmp_path / "synth").glob("*.npz"))) == 1
    cached = synth.render_song(5, 1.0)
    for stem in STEMS:
        assert np.array_equal(rendered.stems[stem], cached.stems[stem]), stem
    assert np.array_equal(rendered.mixture, cached.mixture)


@needs_fluidsynth
def test_render_songs_in_parallel_gives_each_song(tmp_path: Path) -> None:
    tracks = synth.render_songs([2, 9], 1.0, n_workers=2, use_cache=False)
    assert [t.name for t in tracks] == ["synth-000002", "synth-000009"]
    alone = synth.render_song(9, 1.0, use_cache=False)
    assert np.array_equal(tracks[1].mixture, alone.mixture)


@needs_fluidsynth
def test_synthetic_tracks_render_when_loaded() -> None:
    refs = synth.synthetic_tracks(3, first_seed=40, duration_s=0.5)
    assert [r.name for r in refs] == ["synth-000040", "synth-000041", "synth-000042"]
    assert refs[1].path == Path("synth/41")
    track = refs[1].load()
    assert track.name == "synth-000041" and track.n_samples == SR // 2


def test_a_missing_sound_font_is_one_sentence_naming_the_packages(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        synth.render_song(0, 1.0, sound_font=tmp_path / "missing.sf2")
    message = str(caught.value)
    assert isinstance(caught.value, SynthesizerUnavailableError)
    assert "fluidsynth" in message and "fluid-soundfont-gm" in message
    assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message


def test_a_bad_duration_is_one_sentence() -> None:
    with pytest.raises(UserError, match="positive"):
        synth.render_song(0, 0.0)


def test_the_bundled_demo_song_and_its_recipe() -> None:
    recipe = json.loads(DEMO_SONG.with_suffix(".json").read_text())
    audio, rate = soundfile.read(DEMO_SONG, dtype="float32")
    assert rate == SR and audio.ndim == 2 and audio.shape[1] == 2
    assert 30 <= audio.shape[0] / SR <= 60
    assert abs(audio.shape[0] / SR - recipe["duration_s"]) < 0.1
    assert np.max(np.abs(audio)) < 1.0
    assert DEMO_SONG.stat().st_size < 1.5e6
    assert recipe["sound_font"]["licence"].startswith("MIT")
    assert "--demo" in recipe["regenerate"] and str(recipe["seed"]) in recipe["regenerate"]
    assert [s["name"] for s in recipe["sections"]][:3] == ["intro", "verse", "chorus"]
