"""A procedural composer: a seed in, a song's score out (tempo, key, chords, sections, parts).

Everything random comes from one ``numpy.random.Generator`` seeded with the song's seed, drawn
in a fixed order, so a seed always gives the same score. The score is General MIDI: each part
is a program on a MIDI channel, and the channel says which stem it belongs to (channel % 4 is
the stem's index in STEMS: vocals 0, drums 9, bass 2, other 3, 7, 11), which is how the
renderer keeps the stems apart.

- vocals: one sung-like lead (Choir Aahs, Voice Oohs, Synth Voice or Lead 6 "voice"), strictly
  monophonic, in legato phrases of one or two bars with rests like breaths between them, a
  fundamental between about 150 and 900 Hz, vibrato and scoops by pitch bend and a swell per
  note by expression (CC 11).
- drums: the GM kit on channel 10 (a kit chosen per song): a groove per section, a fill into
  the next section, a crash on its first beat.
- bass: GM basses 32-39 following the chords' roots in the lowest octave (E1-D#2), in one of
  several styles (held, eighths, root-fifth, octaves, syncopated with the kick, walking).
- other: a comping part (piano, electric piano, guitars, organ, clavinet), often a pad
  (strings, synth pads, brass) and sometimes an arpeggio (harp, mallets, plucks, leads).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BEATS_PER_BAR = 4
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Progressions as scale degrees (0 = the tonic chord).
MAJOR_PROGRESSIONS = (
    (0, 4, 5, 3),  # I V vi IV
    (5, 3, 0, 4),  # vi IV I V
    (0, 5, 3, 4),  # I vi IV V
    (0, 3, 4, 3),  # I IV V IV
    (1, 4, 0, 5),  # ii V I vi
    (0, 3, 5, 4),  # I IV vi V
    (3, 0, 4, 5),  # IV I V vi
    (0, 2, 3, 4),  # I iii IV V
)
MINOR_PROGRESSIONS = (
    (0, 5, 2, 6),  # i VI III VII
    (0, 3, 4, 0),  # i iv v i
    (0, 6, 5, 6),  # i VII VI VII
    (0, 5, 3, 4),  # i VI iv v
    (0, 3, 6, 2),  # i iv VII III
    (5, 6, 0, 0),  # VI VII i i
)

VOCAL_PROGRAMS = (52, 53, 54, 85)  # Choir Aahs, Voice Oohs, Synth Voice, Lead 6 (voice)
BASS_PROGRAMS = tuple(range(32, 40))
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)  # Standard, Room, Power, Electronic, TR-808, Jazz, Brush
COMP_PROGRAMS = (0, 1, 2, 4, 5, 7, 16, 17, 18, 24, 25, 26, 27, 29, 30)
PAD_PROGRAMS = (48, 49, 50, 51, 61, 88, 89, 90, 92, 95)
ARP_PROGRAMS = (5, 8, 10, 11, 12, 46, 80, 81, 98, 24)

VOCAL_CHANNEL, DRUM_CHANNEL, BASS_CHANNEL = 0, 9, 2
# The bass plays between E1 (41 Hz) and A2 (110 Hz), so that most of its energy, harmonics
# included, lies below 300 Hz.
BASS_FLOOR, BASS_CEILING = 28, 45
COMP_CHANNEL, PAD_CHANNEL, ARP_CHANNEL = 3, 7, 11

# GM drum keys.
KICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 39, 42, 44, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)  # high to low


@dataclass(frozen=True)
class Note:
    """One note: channel, key, velocity, and when, in seconds."""

    channel: int
    pitch: int
    velocity: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Control:
    """A controller (``number`` 0-127) or, with ``number`` ``BEND``, a pitch bend (0-16383)."""

    channel: int
    number: int
    value: int
    time_s: float


BEND = -1


@dataclass(frozen=True)
class Part:
    """One instrument: which stem, which channel, which GM program, and its mix."""

    stem: str
    role: str
    channel: int
    program: int
    volume: int  # CC 7
    pan: int  # CC 10, 64 is centre


@dataclass(frozen=True)
class Section:
    name: str
    first_bar: int
    n_bars: int
    progression: tuple[int, ...]
    bars_per_chord: float


@dataclass
class Score:
    """A whole song, ready to render."""

    seed: int
    tempo_bpm: float
    key: int
    mode: str
    sections: list[Section]
    parts: list[Part]
    notes: list[Note] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def key_name(self) -> str:
        return f"{KEY_NAMES[self.key]} {self.mode}"

    def notes_of(self, stem: str) -> list[Note]:
        channels = {part.channel for part in self.parts if part.stem == stem}
        return [note for note in self.notes if note.channel in channels]

    def summary(self) -> dict[str, object]:
        """What the song is, for a recipe file."""
        return {
            "tempo_bpm": round(self.tempo_bpm, 2),
            "key": self.key_name,
            "sections": [
                {
                    "name": s.name,
                    "first_bar": s.first_bar,
                    "n_bars": s.n_bars,
                    "start_s": round(s.first_bar * BEATS_PER_BAR * self.beat_s, 3),
                }
                for s in self.sections
            ],
            "parts": [
                {"stem": p.stem, "role": p.role, "channel": p.channel, "program": p.program}
                for p in self.parts
            ],
        }


class _Composer:
    """Writes one score; each method draws from the same generator in a fixed order."""

    def __init__(self, seed: int, duration_s: float, full_arrangement: bool) -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.seed = seed
        self.full = full_arrangement
        self.mode = "minor" if rng.random() < 0.4 else "major"
        self.scale = MINOR if self.mode == "minor" else MAJOR
        self.key = int(rng.integers(12))
        self.tempo = float(rng.uniform(84, 132) if full_arrangement else rng.uniform(72, 150))
        self.beat_s = 60.0 / self.tempo
        self.swing = float(rng.choice([0.0, 0.0, 0.0, 0.08, 0.15]))  # of a 16th's length
        self.duration_s = duration_s
        self.notes: list[Note] = []
        self.controls: list[Control] = []

    # -- time and harmony --------------------------------------------------------------------

    def seconds(self, beat: float) -> float:
        """A beat position in seconds, with swing on the off-beat sixteenths."""
        sixteenth = beat * 4
        step = np.floor(sixteenth + 1e-9)
        if int(step) % 2 == 1:
            beat += self.swing / 4
        return beat * self.beat_s

    def degree_pitch_class(self, degree: int) -> int:
        return (self.key + self.scale[degree % 7]) % 12

    def chord(self, degree: int) -> tuple[int, int, int]:
        """The triad on a scale degree, as pitch classes (root, third, fifth)."""
        return (
            self.degree_pitch_class(degree),
            self.degree_pitch_class(degree + 2),
            self.degree_pitch_class(degree + 4),
        )

    def chord_at(self, section: Section, bar_in_section: float) -> int:
        index = int(np.floor(bar_in_section / section.bars_per_chord + 1e-9))
        return section.progression[index % len(section.progression)]

    def note(self, channel: int, pitch: int, velocity: int, start_beat: float, beats: float):
        start = self.seconds(start_beat) + float(self.rng.normal(0, 0.004))
        start = max(start, 0.0)
        end = max(start + 0.03, self.seconds(start_beat + beats))
        velocity = int(np.clip(velocity + self.rng.normal(0, 5), 1, 127))
        self.notes.append(Note(channel, int(pitch), velocity, start, end))

    # -- form --------------------------------------------------------------------------------

    def sections(self) -> list[Section]:
        rng = self.rng
        progressions = MINOR_PROGRESSIONS if self.mode == "minor" else MAJOR_PROGRESSIONS
        picks = rng.choice(len(progressions), size=2, replace=False)
        verse_prog, chorus_prog = (progressions[int(i)] for i in picks)
        verse_rate = float(rng.choice([1.0, 1.0, 0.5, 2.0]))
        chorus_rate = float(rng.choice([1.0, 1.0, 0.5]))
        bar_s = BEATS_PER_BAR * self.beat_s
        if self.full:
            plan = [("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4)]
            plan.append(("outro", 2))
        else:
            n_bars = int(np.ceil(self.duration_s / bar_s)) + 1
            name = "chorus" if rng.random() < 0.5 else "verse"
            plan = []
            while sum(n for _, n in plan) < n_bars:
                plan.append((name, 4))
                name = "verse" if name == "chorus" else "chorus"
        sections, bar = [], 0
        for name, n in plan:
            progression = chorus_prog if name == "chorus" else verse_prog
            rate = chorus_rate if name == "chorus" else verse_rate
            if name in ("intro", "outro"):
                progression, rate = verse_prog, 1.0
            sections.append(Section(name, bar, n, progression, rate))
            bar += n
        if self.full:
            # the song lasts its form and two seconds more for the last chord to ring out
            self.duration_s = bar * bar_s + 2.0
        return sections

    def parts(self) -> list[Part]:
        rng = self.rng
        pan_side = float(rng.choice([-1.0, 1.0]))
        parts = [
            Part("vocals", "lead", VOCAL_CHANNEL, int(rng.choice(VOCAL_PROGRAMS)), 110, 64),
            Part("drums", "kit", DRUM_CHANNEL, int(rng.choice(DRUM_KITS)), 110, 64),
            Part("bass", "bass", BASS_CHANNEL, int(rng.choice(BASS_PROGRAMS)), 110, 64),
            Part(
                "other",
                "comp",
                COMP_CHANNEL,
                int(rng.choice(COMP_PROGRAMS)),
                int(rng.integers(85, 115)),
                int(64 + pan_side * rng.integers(10, 40)),
            ),
        ]
        if self.full or rng.random() < 0.7:
            parts.append(
                Part(
                    "other",
                    "pad",
                    PAD_CHANNEL,
                    int(rng.choice(PAD_PROGRAMS)),
                    int(rng.integers(70, 100)),
                    int(64 - pan_side * rng.integers(0, 25)),
                )
            )
        if self.full or rng.random() < 0.5:
            parts.append(
                Part(
                    "other",
                    "arp",
                    ARP_CHANNEL,
                    int(rng.choice(ARP_PROGRAMS)),
                    int(rng.integers(65, 95)),
                    int(64 - pan_side * rng.integers(15, 45)),
                )
            )
        return parts

    # -- drums -------------------------------------------------------------------------------

    def drums(self, sections: list[Section]) -> None:
        rng = self.rng
        styles = ("rock", "pop", "four", "halftime", "funk")
        verse_style = str(rng.choice(styles))
        chorus_style = str(rng.choice(styles))
        hat_sixteenths = rng.random() < 0.35
        ride_in_chorus = rng.random() < 0.4
        for section in sections:
            style = chorus_style if section.name == "chorus" else verse_style
            light = section.name in ("intro", "outro")
            for bar in range(section.n_bars):
                start = (section.first_bar + bar) * BEATS_PER_BAR
                last_bar = bar == section.n_bars - 1 and section.n_bars >= 2
                self.drum_bar(
                    start, style, light, hat_sixteenths, ride_in_chorus and section.name == "chorus"
                )
                if bar == 0 and section.name != "intro":
                    self.note(DRUM_CHANNEL, CRASH, 105, start, 2.0)
                if last_bar and section.name != "outro":
                    self.fill(start)
            if section.name == "outro":
                end = (section.first_bar + section.n_bars) * BEATS_PER_BAR
                self.note(DRUM_CHANNEL, KICK, 110, end, 1.0)
                self.note(DRUM_CHANNEL, CRASH, 110, end, 4.0)

    def drum_bar(self, start: float, style: str, light: bool, sixteenths: bool, ride: bool):
        rng = self.rng
        kicks = {
            "rock": [0, 8, 10] if rng.random() < 0.5 else [0, 8],
            "pop": [0, 7, 8],
            "four": [0, 4, 8, 12],
            "halftime": [0, 10],
            "funk": [0, 3, 10, 14] if rng.random() < 0.5 else [0, 3, 10],
        }[style]
        snares = [8] if style == "halftime" else [4, 12]
        backbeat = CLAP if style == "four" and rng.random() < 0.5 else SNARE
        for step in kicks:
            self.note(DRUM_CHANNEL, KICK, 105 if step % 4 == 0 else 92, start + step / 4, 0.25)
        if not light:
            for step in snares:
                self.note(DRUM_CHANNEL, backbeat, 108, start + step / 4, 0.25)
            if style == "funk":
                for step in (7, 9, 15):
                    if rng.random() < 0.6:
                        self.note(DRUM_CHANNEL, SNARE, 45, start + step / 4, 0.25)
        cymbal = RIDE if ride else CLOSED_HAT
        every = 1 if sixteenths else 2
        for step in range(0, 16, every):
            if style == "four" and step % 4 == 2:
                self.note(DRUM_CHANNEL, OPEN_HAT, 80, start + step / 4, 0.5)
                continue
            accent = 85 if step % 4 == 0 else (70 if step % 2 == 0 else 55)
            self.note(DRUM_CHANNEL, cymbal, accent - (15 if light else 0), start + step / 4, 0.25)

    def fill(self, bar_start: float) -> None:
        rng = self.rng
        first_step = int(rng.choice([8, 12, 12, 14]))
        toms = rng.random() < 0.6
        for i, step in enumerate(range(first_step, 16)):
            key = TOMS[min(i, len(TOMS) - 1)] if toms else SNARE
            self.note(DRUM_CHANNEL, key, 80 + 3 * i, bar_start + step / 4, 0.25)

    # -- bass --------------------------------------------------------------------------------

    def bass(self, sections: list[Section]) -> None:
        rng = self.rng
        lowest = int(rng.integers(BASS_FLOOR, 34))  # E1-A#1: roots between 41 and 78 Hz
        styles = ("held", "eighths", "root_fifth", "octaves", "syncopated", "walking")
        verse_style = str(rng.choice(styles))
        chorus_style = str(rng.choice(styles[1:]))
        staccato = float(rng.uniform(0.6, 0.95))

        def root(degree: int) -> int:
            return lowest + (self.degree_pitch_class(degree) - lowest) % 12

        def play(pitch: int, velocity: int, start: float, beats: float) -> None:
            while pitch > BASS_CEILING:  # a fifth or a step above the ceiling goes down
                pitch -= 12
            self.note(BASS_CHANNEL, pitch, velocity, start, beats)

        for section in sections:
            style = chorus_style if section.name == "chorus" else verse_style
            if section.name in ("intro", "outro"):
                style = "held"
            for bar in range(section.n_bars):
                start = (section.first_bar + bar) * BEATS_PER_BAR
                for half in (0, 1):
                    degree = self.chord_at(section, bar + half / 2)
                    next_degree = self.chord_at(section, bar + half / 2 + 0.5)
                    note_root = root(degree)
                    fifth = note_root + 7
                    t0 = start + 2 * half
                    if style == "held":
                        play(note_root, 100, t0, 1.95)
                    elif style == "eighths":
                        for i in range(4):
                            play(note_root, 96, t0 + i / 2, 0.5 * staccato)
                    elif style == "root_fifth":
                        play(note_root, 100, t0, staccato)
                        play(fifth, 90, t0 + 1, staccato)
                    elif style == "octaves":
                        # the other octave above if it fits under the ceiling, else below
                        other = note_root + 12 if note_root + 12 <= BASS_CEILING else note_root - 12
                        other = other if other >= BASS_FLOOR else note_root
                        for i in range(4):
                            play(other if i % 2 else note_root, 96, t0 + i / 2, 0.45)
                    elif style == "syncopated":
                        for step, length in ((0, 0.75), (3, 0.25), (6, 0.5)):
                            play(note_root, 100, t0 + step / 4, length)
                    else:  # walking: quarters, the root, then a chord tone or a step into the next
                        third = note_root + (self.degree_pitch_class(degree + 2) - note_root) % 12
                        target = root(next_degree)
                        second = third if target == note_root else target + int(rng.choice([-1, 2]))
                        play(note_root, 98, t0, 0.9)
                        play(second, 90, t0 + 1, 0.9)
            if section.name == "outro":
                end = (section.first_bar + section.n_bars) * BEATS_PER_BAR
                play(root(0), 105, end, 4.0)

    # -- other: comping, pad, arpeggio -------------------------------------------------------

    def voicing(self, degree: int, centre: int, previous: list[int] | None) -> list[int]:
        """The triad near ``centre``, in the inversion closest to the previous voicing."""
        pitch_classes = self.chord(degree)
        candidates = []
        for inversion in range(3):
            order = pitch_classes[inversion:] + pitch_classes[:inversion]
            bottom = centre - 6 + (order[0] - (centre - 6)) % 12
            voiced = [bottom]
            for pc in order[1:]:
                voiced.append(voiced[-1] + (pc - voiced[-1]) % 12)
            candidates.append(voiced)
        reference = previous or [centre - 4, centre, centre + 4]
        return min(
            candidates, key=lambda v: sum(abs(a - b) for a, b in zip(v, reference, strict=True))
        )

    def other(self, sections: list[Section], parts: list[Part]) -> None:
        rng = self.rng
        roles = {part.role: part for part in parts}
        comp_rhythms = (
            [(0, 4), (4, 4), (8, 4), (12, 4)],  # quarters
            [(0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2)],  # syncopated
            [(0, 16)],  # whole notes
            [(step, 2) for step in range(0, 16, 2)],  # eighths
            [(0, 6), (6, 6), (12, 4)],  # dotted quarters
        )
        verse_rhythm = comp_rhythms[int(rng.integers(len(comp_rhythms)))]
        chorus_rhythm = comp_rhythms[int(rng.integers(len(comp_rhythms)))]
        strum = COMP_PROGRAMS.index(roles["comp"].program) >= 9  # the guitars strum
        comp_centre = int(rng.integers(60, 68))
        arp_pattern = [(0, 1, 2, 1), (0, 1, 2, 3), (3, 2, 1, 0), (0, 2, 1, 3)][int(rng.integers(4))]
        arp_step = float(rng.choice([0.25, 0.5]))
        previous: list[int] | None = None
        for section in sections:
            rhythm = chorus_rhythm if section.name == "chorus" else verse_rhythm
            if section.name in ("intro", "outro"):
                rhythm = comp_rhythms[2]
            for bar in range(section.n_bars):
                start = (section.first_bar + bar) * BEATS_PER_BAR
                for step, length in rhythm:
                    degree = self.chord_at(section, bar + step / 16)
                    previous = self.voicing(degree, comp_centre, previous)
                    for i, pitch in enumerate(previous):
                        offset = i * 0.03 if strum else 0.0
                        velocity = 80 if step % 4 == 0 else 68
                        self.note(
                            COMP_CHANNEL, pitch, velocity, start + step / 4 + offset, length / 4
                        )
                if "pad" in roles:
                    for half in (0, 1) if section.bars_per_chord < 1 else (0,):
                        degree = self.chord_at(section, bar + half / 2)
                        beats = BEATS_PER_BAR / (2 if section.bars_per_chord < 1 else 1)
                        for pitch in self.voicing(degree, 57, None):
                            self.note(PAD_CHANNEL, pitch, 70, start + half * 2, beats)
                if "arp" in roles and section.name != "intro":
                    n_steps = int(BEATS_PER_BAR / arp_step)
                    for i in range(n_steps):
                        beat = i * arp_step
                        degree = self.chord_at(section, bar + beat / BEATS_PER_BAR)
                        tones = self.voicing(degree, 74, None)
                        tones = [*tones, tones[0] + 12]
                        pitch = tones[arp_pattern[i % 4]]
                        self.note(ARP_CHANNEL, pitch, 72 if i % 4 else 84, start + beat, arp_step)
            if section.name == "outro":
                end = (section.first_bar + section.n_bars) * BEATS_PER_BAR
                for pitch in self.voicing(0, comp_centre, previous):
                    self.note(COMP_CHANNEL, pitch, 85, end, 4.0)
                if "pad" in roles:
                    for pitch in self.voicing(0, 57, None):
                        self.note(PAD_CHANNEL, pitch, 75, end, 4.0)

    # -- the sung-like lead -------------------------------------------------------------------

    def melody(self, sections: list[Section]) -> None:
        rng = self.rng
        low = int(rng.integers(52, 60))  # E3-B3 (165-247 Hz)
        high = low + int(rng.integers(14, 19))  # up to F#5 (740 Hz)
        scale_pitches = [p for p in range(low, high + 1) if (p - self.key) % 12 in self.scale]
        self.vibrato_hz = float(rng.uniform(4.8, 6.2))
        self.vibrato_cents = float(rng.uniform(20, 45))
        motifs: dict[str, list[tuple[float, float]]] = {}
        for section in sections:
            if section.name in ("intro", "outro"):
                continue
            if section.name not in motifs:
                motifs[section.name] = self.phrase_rhythm(chorus=section.name == "chorus")
            lift = 3 if section.name == "chorus" else 0  # choruses sing higher
            centre_index = len(scale_pitches) // 2 + lift - 2
            index = int(np.clip(centre_index, 0, len(scale_pitches) - 1))
            for phrase_bar in range(0, section.n_bars, 2):
                rhythm = motifs[section.name]
                if phrase_bar == section.n_bars - 2 and rng.random() < 0.5:
                    rhythm = self.phrase_rhythm(chorus=section.name == "chorus")
                start = (section.first_bar + phrase_bar) * BEATS_PER_BAR
                last_index = len(rhythm) - 1
                for n, (onset, length) in enumerate(rhythm):
                    beat = start + onset
                    degree = self.chord_at(section, phrase_bar + onset / BEATS_PER_BAR)
                    chord_pcs = self.chord(degree)
                    strong = onset % 2 == 0 or n == last_index
                    # an arch: the phrase climbs through its first half and falls to its end
                    rising = n < len(rhythm) / 2
                    step = int(rng.choice([1, 1, 2, 2, 3, -1, 0] if rising else [-1, -1, -2, 1, 0]))
                    if n == 0:  # each phrase starts near the section's centre, a leap away
                        step = centre_index - index + int(rng.choice([-3, -2, 0, 2]))
                    index = int(np.clip(index + step, 0, len(scale_pitches) - 1))
                    if strong:
                        # onto a chord tone, moving on in the line's direction
                        direction = 1 if rising else -1
                        nearby = [
                            i
                            for i in range(len(scale_pitches))
                            if 0 <= (i - index) * direction <= 2
                            and scale_pitches[i] % 12 in chord_pcs
                        ]
                        if nearby:
                            index = min(nearby, key=lambda i: abs(i - index))
                    self.sung_note(scale_pitches[index], beat, length, n == 0)

    def phrase_rhythm(self, chorus: bool) -> list[tuple[float, float]]:
        """Onsets and lengths (beats) of a two-bar phrase that ends in a breath."""
        rng = self.rng
        lengths = (0.5, 1.0, 1.0, 1.5, 2.0) if chorus else (0.5, 0.5, 1.0, 1.0, 1.5)
        onset = float(rng.choice([0.0, 0.0, 0.5, 1.0]))
        end = 2 * BEATS_PER_BAR - float(rng.choice([0.5, 1.0, 1.0, 1.5]))  # the breath
        rhythm = []
        while onset < end - 0.25:
            length = min(float(rng.choice(lengths)), end - onset)
            rhythm.append((onset, length))
            onset += length
        return rhythm

    def sung_note(self, pitch: int, beat: float, beats: float, phrase_start: bool) -> None:
        """A note with a swell, a scoop into pitch sometimes, and delayed vibrato."""
        rng = self.rng
        start_s = self.seconds(beat)
        end_s = self.seconds(beat + beats) - 0.01
        velocity = int(rng.integers(78, 105)) + (8 if phrase_start else 0)
        self.notes.append(Note(VOCAL_CHANNEL, pitch, velocity, start_s, end_s))
        scoop_cents = float(rng.uniform(40, 120)) if rng.random() < 0.45 else 0.0
        scoop_s = float(rng.uniform(0.05, 0.1))
        onset_s = float(rng.uniform(0.12, 0.25))  # vibrato starts after the note settles
        phase = float(rng.uniform(0, 2 * np.pi))
        times = np.arange(start_s, end_s, 0.01)
        age = times - start_s
        cents = -scoop_cents * np.clip(1 - age / scoop_s, 0, 1) ** 2
        ramp = np.clip((age - onset_s) / 0.25, 0, 1)
        cents += ramp * self.vibrato_cents * np.sin(2 * np.pi * self.vibrato_hz * age + phase)
        bends = np.clip(np.round(8192 + cents / 200 * 8192), 0, 16383).astype(int)
        swell = np.clip(80 + 40 * age / 0.12, 0, 120) - 12 * np.clip(age - 0.5, 0, 1.5)
        for t, bend, expression in zip(times, bends, np.round(swell).astype(int), strict=True):
            self.controls.append(Control(VOCAL_CHANNEL, BEND, int(bend), float(t)))
            self.controls.append(Control(VOCAL_CHANNEL, 11, int(expression), float(t)))
        self.controls.append(Control(VOCAL_CHANNEL, BEND, 8192, end_s))

    def compose(self) -> Score:
        sections = self.sections()
        parts = self.parts()
        self.drums(sections)
        self.bass(sections)
        self.other(sections, parts)
        self.melody(sections)
        end = self.duration_s
        notes = sorted((n for n in self.notes if n.start_s < end), key=lambda n: n.start_s)
        controls = [c for c in self.controls if c.time_s < end]
        return Score(
            self.seed,
            self.tempo,
            self.key,
            self.mode,
            sections,
            parts,
            notes,
            controls,
            self.duration_s,
        )


def compose(seed: int, duration_s: float = 10.0, full_arrangement: bool = False) -> Score:
    """The score of song ``seed``.

    Args:
        seed: any integer; the same seed gives the same score.
        duration_s: how long the song lasts (a full arrangement sets its own length).
        full_arrangement: intro, verse, chorus, verse, chorus, outro, ending on the tonic, for
            a song to listen to; otherwise alternating 4-bar verses and choruses in which every
            part plays, for training clips.
    """
    return _Composer(seed, duration_s, full_arrangement).compose()
