"""The synthetic multitrack generator: seeded procedural songs rendered stem by stem.

A seed gives a score (``synth_composer``: tempo, key, chords, sections, drums, bass, a sung-like
lead, comping, pads and arpeggios), FluidSynth renders it with a General MIDI sound font
(``synth_fluidsynth``: Debian's FluidR3_GM), one dry stereo signal per stem, and this module
mixes it: each stem gets a level (balanced by loudness, then a seeded gain), a seeded room
reverb of its own (so the stem is the stem as mixed), and the whole song one scale so that the
mixture peaks at -1 dBFS. The mixture is the float32 sum of the stems, exactly.

Stems are rounded to float16's precision (stored as float32, about 66 dB below each sample),
so that a song read back from the cache is the very same array as one just rendered. Rendered
songs are cached under the user's cache folder (``datasets.cache_dir()``), keyed by seed,
length, rate, the generator's version and the sound font file: a 10 s song renders in a few
tenths of a second and reads back in a few hundredths.

    python -m livestems.models.synth.procedural --seed 7 -o /tmp/song7        # a folder of stems
    python -m livestems.models.synth.procedural --demo -o realtime/bundled/demo.ogg
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import signal

from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ..data.datasets import SAMPLE_RATE, STEMS, Track, TrackRef, cache_dir
from .composer import BEND, Score, compose
from .fluidsynth import BEND as BEND_EVENT
from .fluidsynth import (
    CONTROL,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM,
    MidiEvent,
    SynthesizerUnavailableError,
    sound_font_path,
    synthesizer,
)

__all__ = [
    "GENERATOR_VERSION",
    "SynthesizerUnavailableError",
    "render_score",
    "render_song",
    "render_songs",
    "synthetic_tracks",
]

# Bump whenever a seed's audio changes, so that cached songs are rendered again.
GENERATOR_VERSION = 4
DEMO_SEED = 312  # chosen for its instruments (voice oohs, nylon guitar, strings, celesta)
PEAK_DBFS = -1.0
# Seeded mix: (lowest, highest) gain in dB around a common loudness, and reverb send.
STEM_GAIN_DB = {"vocals": (0.0, 3.0), "drums": (-2.0, 1.0), "bass": (-2.0, 1.5), "other": (-4, 0)}
STEM_REVERB_SEND = {"vocals": (0.15, 0.35), "drums": (0.0, 0.12), "bass": (0.0, 0.0)}
STEM_REVERB_SEND["other"] = (0.08, 0.3)
# The bass stem's 24 dB/octave low-pass: the slap basses (GM 36, 37) are the brightest by far.
BASS_LOWPASS_HZ = (300.0, 550.0)
SLAP_BASS_LOWPASS_HZ = (220.0, 350.0)
SLAP_BASSES = (36, 37)


def score_events(score: Score, sample_rate: int) -> list[MidiEvent]:
    """The score as MIDI events on samples: programs, volumes and pans first, then the music."""
    events = []
    for part in score.parts:
        events.append(MidiEvent(0, PROGRAM, part.channel, part.program))
        events.append(MidiEvent(0, CONTROL, part.channel, 7, part.volume))
        events.append(MidiEvent(0, CONTROL, part.channel, 10, part.pan))
    for note in score.notes:
        start = round(note.start_s * sample_rate)
        end = max(start + 1, round(note.end_s * sample_rate))
        events.append(MidiEvent(start, NOTE_ON, note.channel, note.pitch, note.velocity))
        events.append(MidiEvent(end, NOTE_OFF, note.channel, note.pitch))
    for control in score.controls:
        sample = round(control.time_s * sample_rate)
        if control.number == BEND:
            events.append(MidiEvent(sample, BEND_EVENT, control.channel, control.value))
        else:
            events.append(
                MidiEvent(sample, CONTROL, control.channel, control.number, control.value)
            )
    return events


def _room_impulse(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A seeded stereo room: decaying, darkening noise. [shape=(n_taps, 2)], unit energy."""
    rt60_s = float(rng.uniform(0.5, 1.6))
    pre_delay = int(rng.uniform(0.008, 0.025) * sample_rate)
    n_taps = int(min(rt60_s, 1.5) * sample_rate)
    t = np.arange(n_taps) / sample_rate
    noise = rng.standard_normal((n_taps, 2))
    # a one-pole low-pass whose cut-off falls with time: later reflections are darker
    darkened = signal.lfilter([0.35], [1, -0.65], noise, axis=0)
    tail = darkened * np.exp(-6.91 * t / rt60_s)[:, None]
    impulse = np.concatenate([np.zeros((pre_delay, 2)), tail])
    return impulse / np.sqrt(np.sum(impulse**2) / 2)


