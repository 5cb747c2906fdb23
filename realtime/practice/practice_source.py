"""A song to practise with: the file source, at another tempo or key, with a count-in.

Thread contract (DESIGN.md, "The data path"; the engine calls each side from its own thread):

- **Audio callback**: ``read_block_into`` only. It copies the next samples from a ring that
  the worker keeps filled ahead, never allocating, locking or blocking; paused, it plays
  silence and leaves the ring as it is; short, it plays what is there, then silence, and counts
  ``underruns`` (the worker fell behind). It also publishes ``heard_seconds``, the song time
  of the last sample it read (the ring carries song time beside the audio).
- **Worker** (the engine's, after each block's separation; or an offline render's loop):
  ``refill`` reads the song from ``position`` (loop and end as ``FileSource`` does), runs
  Rubber Band (``TempoKeyStretcher``, which may allocate: it is never in the callback) while a
  tempo or key differs from the song's, renders the count-in's clicks, and writes the ring up to
  ``lead_samples`` ahead. It alone moves ``position`` (``FileSource.read_into`` from here on
  is the worker's), and applies the control threads' requests (seek, tempo, key).
- **Control threads**: ``play``, ``pause``, ``seek``, ``set_loop``, ``set_tempo``,
  ``set_transpose``, ``set_count_in``, ``set_grid``: checked, then one attribute store each;
  the worker sees them at its next refill, so a control acts within ``lead_samples``. The first
  tempo or key away from the song's also builds the two Rubber Band stretchers, before its store.
- ``restart`` only while the engine is stopped.

Song time. Seek, loop A-B and the transport's clock are in song time whatever the tempo: the
worker reads the song in song time and writes each output sample's song time beside it.
Stretched, output sample k after a (re)start at song sample p stands for p + sum of the tempo
over the samples before it (Rubber Band is primed so that it adds no delay: ``tempo_key``).

Click-free. A tempo or key change while stretching is Rubber Band's ratio change (smooth). The
first change away from the song's own tempo and key starts a stretcher primed with the song
before its position, so its output continues the direct signal (faded in over ``ENGAGE_FADE``);
back at 1.0 and 0 it goes on stretching at those ratios until the next discontinuity (a seek, a
loop restart, a count-in), where it returns to the direct signal.

No dropouts. A stretcher gives its first output only after 16-17 chunks of song (14 ms of work
measured here), and a final flush at B costs as much (12 ms): either, in one refill, would leave
the callback short of a 5.8 ms block. So the worker never does either at once. A second stretcher
(the spare) takes over where one would start: at ``ENGAGE_AHEAD`` past a change made mid-play
(the song plays on as recorded until there), and at A for a loop played stretched. It is started
at that point and fed one chunk per refill beforehand; the stretcher playing B is fed on past B
and its output cut there, instead of flushed. After a seek the change is heard at once: the
stretcher starts there, fed at most ``START_CHUNKS_PER_REFILL`` chunks per refill, and until its
first output silence keeps the ring at its lead (15 ms of it measured at 256-sample blocks:
the seek's price, a gap rather than a dropout); the first output fades in from it.
"""

from __future__ import annotations

import numpy as np

from ..engine.ring_buffer import AudioRingBuffer
from ..engine.sources import FileSource
from .click import click_sound
from .tempo_key import TempoKeyStretcher, check_tempo, check_transpose, require_rubber_band

#: Song samples read per step of the worker's refill.
CHUNK = 256
#: Output samples over which the stretcher's first samples fade in from the direct signal
#: (~12 ms at 44.1 kHz): the same song position, but its waveform's slope changes with the tempo.
ENGAGE_FADE = 512
#: Song samples the first tempo or key away from the song's (mid-play, not after a jump) waits
#: before it is heard (~190 ms at 44.1 kHz): the spare stretcher is started there and fed a chunk
#: per call meanwhile, and its start-up takes 16-17 chunks before its first output.
ENGAGE_AHEAD = 32 * CHUNK
#: Song chunks a refill may feed a stretcher started after a seek before its first output: its
#: 16-17 chunks of start-up spread over 4-5 refills (a loop's restart has the spare instead).
START_CHUNKS_PER_REFILL = 4
#: Beats per count-in (one 4/4 bar).
COUNT_IN_BEATS = 4
#: The count-in's tempo when the song has no beat grid.
DEFAULT_COUNT_IN_BPM = 120.0
#: The count-in clicks' level in the output (about -10 dBFS peaks).
COUNT_IN_GAIN = 0.3


