"""Songs from MIDI files: stems by General MIDI family, exact sums, seeds, and bad input.

The MIDI files are written here with mido (a drum kit on channel 10, a GM bass, a piano playing
a tune over chords), so each stem's content is known; FluidR3_GM alone renders them, since it
loads in a quarter of a second (MuseScore General takes ten or more).
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from livestems.models.data.datasets import STEMS
from livestems.models.synth import midi as synth_midi
from livestems.models.synth.fluidsynth import (
    SynthesizerUnavailableError,
    sound_font_path,
)
from livestems.realtime.errors import UserError

FLUID_R3 = synth_midi.SOUND_FONTS[0].path
DURATION_S = 2.0

try:
    sound_font_path(FLUID_R3)
    HAVE_SOUND_FONT = True
except SynthesizerUnavailableError:
    HAVE_SOUND_FONT = False
needs_fluidsynth = pytest.mark.skipif(
    not HAVE_SOUND_FONT, reason="FluidSynth's GM sound font is missing (./setup.sh --dev)"
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESTEMS_CACHE", str(tmp_path / "cache"))


def write_midi(path: Path, drums: bool = True, bass: bool = True, piano: bool = True) -> Path:
    """Two bars at 120 bpm: kick and snare on channel 10, a finger bass, piano tune and chords."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    beat = 480

    def track(channel: int, program: int, notes: list[tuple[int, int, int]]) -> None:
        """notes: (start beat in eighths, length in eighths, key), played as given."""
        events = []
        for start, length, key in notes:
            events.append(
                (
                    start * beat // 2,
                    mido.Message("note_on", channel=channel, note=key, velocity=100),
                )
            )
            events.append(
                ((start + length) * beat // 2, mido.Message("note_off", channel=channel, note=key))
            )
        events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
        messages = mido.MidiTrack(
            [mido.Message("program_change", channel=channel, program=program)]
        )
        now = 0
        for tick, message in events:
            messages.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(messages)

    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    if drums:
        track(9, 0, [(e, 1, 36 if e % 4 == 0 else 38) for e in range(0, 16, 2)])
    if bass:
        track(1, 33, [(e, 2, 36 if e < 8 else 41) for e in range(0, 16, 2)])
    if piano:
        tune = [72, 74, 76, 77, 79, 77, 76, 74]
        chords = [(0, 8, k) for k in (60, 64, 67)] + [(8, 8, k) for k in (60, 65, 69)]
        track(0, 0, [(2 * i, 2, key) for i, key in enumerate(tune)] + chords)
    midi.save(path)
    return path


def silent(audio: np.ndarray) -> bool:
    return not np.any(audio)


@needs_fluidsynth
def test_stems_sum_to_the_mixture(tmp_path: Path) -> None:
    song = write_midi(tmp_path / "song.mid")
    track = synth_midi.render_midi_song(
        3, DURATION_S, midi_files=[song], sound_fonts=[FLUID_R3], use_cache=False
    )
    assert tuple(track.stems) == STEMS
    for audio in track.stems.values():
        assert audio.dtype == np.float32 and audio.shape == (round(DURATION_S * 44100), 2)
    total = track.stems["vocals"] + track.stems["drums"] + track.stems["bass"]
    assert np.array_equal(track.mixture, total + track.stems["other"])
    assert track.mixture.dtype == np.float32
    for stem in STEMS:
        assert not silent(track.stems[stem]), stem
    assert (
        0.5 < np.max(np.abs(track.mixture)) <= 10 ** (-1 / 20) * 1.001
    )  # -1 dBFS, float16's rounding


@needs_fluidsynth
def test_each_family_lands_in_its_stem(tmp_path: Path) -> None:
    # drums and bass only: the vocals and other stems are silent, sample for sample
    song = write_midi(tmp_path / "rhythm.mid", piano=False)
    track = synth_midi.render_midi_song(
        0, DURATION_S, midi_files=[song], sound_fonts=[FLUID_R3], use_cache=False
    )
    assert silent(track.stems["vocals"]) and silent(track.stems["other"])
    assert not silent(track.stems["drums"]) and not silent(track.stems["bass"])
    # the drums alone: every other stem is silent
    drums_only = write_midi(tmp_path / "drums.mid", bass=False, piano=False)
    track = synth_midi.render_midi_song(
        0, DURATION_S, midi_files=[drums_only], sound_fonts=[FLUID_R3], use_cache=False
    )
    assert [stem for stem in STEMS if not silent(track.stems[stem])] == ["drums"]


def test_the_tune_is_the_vocals_and_the_chords_are_other(tmp_path: Path) -> None:
    piece = synth_midi.read_midi(write_midi(tmp_path / "song.mid"))
    stems = synth_midi.stem_notes(piece, 0.0, 4.0)  # the whole piece
    assert {n.channel for n in stems["drums"]} == {9}
    assert {n.program for n in stems["bass"]} == {33}
    # the tune, C5 to G5, is in a singer's range already: no octave moved
    assert [n.pitch for n in stems["vocals"]] == [72, 74, 76, 77, 79, 77, 76, 74]
    assert sorted(n.pitch for n in stems["other"]) == [60, 60, 64, 65, 67, 69]
    # a transposition moves every melodic note and never a drum
    up = synth_midi.stem_notes(piece, 0.0, 4.0, transpose=2)
    assert [n.pitch for n in up["drums"]] == [n.pitch for n in stems["drums"]]
    assert [n.pitch for n in up["bass"]] == [n.pitch + 2 for n in stems["bass"]]


@needs_fluidsynth
def test_a_seed_gives_the_same_song_and_the_cache_gives_it_back(tmp_path: Path) -> None:
    songs = [write_midi(tmp_path / "a.mid"), write_midi(tmp_path / "b.mid", drums=False)]

    def render(seed: int, use_cache: bool = False) -> np.ndarray:
        track = synth_midi.render_midi_song(
            seed, DURATION_S, midi_files=songs, sound_fonts=[FLUID_R3], use_cache=use_cache
        )
        return track.stack()

    first = render(5)
    assert np.array_equal(first, render(5))
    assert any(not np.array_equal(first, render(seed)) for seed in (6, 7, 8))
    rendered = render(5, use_cache=True)  # renders and stores
    assert np.array_equal(rendered, first)
    assert list((tmp_path / "cache" / "synth_midi").glob("*.npz"))
    assert np.array_equal(render(5, use_cache=True), first)  # read back


def one_sentence(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and text.endswith(".") and ". " not in text, text
    return text


def test_a_file_that_does_not_parse_is_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"this is no MIDI file at all")
    with pytest.raises(synth_midi.MidiFileError) as caught:
        synth_midi.read_midi(broken)
    assert isinstance(caught.value, UserError)
    assert str(broken) in one_sentence(caught.value)
    with pytest.raises(synth_midi.MidiFileError) as caught:
        synth_midi.read_midi(tmp_path / "missing.mid")
    one_sentence(caught.value)


@needs_fluidsynth
def test_a_folder_skips_and_names_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "midi"
    folder.mkdir()
    write_midi(folder / "good.mid")
    (folder / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00")  # cut short
    tracks = synth_midi.midi_folder_tracks(folder, DURATION_S, sound_fonts=[FLUID_R3])
    assert [t.name for t in tracks] == ["midi-good-0"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "bad.mid" in lines[0] and "skipped" in lines[0]
    (folder / "good.mid").unlink()
    with pytest.raises(synth_midi.MidiUnavailableError) as caught:
        synth_midi.midi_folder_tracks(folder, DURATION_S, sound_fonts=[FLUID_R3])
    one_sentence(caught.value)


def test_a_missing_sound_font_is_one_sentence(tmp_path: Path) -> None:
    song = write_midi(tmp_path / "song.mid")
    missing = tmp_path / "no-such-font.sf2"
    with pytest.raises(SynthesizerUnavailableError) as caught:
        synth_midi.render_midi_song(0, DURATION_S, midi_files=[song], sound_fonts=[missing])
    assert isinstance(caught.value, UserError)
    assert str(missing) in one_sentence(caught.value)


@needs_fluidsynth
@pytest.mark.skipif(
    not synth_midi.bundled_midi_files(),
    reason="no packaged MIDI files (openttd-openmsx, planetblupi-music-midi: ./setup.sh --dev)",
)
def test_midi_tracks_renders_the_packaged_pieces() -> None:
    tracks = synth_midi.midi_tracks(2, 0, DURATION_S, sound_fonts=[FLUID_R3])
    assert [t.name.split("-")[1] for t in tracks] == ["000000", "000001"]
    for track in tracks:
        assert np.array_equal(track.mixture, sum(track.stems[s] for s in STEMS))
        assert not silent(track.stems["drums"]) or not silent(track.stems["other"])
    refs = synth_midi.midi_track_refs(1, 0, DURATION_S)
    assert refs[0].name == "midi-000000"
