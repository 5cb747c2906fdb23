"""Audio sources the engine plays: a file in memory, with transport controls.

Thread contract: the **audio callback** owns reading (``read_into``): it copies from the
preloaded array into a preallocated block, never allocating, locking or blocking. **Control
threads** (terminal UI, GUI) call ``play``/``pause``/``seek``/``set_loop``: each is one or two
attribute stores, atomic under the GIL; the callback sees them at its next block.
"""

from __future__ import annotations

import numpy as np


class FileSource:
    """A song held in memory, played from a position, optionally looping between two points.

    Args:
        audio: [shape=(n_samples, n_channels), float32], at the engine's sample rate.
        sample_rate: samples per second (for the seconds-based controls).
    """

    def __init__(self, audio: np.ndarray, sample_rate: int) -> None:
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.sample_rate = sample_rate
        self.n_samples = self.audio.shape[0]
        self.position = 0
        self.playing = True
        self.finished = False
        self.loop_start = 0
        self.loop_end = 0  # 0: no loop

    # -- controls, any thread ---------------------------------------------------------------

    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def toggle(self) -> None:
        self.playing = not self.playing

    def seek(self, seconds: float) -> None:
        """Jump to ``seconds`` from the start (clamped to the song)."""
        self.position = int(min(max(seconds * self.sample_rate, 0), self.n_samples))
        self.finished = self.position >= self.n_samples

    def seek_by(self, seconds: float) -> None:
        self.seek(self.position / self.sample_rate + seconds)

    def set_loop(self, start_seconds: float, end_seconds: float) -> None:
        """Loop between two points; an empty range turns looping off."""
        start = int(max(start_seconds, 0) * self.sample_rate)
        end = int(min(end_seconds * self.sample_rate, self.n_samples))
        self.loop_start, self.loop_end = (start, end) if end > start else (0, 0)

    @property
    def seconds(self) -> float:
        return self.position / self.sample_rate

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate

    # -- audio callback ---------------------------------------------------------------------

    def read_into(self, out: np.ndarray) -> None:
        """Fill ``out`` [shape=(n_out, n_channels)] with the next samples; silence when paused
        or past the end."""
        n_out = out.shape[0]
        if not self.playing:
            out.fill(0.0)
            return
        done = 0
        while done < n_out:
            end = self.loop_end if self.loop_end else self.n_samples
            if self.position >= end:
                if self.loop_end:
                    self.position = self.loop_start
                    continue
                out[done:].fill(0.0)
                self.finished = True
                return
            take = min(n_out - done, end - self.position)
            out[done : done + take] = self.audio[self.position : self.position + take]
            self.position += take
            done += take