class PracticeSource(FileSource):
    """Args:
    audio: [shape=(n_samples, n_channels), float32] at the engine's rate.
    sample_rate: samples per second.
    lead_samples: how far ahead of the callback the worker keeps the ring (the engine's
        head start plus a block is enough: the worker refills after every block).
    """

    def __init__(self, audio: np.ndarray, sample_rate: int, lead_samples: int = 4096) -> None:
        super().__init__(audio, sample_rate)
        n_channels = self.audio.shape[1]
        self.n_channels = n_channels
        #: Columns of a block: the audio's channels, the count-in's clicks, the grid's clicks
        #: (the click stem), song seconds.
        self.n_columns = n_channels + 3
        self.lead_samples = lead_samples
        # A stretched chunk at tempo 0.5 is twice as long, and Rubber Band hands over its
        # output in bursts of up to a few thousand samples: room for both beyond the lead.
        self._ring = AudioRingBuffer(lead_samples + 8 * CHUNK + 16384, self.n_columns)
        self._chunk_in = np.zeros((CHUNK, n_channels), dtype=np.float32)
        self._heard = np.zeros((1, self.n_columns), dtype=np.float32)
        self.tempo = 1.0
        self.transpose = 0.0
        self.count_in = False
        self.beat_times: np.ndarray | None = None  # song seconds of the grid's beats
        self.downbeat_times: np.ndarray | None = None
        self.bpm: float | None = None
        self.heard_seconds = 0.0
        self.underruns = 0
        self._stretcher: TempoKeyStretcher | None = None
        self._stretching = False
        # A second stretcher, primed where one would otherwise start (loop A, or ENGAGE_AHEAD
        # past a change) and fed ahead, so that taking over there costs the worker no more than
        # any other chunk (``_spare_*``).
        self._spare: TempoKeyStretcher | None = None
        self._spare_at: int | None = None  # the song sample it is primed at (A), or None
        self._spare_fed = 0  # song sample it is fed up to
        self._spare_out: np.ndarray | None = None  # its first output, once it has some
        self._engage_at: int | None = None  # where a tempo or key change will be heard
        self._engage_now = True  # the next chunk follows a jump: a change is heard at once
        self._song_time = 0.0  # song sample of the next stretched output sample
        self._engaged_at = 0  # song sample where the stretcher started
        self._fade_done = ENGAGE_FADE
        self._fade_from_silence = False  # the stretcher's first output follows start-up silence
        self._quiet_start = False  # after a seek in a refill: the stretcher starts in silence
        self._start_chunks_left: int | None = None  # this refill's budget (None: no limit)
        self._seek_request: int | None = None
        self._count_in_left = 0  # output samples of count-in still to write
        self._count_in_pending = False
        self._song_done = False
        self._clicks = (click_sound(sample_rate, False), click_sound(sample_rate, True))
        self._written = 0  # output samples written since the restart
        # Clicks still sounding or due: [absolute output sample, accent, column]
        self._sounding: list[tuple[int, bool, int]] = []

    # -- controls, any thread ----------------------------------------------------------------

    def set_tempo(self, tempo: float) -> None:
        tempo = check_tempo(tempo)
        if tempo != 1.0:
            self._build_stretcher()
        self.tempo = tempo  # after the build: the worker engages when it sees this store

    def set_transpose(self, semitones: float) -> None:
        semitones = check_transpose(semitones)
        if semitones != 0.0:
            self._build_stretcher()
        self.transpose = semitones

    def _build_stretcher(self) -> None:
        """Rubber Band, set up on the control thread the first time a tempo or key asks for it:
        one sentence here when it is missing, not later in the worker, and its set-up (2-6 ms
        measured here, most of a device block) is not the worker's, which would have made the
        callback run dry on the block the stretcher engages."""
        require_rubber_band()
        if self._stretcher is None:
            self._stretcher = TempoKeyStretcher(self.sample_rate, self.n_channels)
            self._spare = TempoKeyStretcher(self.sample_rate, self.n_channels)

    def set_count_in(self, enabled: bool) -> None:
        self.count_in = bool(enabled)

    def set_grid(
        self,
        beat_times: np.ndarray | None,
        bpm: float | None,
        downbeat_times: np.ndarray | None = None,
    ) -> None:
        """The song's beats and downbeats (seconds) and tempo, for the count-in and the click
        stem; ``None``: no grid (the count-in then clicks at 120 BPM, the click stem is
        silent)."""
        self.beat_times = None if beat_times is None else np.asarray(beat_times, np.float64)
        self.downbeat_times = (
            None if downbeat_times is None else np.asarray(downbeat_times, np.float64)
        )
        self.bpm = bpm

    def seek(self, seconds: float) -> None:
        self._seek_request = int(min(max(seconds * self.sample_rate, 0), self.n_samples))
        self.finished = False
        self._song_done = False

    def play(self) -> None:
        if not self.playing and self.count_in:
            self._count_in_pending = True
        self.playing = True

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    @property
    def seconds(self) -> float:
        return self.heard_seconds

    @property
    def stretch_delay_samples(self) -> int:
        """Rubber Band's hold-back (compensated: the report shows what priming hides)."""
        return 0 if self._stretcher is None else self._stretcher.delay_samples

    # -- lifetime, while stopped ---------------------------------------------------------------

    def restart(self) -> None:
        """Empty the ring and fill it again from ``position`` (the engine's ``reset``)."""
        self._ring.reset()
        self._written = 0
        self._sounding = []
        self._stretching = False
        self._engage_now, self._engage_at = True, None
        self._song_done = self.position >= self.n_samples and not self.loop_end
        self.finished = False
        self._count_in_left = 0
        self._count_in_pending = self.count_in
        self.heard_seconds = self.position / self.sample_rate
        self._fill(None)  # no callback is waiting: a stretcher may start in one go

    # -- audio callback -------------------------------------------------------------------------

    def read_block_into(self, out: np.ndarray) -> int:
        """Fill ``out`` [shape=(n_samples, n_columns)]: the audio, the count-in's clicks and
        each sample's song seconds; returns how many came from the song (the rest is
        silence)."""
        n_out = out.shape[0]
        if not self.playing:
            out.fill(0.0)
            return 0
        got = self._ring.read_into(out)
        if got < n_out:
            out[got:].fill(0.0)
            if self._song_done:
                self.finished = True
            else:
                self.underruns += 1
        if got:
            self.heard_seconds = float(out[got - 1, -1])
        return got

    def ready(self, n_samples: int) -> bool:
        """Whether the callback's next ``n_samples`` are in the ring (or the song is over)."""
        return self._ring.fill() >= n_samples or self._song_done

    # -- worker ---------------------------------------------------------------------------------

    def refill(self) -> None:
        """Write the ring ``lead_samples`` ahead of the callback."""
        self._fill(START_CHUNKS_PER_REFILL)

    def _fill(self, start_chunks: int | None) -> None:
        self._start_chunks_left = start_chunks
        ring = self._ring
        while self.playing and ring.fill() < self.lead_samples and not self._song_done:
            if self._seek_request is not None:
                self.position, self._seek_request = self._seek_request, None
                self._stretching = False
                # A callback waits on this refill (not on ``restart``'s): a stretcher that
                # starts here starts over several refills, in silence.
                self._quiet_start = start_chunks is not None
                self._engage_now, self._engage_at = True, None
                if self.position >= self.n_samples and not self.loop_end:
                    self._song_done = True
                    break
            if self._count_in_pending:
                self._count_in_pending = False
                self._start_count_in()
            if self._count_in_left:
                self._write_count_in()
                continue
            self._write_song()

    def _song_end(self) -> int:
        return self.loop_end if self.loop_end else self.n_samples

    def _write_song(self) -> None:
        """One chunk of the song from ``position``: direct, or through the stretcher."""
        if self._stretching and self.loop_end and not self.count_in:
            self._write_stretched_loop()
            return
        end = self._song_end()
        if self.position >= end:
            if self.loop_end:
                # the loop's last samples are still in the stretcher: hear them, then jump
                self._flush_stretcher()
                self.position = self.loop_start
                self._engage_now, self._engage_at = True, None
                if self.count_in:
                    self._start_count_in()
                return
            self._finish_song()
            return
        start = self.position
        n_in = min(CHUNK, end - start)
        chunk = self.audio[start : start + n_in]
        tempo, semitones = self.tempo, self.transpose
        if not self._stretching and (tempo != 1.0 or semitones != 0.0):
            if self._engage_ahead(start, end, tempo, semitones):
                return
            # Built by set_tempo / set_transpose before their store: never allocated here.
            assert self._stretcher is not None
            self._stretcher.set(tempo, semitones)
            self._stretcher.start(self.audio, start)
            self._stretching = True
            self._song_time = float(start)
            self._engaged_at, self._fade_done = start, 0
            self._fade_from_silence = False
        self._engage_now = False
        if not self._stretching:
            self._write_direct(start, n_in)
            return
        self.position = start + n_in
        stretcher = self._stretcher
        assert stretcher is not None
        stretcher.set(tempo, semitones)
        stretched = stretcher.process(chunk)
        if not self._starting_up(stretched):
            self._write_stretched(stretched, tempo)

    def _write_direct(self, start: int, n_in: int) -> None:
        """The song as recorded, ``n_in`` samples from ``start``."""
        self._quiet_start = False  # no stretcher starts: the seek is heard at once
        self.position = start + n_in
        times = (start + np.arange(n_in)) / self.sample_rate
        self._write(self.audio[start : start + n_in], times)

    def _engage_ahead(self, start: int, end: int, tempo: float, semitones: float) -> bool:
        """The first tempo or key away from the song's, mid-play: the song goes on as recorded
        up to ``ENGAGE_AHEAD`` samples on, while the spare, started there, is fed a chunk per
        call; there it takes over with its first output ready. Starting a stretcher where the
        change came would cost one block the whole start-up. False: start it here (after a
        jump, where the change is heard at once, or too near B or the end to feed ahead)."""
        if self._engage_now or self._spare is None:
            return False
        at = self._engage_at
        if at is None or at < start:
            at = start + ENGAGE_AHEAD
            if at + CHUNK >= end:
                return False
            self._engage_at = at
        self._feed_spare(at, tempo, semitones)
        if start < at:
            self._write_direct(start, min(CHUNK, at - start))
            return True
        self._engage_at = None
        return self._take_spare(at, tempo)

    def _take_spare(self, at: int, tempo: float) -> bool:
        """The spare, primed at song sample ``at`` and fed ahead, becomes the stretcher (its
        first output written, faded in from the song at ``at``); False when it is not ready."""
        spare, out = self._spare, self._spare_out
        if spare is None or self._spare_at != at or out is None:
            return False
        self._stretcher, self._spare = spare, self._stretcher
        self._spare_at, self._spare_out = None, None
        self._stretching = True  # also after B at the song's end, where the flush left it
        self.position = self._spare_fed
        self._song_time = float(at)
        self._engaged_at, self._fade_done = at, 0
        self._fade_from_silence = False
        # A loop shorter than the spare's first output: no song time past B (or the end).
        self._write_stretched(out[: max(0, int(np.ceil((self._song_end() - at) / tempo)))], tempo)
        return True

    def _write_stretched(self, stretched: np.ndarray, tempo: float) -> None:
        if self._fade_done < ENGAGE_FADE and stretched.shape[0]:
            self._fade_in(stretched)
        # Song time of each output sample: the tempo is the song samples per output sample.
        times = (self._song_time + tempo * np.arange(stretched.shape[0])) / self.sample_rate
        self._song_time += tempo * stretched.shape[0]
        self._write(stretched, times)

    def _write_stretched_loop(self) -> None:
        """One chunk while loop A-B plays stretched. The stretcher is fed past B (the song goes
        on there) and its output is cut where song time reaches B: no final flush, which costs
        the worker as much as a device block. Then the spare, primed at A and fed a chunk per
        call beside this one, takes over with its first output ready: no start-up either."""
        tempo, semitones = self.tempo, self.transpose
        self._feed_spare(self.loop_start, tempo, semitones)
        start = self.position
        n_in = min(CHUNK, self.n_samples - start)
        if n_in <= 0:  # B at the song's end: nothing past it to feed
            self._flush_stretcher()
            self._jump_to_loop_start(tempo)
            return
        stretcher = self._stretcher
        assert stretcher is not None
        stretcher.set(tempo, semitones)
        stretched = stretcher.process(self.audio[start : start + n_in])
        self.position = start + n_in
        if self._starting_up(stretched):
            return
        to_b = max(0, int(np.ceil((self.loop_end - self._song_time) / tempo)))
        self._write_stretched(stretched[:to_b], tempo)
        if stretched.shape[0] >= to_b:
            self._jump_to_loop_start(tempo)

    def _starting_up(self, stretched: np.ndarray) -> bool:
        """Whether the stretcher, fed a chunk that gave ``stretched``, is still starting up
        and this refill has fed it all it may: then silence (at the song time it starts from)
        fills the ring to its lead, and the refill ends without an under-run."""
        if stretched.shape[0]:
            self._quiet_start = False
        if not self._quiet_start or self._fade_done or self._start_chunks_left is None:
            return False
        self._start_chunks_left -= 1
        if self._start_chunks_left > 0:
            return False
        n = self.lead_samples - self._ring.fill()
        if n > 0:
            times = np.full(n, self._song_time / self.sample_rate)
            self._write(np.zeros((n, self.n_channels), np.float32), times, in_song=False)
            self._fade_from_silence = True
        return True

    def _feed_spare(self, at: int, tempo: float, semitones: float) -> None:
        """Prime the spare at song sample ``at``, or feed it one chunk until its first output is
        there."""
        spare = self._spare
        if spare is None or (self._spare_at == at and self._spare_out is not None):
            return
        spare.set(tempo, semitones)
        if self._spare_at != at:
            spare.start(self.audio, at)
            self._spare_at, self._spare_fed, self._spare_out = at, at, None
            return
        n_in = min(CHUNK, self.n_samples - self._spare_fed)
        if n_in < CHUNK:
            return  # too near the song's end to be ready: a stretcher starts there instead
        out = spare.process(self.audio[self._spare_fed : self._spare_fed + n_in])
        self._spare_fed += n_in
        if out.shape[0]:
            self._spare_out = out

    def _jump_to_loop_start(self, tempo: float) -> None:
        """From B to A: the spare goes on from where it was fed, when it is ready; else the
        stretcher starts again at A on the next chunk (as after a seek)."""
        if not self._take_spare(self.loop_start, tempo):
            self._stretching = False
            self.position = self.loop_start
            self._engage_now, self._engage_at = True, None

    def _fade_in(self, stretched: np.ndarray) -> None:
        """Blend the stretcher's first ``ENGAGE_FADE`` samples in from the direct signal (a
        raised-cosine cross-fade, in place)."""
        n = min(ENGAGE_FADE - self._fade_done, stretched.shape[0])
        index = self._fade_done + np.arange(n)
        weight = (0.5 - 0.5 * np.cos(np.pi * (index + 1) / ENGAGE_FADE))[:, None]
        if self._fade_from_silence:
            stretched[:n] *= weight
        else:
            direct = self.audio[np.minimum(self._engaged_at + index, self.n_samples - 1)]
            stretched[:n] = weight * stretched[:n] + (1.0 - weight) * direct
        self._fade_done += n

    def _flush_stretcher(self) -> None:
        """Write what the stretcher still holds (the samples before the end or the loop's B)
        and leave stretching: what follows is a jump, where the stretcher starts again."""
        if self._stretching and self._stretcher is not None:
            rest = self._stretcher.process(np.zeros((0, self.n_channels), np.float32), True)
            # A final flush also gives the windows' tails past the input: keep what the song
            # time left to B (or the end) lasts at this tempo.
            end = self._song_end()
            keep = max(0, int(round((end - self._song_time) / self.tempo)))
            rest = rest[:keep]
            times = (self._song_time + self.tempo * np.arange(rest.shape[0])) / self.sample_rate
            self._write(rest, np.minimum(times, end / self.sample_rate))
        self._stretching = False

    def _finish_song(self) -> None:
        self._flush_stretcher()
        self._song_done = True

    def _write(self, audio: np.ndarray, song_seconds: np.ndarray, in_song: bool = True) -> None:
        """Write ``audio`` with its song times to the ring, and the clicks that fall in it:
        the grid's beats in its song-time range (``in_song``), and any click still sounding."""
        n = audio.shape[0]
        if n == 0:
            return
        block = np.zeros((n, self.n_columns), dtype=np.float32)
        block[:, : self.n_channels] = audio
        block[:, -1] = song_seconds
        if in_song and self.beat_times is not None:
            self._schedule_grid_clicks(song_seconds)
        self._render_clicks(block)
        written = self._ring.write(block)
        if written < n:  # never with the ring's margin; say so if it happens
            raise RuntimeError("the practice ring overflowed")
        self._written += n

    def _schedule_grid_clicks(self, song_seconds: np.ndarray) -> None:
        """The grid's beats within this run of song time, at the output sample that plays
        them (song time rises through a block: searchsorted finds it, stretched or not)."""
        beats = self.beat_times
        assert beats is not None
        step = song_seconds[1] - song_seconds[0] if song_seconds.shape[0] > 1 else 0.0
        lo, hi = song_seconds[0], song_seconds[-1] + step
        for beat in beats[(beats >= lo) & (beats < hi)]:
            offset = int(np.searchsorted(song_seconds, beat))
            accent = self.downbeat_times is not None and bool(
                np.any(np.abs(self.downbeat_times - beat) < 1e-6)
            )
            self._sounding.append((self._written + offset, accent, self.n_channels + 1))

    def _render_clicks(self, block: np.ndarray) -> None:
        """Add every scheduled click's part that falls in ``block`` (its tail carries on)."""
        first, n = self._written, block.shape[0]
        keep = []
        for onset, accent, column in self._sounding:
            sound = self._clicks[1 if accent else 0]
            lo, hi = max(onset, first), min(onset + sound.shape[0], first + n)
            if lo < hi:
                gain = COUNT_IN_GAIN if column == self.n_channels else 1.0
                block[lo - first : hi - first, column] += gain * sound[lo - onset : hi - onset]
            if onset + sound.shape[0] > first + n:
                keep.append((onset, accent, column))
        self._sounding = keep

    # -- count-in -------------------------------------------------------------------------------

    def count_in_geometry(self) -> tuple[float, float]:
        """(output samples between clicks, output samples from the count-in's start to the
        song's first sample), at the current tempo: the bar's fourth click is followed, one beat
        later, by the first grid beat at or after ``position``."""
        rate, tempo = self.sample_rate, self.tempo
        bpm = self.bpm if self.bpm else DEFAULT_COUNT_IN_BPM
        period = 60.0 / bpm * rate / tempo
        start_s = self.position / rate
        offset = 0.0
        if self.beat_times is not None and len(self.beat_times):
            later = self.beat_times[self.beat_times >= start_s - 1e-9]
            if len(later):
                # The song reaches its next beat this long after it starts again.
                offset = (later[0] - start_s) * rate / tempo
        offset = offset % period
        return period, COUNT_IN_BEATS * period - offset

    def _start_count_in(self) -> None:
        period, length = self.count_in_geometry()
        self._count_in_left = int(round(length))
        for beat in range(COUNT_IN_BEATS):
            onset = self._written + int(round(beat * period))
            self._sounding.append((onset, beat == 0, self.n_channels))

    def _write_count_in(self) -> None:
        n = min(CHUNK, self._count_in_left)
        silence = np.zeros((n, self.n_channels), dtype=np.float32)
        times = np.full(n, self.position / self.sample_rate)
        self._write(silence, times, in_song=False)
        self._count_in_left -= n
