"""Clicks: the metronome's sound, where it falls on a beat grid, and the count-in's bar.

Thread contract:

- ``click_sound``, ``click_times`` and ``count_in_times`` build new arrays and lists: control
  threads and the worker, never the audio callback.
- A ``ClickRenderer`` is built off the audio path (its two sounds are computed then);
  ``render_into`` allocates no array memory (it slices the precomputed sounds and adds them in
  place), so the worker or, at a pinch, the audio callback may call it, one thread per
  renderer (it holds no state between calls, so several may share one as well).

Times here are song seconds or absolute sample indices; the renderer never keeps a position,
so a seek or a loop needs no reset: the caller says which samples a block covers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .beat_grid import BeatGrid

#: A click's length: long enough to sound as a pitch, short enough to mark a time.
CLICK_SECONDS = 0.025
#: The first beat of a bar is higher (accent), the others lower, as on a hardware metronome.
ACCENT_HZ = 1500.0
BEAT_HZ = 1000.0
#: The sine's decay time constant: -35 dB by the click's end, so its cut-off does not click.
DECAY_SECONDS = 0.005


def click_sound(sample_rate: int, accent: bool) -> np.ndarray:
    """A 25 ms decaying sine, [shape=(n,)] float32, peak about 1: 1.5 kHz for the bar's first
    beat, 1 kHz for the others."""
    n = int(CLICK_SECONDS * sample_rate)
    t = np.arange(n) / sample_rate
    frequency = ACCENT_HZ if accent else BEAT_HZ
    return (np.sin(2 * np.pi * frequency * t) * np.exp(-t / DECAY_SECONDS)).astype(np.float32)


class ClickRenderer:
    """Adds clicks into blocks of samples, however the stream is cut into blocks.

    Args:
        sample_rate: samples per second.
        gain: the clicks' level (1.0: peaks near full scale).
    """

    def __init__(self, sample_rate: int, gain: float = 1.0) -> None:
        self.sample_rate = sample_rate
        # Scaled once here, so that render_into only slices and adds.
        self._sounds = (
            gain * click_sound(sample_rate, accent=False),
            gain * click_sound(sample_rate, accent=True),
        )
        #: How long a click lasts, in samples: a click that started this many samples or
        #: fewer before a block still sounds in it, so callers pass such clicks too.
        self.click_samples = int(self._sounds[0].shape[0])

    def render_into(
        self,
        out: np.ndarray,
        start_sample: int,
        click_samples: Sequence[int] | np.ndarray,
        accents: Sequence[bool] | np.ndarray,
    ) -> None:
        """Add clicks to ``out`` [shape=(n,)] float32, which holds absolute samples
        ``[start_sample, start_sample + n)``.

        Args:
            click_samples: absolute sample index where each click starts; a click that began
                before the block adds its tail, one that starts after it adds nothing.
            accents: per click, whether it is an accented (bar's first) click.
        """
        n = out.shape[0]
        end_sample = start_sample + n
        length = self.click_samples
        for onset, accent in zip(click_samples, accents, strict=True):
            onset = int(onset)
            first, last = max(onset, start_sample), min(onset + length, end_sample)
            if first >= last:
                continue  # before the block (its tail is over) or after it
            sound = self._sounds[1 if accent else 0]
            # views of both arrays, added in place: no array memory on the audio path
            target = out[first - start_sample : last - start_sample]
            np.add(target, sound[first - onset : last - onset], out=target)


def click_times(grid: BeatGrid, start_s: float, end_s: float) -> list[tuple[float, bool]]:
    """The grid's beats in ``[start_s, end_s)`` song seconds, as (seconds, accent), accented
    on downbeats; none when the grid is unavailable."""
    if not grid.available:
        return []
    beats = np.asarray(grid.beats, dtype=np.float64)
    downbeats = np.asarray(grid.downbeats, dtype=np.float64)
    chosen = beats[(beats >= start_s) & (beats < end_s)]
    # Downbeats are beats of the same analysis; a tolerance keeps a JSON round trip (or a
    # grid written by hand) from losing an accent to the last bit of a float.
    accents = (
        np.abs(chosen[:, None] - downbeats[None, :]).min(axis=1) < 1e-6
        if downbeats.size
        else np.zeros(chosen.shape, dtype=bool)
    )
    return [(float(time), bool(accent)) for time, accent in zip(chosen, accents, strict=True)]


def count_in_times(grid: BeatGrid) -> list[tuple[float, bool]]:
    """One bar of clicks before the music, as (seconds from the count-in's start, accent):
    ``grid.beats_per_bar`` clicks one beat apart, the first accented; the bar lasts
    ``grid.bar_seconds``. An unavailable grid carries 4/4 at 120 BPM
    (``BeatGrid.unavailable``), so the count-in then is four clicks 0.5 s apart."""
    period = grid.beat_period_s
    return [(index * period, index == 0) for index in range(grid.beats_per_bar)]
