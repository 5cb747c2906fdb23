"""Synthetic songs from real compositions: free MIDI files rendered stem by stem.

A seed picks a piece from the MIDI files that Debian packages ship under free licences
(``MIDI_SOURCES``), an excerpt of it, a transposition and a sound font (``SOUND_FONTS``:
FluidR3_GM or MuseScore General), and renders the excerpt with FluidSynth, one pass per stem,
so that each stem is exactly what its notes sound like:

- drums: MIDI channel 10 (index 9), the General MIDI kit;
- bass: every note played with a GM bass program (32-39) at the time;
- vocals: the lead melody, the top voice (skyline) of the melodic channel that carries the most
  melody in the excerpt, moved into a singer's range and re-voiced to a choir, voice or
  synth-voice patch; the rest of that channel's notes stay in "other";
- other: everything else.

The stems are mixed as the procedural generator's are (``synth.mix_stems``: loudness balance,
seeded gains and a room each, the mixture peaking at -1 dBFS), rounded to float16's grid, and
the mixture is their float32 sum, exactly. A song is a pure function of its seed and the
installed files; rendered songs are cached under ``datasets.cache_dir()``, keyed by everything
that went in (seed, length, rate, version, every MIDI file's and sound font's path, size and
modification time).

Any folder of MIDI files renders the same way (``midi_folder_tracks``); a file that does not
parse is named in one warning line and skipped.

    python -m livestems.models.synth.midi --seed 7 -o /tmp/midi7      # a folder of stems
    python -m livestems.models.synth.midi --folder my-midi/ -o /tmp/mine
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ..data.datasets import SAMPLE_RATE, STEMS, Track, TrackRef, cache_dir
from .composer import VOCAL_PROGRAMS, Part, Score
from .fluidsynth import (
    BEND,
    CONTROL,
    DRUM_CHANNEL,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM,
    MidiEvent,
    SynthesizerUnavailableError,
    sound_font_path,
    synthesizer,
)
from .procedural import mix_stems, write_stem_folder

__all__ = [
    "MIDI_SOURCES",
    "SOUND_FONTS",
    "MidiFileError",
    "MidiUnavailableError",
    "bundled_midi_files",
    "installed_sound_fonts",
    "midi_folder_tracks",
    "midi_track_refs",
    "midi_tracks",
    "read_midi",
    "render_midi_song",
]

# Bump whenever a seed's audio changes, so that cached songs are rendered again.
MIDI_GENERATOR_VERSION = 1
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
BASS_PROGRAMS = range(32, 40)
BANK_SELECT = (0, 32)  # CC 0 and 32: a bank the sound font may lack would silence a channel
TRANSPOSE_SEMITONES = (-3, 3)  # seeded, melodic channels only
# The lead's median pitch is moved by octaves into A3-E5 (220-660 Hz), a singer's range.
LEAD_RANGE = (57, 76)
# Programs that usually carry a tune: voices, leads, solo strings, brass, reeds and pipes.
LEAD_LIKE_PROGRAMS = frozenset([40, 41, 52, 53, 54, 85, *range(56, 88)])
MIX_SEED_OFFSET = 1 << 40  # the mix's random stream, apart from the procedural songs'
ONSET_TOLERANCE_S = 0.01  # notes starting this close together form one chord
MIN_HELD_S = 0.15  # a tune's typical note lasts at least this long


@dataclass(frozen=True)
class MidiSource:
    """A Debian package that ships MIDI files, where, and under which licence."""

    package: str
    folder: Path
    licence: str
    what: str


@dataclass(frozen=True)
class SoundFont:
    """A General MIDI sound font that Debian packages, and its licence."""

    package: str
    path: Path
    licence: str


MIDI_SOURCES = (
    MidiSource(
        "openttd-openmsx",
        Path("/usr/share/games/openttd/baseset/openmsx"),
        "GPL-2.0",
        "OpenMSX, OpenTTD's free music set: 31 pieces (jazz, blues, rock, funk, ragtime)",
    ),
    MidiSource(
        "planetblupi-music-midi",
        Path("/usr/share/planetblupi/music"),
        "GPL-3.0-or-later",
        "Planet Blupi's soundtrack: 10 pieces (pop, funk, electronic)",
    ),
)
SOUND_FONTS = (
    SoundFont("fluid-soundfont-gm", Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), "MIT"),
    SoundFont(
        "musescore-general-soundfont",
        Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"),
        "MIT (some samples CC0 or public domain)",
    ),
)
INSTALL_HINT = (
    "install the Debian packages openttd-openmsx and planetblupi-music-midi (./setup.sh --dev does)"
)


class MidiFileError(UserError, ValueError):
    """A MIDI file that cannot be read; the message is one sentence."""


class MidiUnavailableError(UserError, RuntimeError):
    """No MIDI file to render; the message is one sentence."""


@dataclass(frozen=True)
class MidiNote:
    """One note: channel, key, velocity, the program the channel had, and when, in seconds."""

    channel: int
    pitch: int
    velocity: int
    program: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class MidiControl:
    """A program change, controller or pitch bend (``synth_fluidsynth`` kinds) at a time."""

    time_s: float
    kind: int
    channel: int
    data1: int
    data2: int = 0


@dataclass(frozen=True)
class MidiPiece:
    """A MIDI file as notes and controls in seconds (its tempo map applied)."""

    name: str
    notes: tuple[MidiNote, ...]
    controls: tuple[MidiControl, ...]
    length_s: float


def read_midi(path: str | os.PathLike[str]) -> MidiPiece:
    """A MIDI file's notes and controls, in seconds.

    Raises:
        MidiFileError: the file is missing or is not a MIDI file that parses.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as err:
        raise MidiFileError(f"The MIDI file {path} cannot be read ({err.strerror}).") from err
    return _read_midi(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_midi(path: Path, size: int, mtime_ns: int) -> MidiPiece:
    """``read_midi`` for one version of a file (size and time are the cache's key)."""
    import mido

    try:
        midi = mido.MidiFile(path, clip=True)
        messages = list(midi)  # every track merged, delta times in seconds
    except Exception as err:  # mido raises many kinds (OSError, EOFError, ValueError, ...)
        reason = str(err).split(". ")[0].rstrip(".") or type(err).__name__  # one sentence
        raise MidiFileError(
            f"The MIDI file {path} does not parse ({reason}): it is not a Standard MIDI File."
        ) from err
    notes: list[MidiNote] = []
    controls: list[MidiControl] = []
    programs = [0] * 16
    sounding: dict[tuple[int, int], list[tuple[float, int, int]]] = {}
    now = 0.0
    for message in messages:
        now += message.time
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            key = (message.channel, message.note)
            start = (now, message.velocity, programs[message.channel])
            sounding.setdefault(key, []).append(start)
        elif kind in ("note_off", "note_on"):
            started = sounding.get((message.channel, message.note))
            if started:
                start_s, velocity, program = started.pop(0)  # first on, first off
                notes.append(
                    MidiNote(message.channel, message.note, velocity, program, start_s, now)
                )
        elif kind == "program_change":
            programs[message.channel] = message.program
            controls.append(MidiControl(now, PROGRAM, message.channel, message.program))
        elif kind == "control_change":
            controls.append(
                MidiControl(now, CONTROL, message.channel, message.control, message.value)
            )
        elif kind == "pitchwheel":
            controls.append(MidiControl(now, BEND, message.channel, message.pitch + 8192))
    for (channel, pitch), started in sounding.items():  # never released: held to the end
        for start_s, velocity, program in started:
            notes.append(MidiNote(channel, pitch, velocity, program, start_s, now))
    if not notes:
        raise MidiFileError(f"The MIDI file {path} has no notes to play.")
    notes.sort(key=lambda n: (n.start_s, n.channel, n.pitch))
    return MidiPiece(path.stem, tuple(notes), tuple(controls), now)


def bundled_midi_files() -> list[Path]:
    """The MIDI files of the installed ``MIDI_SOURCES`` packages, in a fixed order."""
    return [path for source in MIDI_SOURCES for path in _midi_files_in(source.folder)]


def _midi_files_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)