def _active_rms(audio: np.ndarray, sample_rate: int) -> float:
    """RMS over the 50 ms frames in which the stem plays (silence doesn't make it louder)."""
    frame = sample_rate // 20
    n_frames = audio.shape[0] // frame
    if n_frames == 0:
        return float(np.sqrt(np.mean(audio**2)))
    power = np.mean(audio[: n_frames * frame].reshape(n_frames, -1) ** 2, axis=1)
    active = power[power > 1e-3 * power.max()] if power.max() > 0 else power
    return float(np.sqrt(np.mean(active)))


def _reverb(mono: np.ndarray, impulse_spectrum: np.ndarray, n_fft: int) -> np.ndarray:
    """[shape=(n_samples,)] through the room: [shape=(n_samples, 2)] (the tail cut off)."""
    spectrum = sfft.rfft(mono, n_fft)[:, None] * impulse_spectrum
    return sfft.irfft(spectrum, n_fft, axis=0)[: mono.shape[0]]


def mix_stems(dry: np.ndarray, score: Score, sample_rate: int) -> dict[str, np.ndarray]:
    """The stems as mixed: loudness-balanced, seeded gains and reverb, peak at PEAK_DBFS.

    Args:
        dry: [shape=(n_stems, n_samples, 2)] FluidSynth's output, in STEMS order.
        score: what was played (its seed draws the mix; its bass program sets the low-pass).

    Returns:
        ``{stem: [shape=(n_samples, 2)] float32}``, values on float16's grid.
    """
    rng = np.random.default_rng([score.seed, 1])  # apart from the composer's stream
    bass_program = next(p.program for p in score.parts if p.stem == "bass")
    impulse = _room_impulse(rng, sample_rate).astype(np.float32)
    n_samples = dry.shape[1]
    n_fft = sfft.next_fast_len(n_samples + impulse.shape[0] - 1, real=True)
    impulse_spectrum = sfft.rfft(impulse, n_fft, axis=0)  # one room for every stem
    stems = {}
    for stem, audio in zip(STEMS, dry, strict=True):
        send = float(rng.uniform(*STEM_REVERB_SEND[stem]))
        gain_db = float(rng.uniform(*STEM_GAIN_DB[stem]))
        if stem == "bass":
            # the mix's low-pass: a slap's click puts up to a third of its energy above 300 Hz
            slap = bass_program in SLAP_BASSES
            cutoff_hz = float(rng.uniform(*(SLAP_BASS_LOWPASS_HZ if slap else BASS_LOWPASS_HZ)))
            lowpass = signal.butter(4, cutoff_hz, fs=sample_rate, output="sos")
            audio = signal.sosfilt(lowpass, audio, axis=0).astype(np.float32)
        if send > 0:
            audio = audio + send * _reverb(audio.mean(axis=1), impulse_spectrum, n_fft)
        rms = _active_rms(audio, sample_rate)
        scale = 10 ** ((gain_db - 20) / 20) / rms if rms > 0 else 0.0
        stems[stem] = audio * np.float32(scale)  # float32 throughout: half the memory traffic
    peak = np.max(np.abs(stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]))
    scale = 10 ** (PEAK_DBFS / 20) / peak if peak > 0 else 1.0
    return {
        stem: (audio * np.float32(scale)).astype(np.float16).astype(np.float32)
        for stem, audio in stems.items()
    }


