"""A practice track, rendered offline: what the window would play with the same settings.

Thread contract: main thread only; everything blocks.

The song goes through the same ``PracticeSource`` the engine reads (tempo, key, count-in, loop,
song time), then the stream processor over the whole stretched signal, then the mixer at steady
gains, and the count-in's clicks are added last, as the engine adds them: sample for sample the
engine's offline render with its latency cut (``tests/realtime/test_practice_render.py``
asserts it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engine.mixer import StemMixer, db_to_gain
from ..engine.processor import StreamProcessor
from ..errors import UserError
from ..runtime.separation import render_stream
from .practice_source import PracticeSource

#: Samples the source hands over per read (any size gives the same samples).
READ = 4096
#: Loop passes rendered when a loop is asked for and no count is given.
DEFAULT_LOOP_PASSES = 4


@dataclass(frozen=True)
class PracticeSettings:
    """What a practice track is made of.

    Attributes:
        tempo: times the song's speed (0.5-1.5), pitch kept.
        transpose: semitones (-12..+12), tempo kept.
        count_in: one bar of clicks before the start and each loop restart.
        loop: (A, B) in song seconds, or ``None``.
        loop_passes: times round the loop.
        start: song seconds to start from (A when looping).
        gains_db: per stem name, its fader in dB.
        mute, solo: stem names.
        pans: per stem name, -1 (left) to +1 (right).
        click: the click stem (the beat grid's clicks) sounds; a fader, solo or pan may name
            it ``click`` too.
        bleed_gates_db: per stem name, the bleed gate's threshold below the stem's peak.
    """

    tempo: float = 1.0
    transpose: float = 0.0
    count_in: bool = False
    loop: tuple[float, float] | None = None
    loop_passes: int = DEFAULT_LOOP_PASSES
    start: float = 0.0
    gains_db: Mapping[str, float] = field(default_factory=dict)
    mute: Sequence[str] = ()
    solo: Sequence[str] = ()
    pans: Mapping[str, float] = field(default_factory=dict)
    bleed_gates_db: Mapping[str, float] = field(default_factory=dict)
    click: bool = False


def parse_loop(text: str) -> tuple[float, float]:
    """``"12.5-20"`` -> (12.5, 20.0); B must follow A."""
    parts = text.split("-")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise UserError(
            f"A loop is given as A-B in seconds (e.g. 12.5-20), got {text!r}."
        ) from None
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or b <= a:
        raise UserError(f"The loop's end B must come after its start A, got {text!r}.")
    return a, b


def configure_source(
    source: PracticeSource,
    settings: PracticeSettings,
    beats: np.ndarray | None = None,
    bpm: float | None = None,
    downbeats: np.ndarray | None = None,
) -> None:
    """Apply ``settings``' transport to a practice source (the engine's or the render's)."""
    source.set_tempo(settings.tempo)
    source.set_transpose(settings.transpose)
    source.set_count_in(settings.count_in)
    source.set_grid(beats, bpm, downbeats)
    start = settings.start
    if settings.loop is not None:
        a, b = settings.loop
        if a >= source.duration:
            raise UserError(
                f"The loop starts at {a:g} s, after the song's end ({source.duration:.1f} s)."
            )
        source.set_loop(a, b)
        start = a
    source.seek(start)


def configure_mixer(
    mixer: StemMixer,
    processor: StreamProcessor,
    settings: PracticeSettings,
) -> None:
    """Faders, mutes, solos and pans by stem name (the model's stems, then ``click``), and the
    processor's bleed gates; an unknown name, a pan or a threshold out of range is one
    sentence."""
    stems = (*processor.stems, "click")
    names = [*settings.gains_db, *settings.mute, *settings.solo, *settings.pans]
    for name in [*names, *settings.bleed_gates_db]:
        known = stems if name in names and name not in settings.bleed_gates_db else stems[:-1]
        if name not in known:
            raise UserError(
                f"No stem called {name!r}: this model has {', '.join(processor.stems)} "
                "(and the click)."
            )
    mixer.set_mute(len(stems) - 1, not settings.click)
    try:
        for name, pan in settings.pans.items():
            mixer.set_pan(stems.index(name), pan)
        for name, db in settings.bleed_gates_db.items():
            processor.set_bleed_gate(stems.index(name), db)
    except ValueError as error:
        raise UserError(str(error)[:1].upper() + str(error)[1:].rstrip(".") + ".") from None
    for name, db in settings.gains_db.items():
        mixer.set_gain(stems.index(name), db_to_gain(db))
    for name in settings.mute:
        mixer.set_mute(stems.index(name), True)
    for name in settings.solo:
        mixer.set_solo(stems.index(name), True)
    mixer.reset()  # steady at the asked gains from the first sample, as the engine starts


def stretched_song(source: PracticeSource, settings: PracticeSettings) -> np.ndarray:
    """Everything the source gives until the song ends (or the loop has come round
    ``loop_passes`` times): [shape=(n, n_columns)], audio, count-in clicks, song seconds."""
    source.restart()
    blocks, passes = [], 0
    buffer = np.zeros((READ, source.n_columns), np.float32)
    last_time = -1.0
    while not source.finished:
        if not source.ready(READ):
            raise RuntimeError("the practice source gave no samples")
        got = source.read_block_into(buffer)
        block = buffer[:got].copy()
        if settings.loop is not None:
            # a pass ends where song time jumps back to A
            times = np.concatenate([[last_time], block[:, -1]])
            for wrap in np.flatnonzero(np.diff(times) < -1e-3):
                passes += 1
                if passes == settings.loop_passes:
                    blocks.append(block[:wrap])
                    return np.concatenate(blocks)
            if got:
                last_time = float(block[-1, -1])
        blocks.append(block)
        source.refill()
    return np.concatenate(blocks)


def render_practice(
    processor: StreamProcessor,
    audio: np.ndarray,
    settings: PracticeSettings,
    beats: np.ndarray | None = None,
    bpm: float | None = None,
    downbeats: np.ndarray | None = None,
) -> np.ndarray:
    """The practice track for ``audio`` [shape=(n_samples, n_channels)] at the processor's
    rate: [shape=(n_out, n_channels)] float32, the stems' latency cut."""
    rate = processor.preset.sample_rate
    n_channels = processor.n_channels
    source = PracticeSource(audio, rate)
    configure_source(source, settings, beats, bpm, downbeats)
    stretched = stretched_song(source, settings)
    n_out = stretched.shape[0]
    processor.prepare(rate, READ)
    mixer = StemMixer(len(processor.stems) + 1, n_channels, rate, READ)
    configure_mixer(mixer, processor, settings)
    stems_flat = render_stream(processor, np.ascontiguousarray(stretched[:, :n_channels]), READ)
    latency = processor.latency_samples
    # (n, n_stems * n_channels) -> (n_stems + 1, n, n_channels), the latency cut, and the
    # click stem after the model's
    n_stems = len(processor.stems)
    by_stem = np.zeros((n_stems + 1, n_out, n_channels), np.float32)
    by_stem[:n_stems] = (
        stems_flat[latency : latency + n_out].reshape(n_out, n_stems, n_channels).transpose(1, 0, 2)
    )
    by_stem[n_stems] = stretched[:, n_channels + 1 : n_channels + 2]
    out = np.zeros((n_out, n_channels), np.float32)
    for start in range(0, n_out, READ):
        stop = min(start + READ, n_out)
        mixer.mix_into(by_stem[:, start:stop], out[start:stop])
    out += stretched[:, n_channels : n_channels + 1]
    return out