def installed_sound_fonts() -> list[Path]:
    """The ``SOUND_FONTS`` that are installed, in a fixed order."""
    return [font.path for font in SOUND_FONTS if font.path.is_file()]


def _sound_fonts(sound_fonts: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    if sound_fonts is None:
        found = installed_sound_fonts()
        if not found:
            packages = " or ".join(font.package for font in SOUND_FONTS)
            raise SynthesizerUnavailableError(
                f"No General MIDI sound font is installed: install the Debian package "
                f"{packages} (./setup.sh --dev does)."
            )
        return found
    if not sound_fonts:
        raise SynthesizerUnavailableError("The list of sound fonts to choose from is empty.")
    return [sound_font_path(font) for font in sound_fonts]


@dataclass(frozen=True)
class _Choice:
    """What a seed draws: where the excerpt starts, the transposition, font and lead patch."""

    start_s: float
    transpose: int
    sound_font: Path
    vocal_program: int


def _choose(
    rng: np.random.Generator, piece: MidiPiece, duration_s: float, fonts: Sequence[Path]
) -> _Choice:
    # the excerpt starts on a note, early enough to fill its length when the piece allows
    onsets = np.unique(np.round([n.start_s for n in piece.notes], 3))
    latest = max(float(onsets[0]), piece.length_s - duration_s)
    candidates = onsets[onsets <= latest]
    start_s = float(candidates[rng.integers(len(candidates))])
    transpose = int(rng.integers(TRANSPOSE_SEMITONES[0], TRANSPOSE_SEMITONES[1] + 1))
    font = fonts[int(rng.integers(len(fonts)))]
    vocal_program = int(VOCAL_PROGRAMS[rng.integers(len(VOCAL_PROGRAMS))])
    return _Choice(start_s, transpose, font, vocal_program)


def _skyline(notes: Sequence[MidiNote]) -> list[MidiNote]:
    """The top voice: the highest note of each onset, cut where a higher one begins."""
    melody: list[MidiNote] = []
    i = 0
    while i < len(notes):
        j = i
        while j < len(notes) and notes[j].start_s - notes[i].start_s < ONSET_TOLERANCE_S:
            j += 1
        top = max(notes[i:j], key=lambda n: n.pitch)
        i = j
        if melody and melody[-1].end_s > top.start_s:
            if top.pitch < melody[-1].pitch:
                continue  # under a note of the tune: accompaniment
            previous = melody[-1]
            melody[-1] = MidiNote(
                previous.channel,
                previous.pitch,
                previous.velocity,
                previous.program,
                previous.start_s,
                top.start_s,
            )
        melody.append(top)
    return melody


def _lead(notes: Sequence[MidiNote], duration_s: float) -> list[MidiNote]:
    """The excerpt's tune: the skyline of the melodic channel that carries the most of one."""
    best: list[MidiNote] = []
    best_score = 0.0
    channels = sorted({n.channel for n in notes if n.channel != DRUM_CHANNEL})
    for channel in channels:
        own = [n for n in notes if n.channel == channel and n.program not in BASS_PROGRAMS]
        if not own:
            continue
        melody = _skyline(own)
        coverage = sum(min(n.end_s, duration_s) - n.start_s for n in melody) / duration_s
        median = float(np.median([n.pitch for n in melody]))
        score = min(coverage, 1.0) * (1.0 if 55 <= median <= 88 else 0.4)
        score *= 1.5 if melody[0].program in LEAD_LIKE_PROGRAMS else 1.0
        # a tune moves and holds its notes; a riff repeats one short note
        pitches = [n.pitch for n in melody]
        motion = (
            np.mean([a != b for a, b in zip(pitches, pitches[1:], strict=False)])
            if melody[1:]
            else 0
        )
        held_s = float(np.median([n.end_s - n.start_s for n in melody]))
        score *= (0.3 + 0.7 * float(motion)) * min(1.0, held_s / MIN_HELD_S)
        score += median / 1000  # a tie goes to the higher voice
        if score > best_score:
            best, best_score = melody, score
    return best


def _excerpt(piece: MidiPiece, start_s: float, duration_s: float) -> list[MidiNote]:
    """The notes that begin in the excerpt, times from its start (the tail cut by rendering)."""
    end_s = start_s + duration_s
    return [
        MidiNote(n.channel, n.pitch, n.velocity, n.program, n.start_s - start_s, n.end_s - start_s)
        for n in piece.notes
        if start_s - 1e-6 <= n.start_s < end_s
    ]


def _control_events(
    piece: MidiPiece, start_s: float, duration_s: float, channels: Iterable[int], sample_rate: int
) -> list[MidiEvent]:
    """The channels' programs, controllers and bends: the state at the start, then changes."""
    wanted = set(channels)
    state: dict[tuple[int, int, int], MidiControl] = {}  # the last of each before the start
    changes: list[MidiEvent] = []
    for control in piece.controls:
        if control.channel not in wanted:
            continue
        if control.kind == CONTROL and control.data1 in BANK_SELECT:
            continue
        if control.time_s < start_s:
            number = control.data1 if control.kind == CONTROL else -1
            state[(control.channel, control.kind, number)] = control
        elif control.time_s < start_s + duration_s:
            sample = round((control.time_s - start_s) * sample_rate)
            changes.append(
                MidiEvent(sample, control.kind, control.channel, control.data1, control.data2)
            )
    initial = [MidiEvent(0, c.kind, c.channel, c.data1, c.data2) for c in state.values()]
    return initial + changes


def _note_events(notes: Iterable[MidiNote], sample_rate: int) -> list[MidiEvent]:
    events = []
    for note in notes:
        start = round(note.start_s * sample_rate)
        end = max(start + 1, round(note.end_s * sample_rate))
        events.append(MidiEvent(start, NOTE_ON, note.channel, note.pitch, note.velocity))
        events.append(MidiEvent(end, NOTE_OFF, note.channel, note.pitch))
    return events


def _shifted(note: MidiNote, semitones: int) -> MidiNote:
    pitch = min(127, max(0, note.pitch + semitones))
    return MidiNote(note.channel, pitch, note.velocity, note.program, note.start_s, note.end_s)


def stem_notes(
    piece: MidiPiece, start_s: float, duration_s: float, transpose: int = 0
) -> dict[str, list[MidiNote]]:
    """The excerpt's notes by stem (times from the excerpt's start, melodic notes transposed).

    The vocals' notes are the lead, already moved into ``LEAD_RANGE``; they keep their source
    channel, whose program the renderer replaces by a voice patch.
    """
    notes = [
        n if n.channel == DRUM_CHANNEL else _shifted(n, transpose)
        for n in _excerpt(piece, start_s, duration_s)
    ]
    lead = _lead(notes, duration_s)
    in_lead = {(n.channel, n.pitch, n.start_s) for n in lead}
    if lead:
        median = float(np.median([n.pitch for n in lead]))
        octaves = 0
        while median + 12 * octaves > LEAD_RANGE[1]:
            octaves -= 1
        while median + 12 * octaves < LEAD_RANGE[0]:
            octaves += 1
        lead = [_shifted(n, 12 * octaves) for n in lead]
    stems: dict[str, list[MidiNote]] = {"vocals": lead, "drums": [], "bass": [], "other": []}
    for note in notes:
        if note.channel == DRUM_CHANNEL:
            stems["drums"].append(note)
        elif note.program in BASS_PROGRAMS:
            stems["bass"].append(note)
        elif (note.channel, note.pitch, note.start_s) not in in_lead:
            stems["other"].append(note)
    return stems


def render_excerpt(
    piece: MidiPiece,
    seed: int,
    choice: _Choice,
    duration_s: float,
    sample_rate: int = SAMPLE_RATE,
    name: str | None = None,
) -> Track:
    """One excerpt of a piece as a ``Track``: a FluidSynth pass per stem, then the mix."""
    synth = synthesizer(choice.sound_font, sample_rate)
    n_samples = round(duration_s * sample_rate)
    stems = stem_notes(piece, choice.start_s, duration_s, choice.transpose)
    dry = np.zeros((len(STEMS), n_samples, 2), np.float32)
    for index, stem in enumerate(STEMS):
        notes = stems[stem]
        if not notes:
            continue
        channels = {n.channel for n in notes}
        events = _control_events(piece, choice.start_s, duration_s, channels, sample_rate)
        if stem == "vocals":
            events = [e for e in events if e.kind != PROGRAM]
            events += [MidiEvent(0, PROGRAM, c, choice.vocal_program) for c in channels]
        events += _note_events(notes, sample_rate)
        dry[index] = synth.render(events, n_samples).sum(axis=0)  # every audio group
    bass_programs = [n.program for n in stems["bass"]]
    bass_program = max(set(bass_programs), key=bass_programs.count) if bass_programs else 33
    # mix_stems reads only the seed (its random stream) and the bass program (its low-pass)
    bass_part = Part("bass", "bass", 2, bass_program, 100, 64)
    shim = Score(MIX_SEED_OFFSET + seed, 120.0, 0, "major", [], [bass_part], duration_s=duration_s)
    mixed = mix_stems(dry, shim, sample_rate)
    mixture = mixed["vocals"] + mixed["drums"] + mixed["bass"] + mixed["other"]
    return Track(name or f"midi-{seed:06d}-{piece.name}", mixed, mixture, sample_rate)


def _signature(paths: Iterable[Path]) -> str:
    parts = []
    for path in paths:
        stat = path.stat()
        parts.append(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return "\n".join(parts)


def _cached_render(
    key: str, name: str, sample_rate: int, render: Callable[[], Track], use_cache: bool
) -> Track:
    """``render()``, or the track it gave before for the same key (stems as float16)."""
    entry = cache_dir() / "synth_midi" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    if use_cache and entry.exists():
        try:
            with np.load(entry) as stored:
                stems = {stem: stored[stem].astype(np.float32) for stem in STEMS}
            mixture = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
            return Track(name, stems, mixture, sample_rate)
        except (OSError, ValueError, KeyError, EOFError):
            entry.unlink(missing_ok=True)  # a damaged entry is rendered again
    track: Track = render()
    if use_cache:
        try:
            with atomic_write(entry) as handle:
                # float16 holds the stems exactly (mix_stems rounds them to its grid)
                halves: dict[str, Any] = {s: a.astype(np.float16) for s, a in track.stems.items()}
                np.savez(handle, **halves)
        except OSError:
            pass  # a read-only home still renders, only slower
    return track


def _check_duration(duration_s: float) -> None:
    if duration_s <= 0 or not np.isfinite(duration_s):
        raise UserError(f"A synthetic song must last a positive time, not {duration_s} s.")


def render_midi_song(
    seed: int,
    duration_s: float = 10.0,
    sample_rate: int = SAMPLE_RATE,
    *,
    midi_files: Sequence[Path] | None = None,
    sound_fonts: Sequence[str | os.PathLike[str]] | None = None,
    use_cache: bool = True,
) -> Track:
    """Song ``seed``: an excerpt of one of the MIDI files, the same for the same seed.

    Args:
        seed: any non-negative integer.
        duration_s: the excerpt's length (a piece shorter than that ends in silence).
        midi_files: the pieces to choose from; ``bundled_midi_files()`` if None.
        sound_fonts: the fonts to choose from; the installed ``SOUND_FONTS`` if None.
        use_cache: read and write the rendered stems in the user's cache folder.

    Raises:
        MidiUnavailableError: there are no MIDI files to choose from.
        MidiFileError: the chosen file does not parse.
        SynthesizerUnavailableError: FluidSynth or a sound font is missing.
    """
    _check_duration(duration_s)
    files = list(bundled_midi_files() if midi_files is None else midi_files)
    if not files:
        raise MidiUnavailableError(f"There are no MIDI files to render: {INSTALL_HINT}.")
    fonts = _sound_fonts(sound_fonts)
    rng = np.random.default_rng([seed, MIDI_GENERATOR_VERSION, 0x3D1])
    path = Path(files[int(rng.integers(len(files)))])
    name = f"midi-{seed:06d}-{path.stem}"
    key = (
        f"song|{seed}|{duration_s!r}|{sample_rate}|{MIDI_GENERATOR_VERSION}|"
        f"{_signature(files)}|{_signature(fonts)}"
    )

    def render() -> Track:
        return _render_drawn(read_midi(path), rng, seed, duration_s, fonts, sample_rate, name)

    return _cached_render(key, name, sample_rate, render, use_cache)


def midi_track_refs(n_songs: int, first_seed: int = 0, duration_s: float = 10.0) -> list[TrackRef]:
    """Songs ``first_seed`` to ``first_seed + n_songs - 1``, each rendered when it is loaded."""
    if n_songs < 0:
        raise UserError(f"The number of MIDI songs must be 0 or more, not {n_songs}.")
    _check_duration(duration_s)
    return [
        TrackRef(
            f"midi-{seed:06d}",
            Path(f"synth_midi/{seed}"),
            functools.partial(render_midi_song, seed, duration_s),
        )
        for seed in range(first_seed, first_seed + n_songs)
    ]


def midi_tracks(
    n_songs: int,
    first_seed: int = 0,
    duration_s: float = 10.0,
    *,
    sound_fonts: Sequence[str | os.PathLike[str]] | None = None,
    use_cache: bool = True,
) -> list[Track]:
    """Songs ``first_seed`` to ``first_seed + n_songs - 1`` from the bundled MIDI files."""
    if n_songs < 0:
        raise UserError(f"The number of MIDI songs must be 0 or more, not {n_songs}.")
    files = bundled_midi_files()
    return [
        render_midi_song(
            seed, duration_s, midi_files=files, sound_fonts=sound_fonts, use_cache=use_cache
        )
        for seed in range(first_seed, first_seed + n_songs)
    ]


def midi_folder_tracks(
    folder: str | os.PathLike[str],
    duration_s: float = 10.0,
    *,
    seed: int = 0,
    sound_fonts: Sequence[str | os.PathLike[str]] | None = None,
    use_cache: bool = True,
) -> list[Track]:
    """One excerpt of each MIDI file under ``folder`` (sorted by path), drawn by ``seed``.

    A file that does not parse is skipped and named in one line on standard error.

    Raises:
        MidiUnavailableError: the folder is missing, or holds no MIDI file that parses.
        SynthesizerUnavailableError: FluidSynth or a sound font is missing.
    """
    _check_duration(duration_s)
    root = Path(folder)
    if not root.is_dir():
        raise MidiUnavailableError(f"{root} is not a folder of MIDI files.")
    files = _midi_files_in(root)
    if not files:
        raise MidiUnavailableError(f"{root} holds no MIDI files (*{', *'.join(MIDI_SUFFIXES)}).")
    fonts = _sound_fonts(sound_fonts)
    tracks = []
    for index, path in enumerate(files):
        try:
            piece = read_midi(path)
        except MidiFileError as err:
            print(f"livestems: skipped {path}: {err}", file=sys.stderr)
            continue
        rng = np.random.default_rng([seed, index, MIDI_GENERATOR_VERSION, 0xF01])
        name = f"midi-{path.stem}-{seed}"
        key = (
            f"folder|{seed}|{index}|{duration_s!r}|{SAMPLE_RATE}|"
            f"{MIDI_GENERATOR_VERSION}|{_signature([path])}|{_signature(fonts)}"
        )
        render = functools.partial(
            _render_drawn, piece, rng, seed, duration_s, fonts, SAMPLE_RATE, name
        )
        tracks.append(_cached_render(key, name, SAMPLE_RATE, render, use_cache))
    if not tracks:
        raise MidiUnavailableError(f"None of the MIDI files in {root} parses.")
    return tracks


def _render_drawn(
    piece: MidiPiece,
    rng: np.random.Generator,
    seed: int,
    duration_s: float,
    fonts: Sequence[Path],
    sample_rate: int,
    name: str,
) -> Track:
    """Draw the excerpt, transposition and font from ``rng``, then render."""
    choice = _choose(rng, piece, duration_s, fonts)
    return render_excerpt(piece, seed, choice, duration_s, sample_rate, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.synth.midi",
        description="Render songs from free MIDI files, one folder of stems per song.",
    )
    parser.add_argument("--seed", type=int, default=0, help="the song (default 0)")
    parser.add_argument("--songs", type=int, default=1, help="how many songs from --seed on")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per song")
    parser.add_argument("--folder", type=Path, help="render this folder's MIDI files instead")
    parser.add_argument("-o", "--output", type=Path, required=True, help="a folder")
    args = parser.parse_args(argv)
    try:
        if args.folder is not None:
            tracks = midi_folder_tracks(args.folder, args.duration, seed=args.seed)
        else:
            tracks = midi_tracks(args.songs, args.seed, args.duration)
        for track in tracks:
            write_stem_folder(args.output / track.name, track)
            print(f"{args.output / track.name}: {', '.join(STEMS)} and mixture as wav")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