def render_score(score: Score, sample_rate: int = SAMPLE_RATE, sound_font: Path | None = None):
    """A composed score as a ``Track`` (its length is ``score.duration_s``)."""
    synth = synthesizer(sound_font_path(sound_font), sample_rate)
    n_samples = round(score.duration_s * sample_rate)
    dry = synth.render(score_events(score, sample_rate), n_samples)
    stems = mix_stems(dry, score, sample_rate)
    mixture = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    return Track(f"synth-{score.seed:06d}", stems, mixture, sample_rate)


def _cache_entry(seed: int, duration_s: float, sample_rate: int, sound_font: Path) -> Path:
    stat = sound_font.stat()
    text = (
        f"{seed}|{duration_s!r}|{sample_rate}|{GENERATOR_VERSION}|"
        f"{sound_font.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    )
    return cache_dir() / "synth" / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.npz"


def render_song(
    seed: int,
    duration_s: float = 10.0,
    sample_rate: int = SAMPLE_RATE,
    *,
    sound_font: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> Track:
    """Song ``seed``: four stems and their sum, ``duration_s`` long, the same for the same seed.

    Args:
        seed: any non-negative integer.
        duration_s: the song's length; every stem plays throughout.
        sound_font: a General MIDI ``.sf2``; $LIVESTEMS_SOUND_FONT or Debian's FluidR3_GM if None.
        use_cache: read and write the rendered stems in the user's cache folder.

    Raises:
        SynthesizerUnavailableError: FluidSynth or the sound font is missing.
    """
    if duration_s <= 0 or not np.isfinite(duration_s):
        raise UserError(f"A synthetic song must last a positive time, not {duration_s} s.")
    font = sound_font_path(sound_font)
    entry = _cache_entry(seed, duration_s, sample_rate, font) if use_cache else None
    if entry is not None and entry.exists():
        try:
            with np.load(entry) as stored:
                stems = {stem: stored[stem].astype(np.float32) for stem in STEMS}
            mixture = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
            return Track(f"synth-{seed:06d}", stems, mixture, sample_rate)
        except (OSError, ValueError, KeyError, EOFError):
            entry.unlink(missing_ok=True)  # a damaged entry is rendered again
    track = render_score(compose(seed, duration_s), sample_rate, font)
    if entry is not None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(entry) as handle:
                # float16 holds the stems exactly (mix_stems rounds them to its grid)
                np.savez(handle, **{s: a.astype(np.float16) for s, a in track.stems.items()})
        except OSError:
            pass  # a read-only home still renders, only slower
    return track


def _render_one(job: tuple[int, float, int, str | None, bool]) -> Track:
    seed, duration_s, sample_rate, sound_font, use_cache = job
    return render_song(seed, duration_s, sample_rate, sound_font=sound_font, use_cache=use_cache)


def render_songs(
    seeds: Sequence[int],
    duration_s: float = 10.0,
    n_workers: int | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    sound_font: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> list[Track]:
    """``render_song`` for each seed, in order, rendered by a pool of processes.

    Args:
        n_workers: processes; None for one per core. 1 renders in this process.
    """
    font = str(sound_font_path(sound_font))  # a missing font fails here, not in a worker
    jobs = [(int(seed), duration_s, sample_rate, font, use_cache) for seed in seeds]
    n_workers = min(n_workers or os.cpu_count() or 1, len(jobs))
    if n_workers <= 1:
        return [_render_one(job) for job in jobs]
    import multiprocessing

    # fork, as torch's DataLoader does on Linux: a script needs no __main__ guard, and workers
    # touch only numpy, scipy and libfluidsynth, never the parent's torch threads
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(n_workers, mp_context=context) as pool:
        return list(pool.map(_render_one, jobs))


def synthetic_tracks(n_songs: int, first_seed: int = 0, duration_s: float = 10.0) -> list[TrackRef]:
    """Songs ``first_seed`` to ``first_seed + n_songs - 1``, each rendered when it is loaded."""
    if n_songs < 0:
        raise UserError(f"The number of synthetic songs must be 0 or more, not {n_songs}.")
    return [
        TrackRef(
            f"synth-{seed:06d}",
            Path(f"synth/{seed}"),
            functools.partial(render_song, seed, duration_s),
        )
        for seed in range(first_seed, first_seed + n_songs)
    ]


def write_demo(output: Path, seed: int) -> dict[str, object]:
    """Render the full arrangement of song ``seed`` to an Ogg Vorbis file and its recipe."""
    import soundfile

    font = sound_font_path(None)
    score = compose(seed, full_arrangement=True)
    track = render_score(score, SAMPLE_RATE, font)
    # fade the last chord's ring-out to silence over its last second
    fade = np.ones(track.n_samples, np.float32)
    n_fade = SAMPLE_RATE
    fade[-n_fade:] = np.linspace(1, 0, n_fade, dtype=np.float32) ** 2
    mixture = track.mixture * fade[:, None]
    output.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(output, mixture, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    levels = {}
    for stem, audio in track.stems.items():
        levels[stem] = {
            "rms_dbfs": round(float(20 * np.log10(np.sqrt(np.mean(audio**2)) + 1e-12)), 1),
            "peak_dbfs": round(float(20 * np.log10(np.max(np.abs(audio)) + 1e-12)), 1),
        }
    recipe: dict[str, object] = {
        "what": "livestems demo song, made by the project's own synthetic multitrack generator",
        "seed": seed,
        "duration_s": round(score.duration_s, 3),
        "sample_rate": SAMPLE_RATE,
        "generator": "livestems.models.synth.procedural (full arrangement)",
        "generator_version": GENERATOR_VERSION,
        "sound_font": {
            "file": font.name,
            "debian_package": "fluid-soundfont-gm",
            "licence": "MIT (FluidR3_GM by Frank Wen)",
        },
        "synthesizer": "FluidSynth (libfluidsynth, reverb and chorus off; reverb is the mix's)",
        **score.summary(),
        "stem_levels": levels,
        "mixture_peak_dbfs": round(float(20 * np.log10(np.max(np.abs(mixture)))), 2),
        "format": "Ogg Vorbis, 44.1 kHz stereo",
        "regenerate": (
            f"python -m livestems.models.synth.procedural --demo --seed {seed} -o {output}"
        ),
    }
    output.with_suffix(".json").write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe


def write_stem_folder(folder: Path, track: Track) -> None:
    """The track as one wav per stem plus mixture.wav (what ``stem_folder_tracks`` reads)."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in {**track.stems, "mixture": track.mixture}.items():
        soundfile.write(folder / f"{name}.wav", audio, track.sample_rate, subtype="FLOAT")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.synth.procedural",
        description="Render a synthetic song: a folder of stems, or the demo song.",
    )
    parser.add_argument("--seed", type=int, default=None, help="the song (default 0, demo: its)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (not for --demo)")
    parser.add_argument(
        "--demo", action="store_true", help="the full arrangement, as an Ogg Vorbis file"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder, or .ogg file")
    args = parser.parse_args(argv)
    try:
        if args.demo:
            recipe = write_demo(args.output, DEMO_SEED if args.seed is None else args.seed)
            print(
                f"{args.output}: {recipe['duration_s']} s, {recipe['key']}, "
                f"{recipe['tempo_bpm']} bpm; recipe in {args.output.with_suffix('.json')}"
            )
        else:
            track = render_song(args.seed or 0, args.duration, use_cache=False)
            write_stem_folder(args.output, track)
            print(f"{args.output}: {track.name}, {', '.join(STEMS)} and mixture as wav")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
