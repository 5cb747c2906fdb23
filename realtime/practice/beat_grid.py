"""The song's beat grid and key: tempo, beats, bar lines, and the key it is in, cached per file.

Thread contract:

- ``analyse`` and ``grid_for_file`` take seconds (librosa's beat tracker and chroma; a cache
  file read or written) and allocate freely: call them from a **background** thread (a
  ``BeatGridLoader``'s) or the main thread of a command, never from the audio callback or the
  engine's worker. Two threads may analyse or use one cache at once: an entry is written
  atomically, so a reader sees the old one or the new one, and the last writer wins.
- A ``BeatGrid`` is frozen: once made it is shared between threads without a lock.
  ``snap_to_bar`` and the properties only read it (control threads: the GUI snapping a loop).
- ``start_analysis`` and ``answer`` run on a loader's background thread and block it (pipe
  writes and reads, which release the GIL) while the samples go to the analysis process and
  until it answers; ``kill`` on that process may come from any thread.
- ``BeatGridLoader``: ``start`` from one control thread (the one that loads songs);
  ``result`` and ``wait`` from any thread; ``on_done`` runs on the loader's **background**
  thread, so a window hands the grid to its own thread (a Qt signal) before painting it.

librosa is the ``practice`` extra. Without it the grid is unavailable, in one sentence that
says how to install it, and nothing raises: the count-in then clicks at 120 BPM.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic_file import atomic_write

#: Bumped whenever ``analyse`` would give another grid for the same song: older cache entries
#: are then never read (the version is part of the key and of the entry).
ANALYSIS_VERSION = 1
#: The tempo an unavailable grid carries, so that the count-in clicks 4/4 at 120 BPM.
DEFAULT_BPM = 120.0
BEATS_PER_BAR = 4
#: The analysis runs at this rate: the beat tracker's and chroma's usual rate, half the work
#: of 44.1 kHz, and every band they look at lies below its 11 kHz Nyquist.
ANALYSIS_RATE = 22050
#: Onset envelope frames of 128 samples (5.8 ms) from 512-sample windows (23 ms): a longer
#: window smears a click's onset later (2048 samples put beats 15 ms late, 512 about 5 ms).
ONSET_HOP = 128
ONSET_FFT = 512
#: The low band whose onsets mark downbeats: kick drums and bass notes.
LOW_BAND_HZ = 150.0
#: Tempi outside this range are a tracker's mistake (or half or double the real one).
BPM_RANGE = (40.0, 240.0)
MIN_BEATS = 4
#: Envelope frames per chunk of the tempo estimate (24 s): bounds its memory.
TEMPO_CHUNK_FRAMES = 4096
#: At most this many chunks (3 minutes) make the tempo estimate: a song's cost stays bounded.
MAX_TEMPO_CHUNKS = 8
#: A steady beat repeats: the onset envelope's normalised autocorrelation at the beat period
#: (white and brown noise: 0.04; a click track: 0.94; the bundled demo song: 0.51).
MIN_PERIODICITY = 0.25
#: ... and its beats land on onsets: mean onset strength on the beats over the mean overall
#: (white noise: 1.2, the tracker picking its peaks; the demo song 5.7, a click track 55).
MIN_BEAT_STRENGTH = 2.0
#: Below this peak the song is silent (-80 dBFS).
SILENCE_PEAK = 1e-4
#: The key's best correlation with a Krumhansl-Schmuckler profile below which it is unknown.
MIN_KEY_CORRELATION = 0.5
#: The mean chroma's spread over its mean below which no key is read (white noise: 0.02, where
#: one of the 24 profiles still correlates 0.5 by chance; brown noise 0.17; songs 0.3 to 0.9).
MIN_CHROMA_CONTRAST = 0.15

# Krumhansl and Kessler's probe-tone ratings (1982), tonic first: how well each pitch class
# fits a major or minor key. The key is the rotation whose profile the song's chroma follows.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Tonic names as key signatures spell them (fewest accidentals), from C (librosa's chroma 0).
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


@dataclass(frozen=True)
class BeatGrid:
    """A song's tempo, beats and bar lines (in song seconds) and its key.

    Attributes:
        bpm: beats per minute; ``DEFAULT_BPM`` when unavailable.
        beats: song seconds of each beat, ascending.
        downbeats: song seconds of each bar's first beat (a subset of ``beats``).
        beats_per_bar: 4 (the tracker assumes 4/4).
        key: e.g. ``"A minor"``, ``"F# major"``; ``""`` when unknown.
        available: whether a steady beat was found (otherwise ``beats`` is empty).
        reason: why not, in one sentence; ``""`` when available.
    """

    bpm: float
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    beats_per_bar: int = BEATS_PER_BAR
    key: str = ""
    available: bool = True
    reason: str = ""

    @classmethod
    def unavailable(cls, reason: str, key: str = "") -> BeatGrid:
        """No beat (``reason``, one sentence), 4/4 at ``DEFAULT_BPM`` for the count-in; the key
        when it was found all the same."""
        return cls(DEFAULT_BPM, (), (), BEATS_PER_BAR, key, False, reason)

    @property
    def beat_period_s(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.bpm

    @property
    def bar_seconds(self) -> float:
        """Seconds per bar."""
        return self.beats_per_bar * 60.0 / self.bpm

    def snap_to_bar(self, seconds: float) -> float:
        """The downbeat nearest ``seconds`` (a loop's A or B put on a bar line); ``seconds``
        unchanged when there is no grid."""
        downbeats = self.downbeats
        if not self.available or not downbeats:
            return seconds
        index = bisect.bisect_left(downbeats, seconds)
        near = downbeats[max(index - 1, 0) : index + 1]
        return min(near, key=lambda downbeat: abs(downbeat - seconds))

    def to_json(self) -> str:
        """The grid as JSON text, with ``ANALYSIS_VERSION`` (what the cache stores)."""
        return json.dumps(
            {
                "version": ANALYSIS_VERSION,
                "bpm": self.bpm,
                "beats": list(self.beats),
                "downbeats": list(self.downbeats),
                "beats_per_bar": self.beats_per_bar,
                "key": self.key,
                "available": self.available,
                "reason": self.reason,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BeatGrid:
        """The grid ``to_json`` wrote; ``ValueError`` when ``text`` is not one (malformed, or
        from another ``ANALYSIS_VERSION``)."""
        try:
            data = json.loads(text)
            if data["version"] != ANALYSIS_VERSION:
                raise ValueError(f"analysis version {data['version']}, not {ANALYSIS_VERSION}")
            grid = cls(
                bpm=float(data["bpm"]),
                beats=tuple(float(beat) for beat in data["beats"]),
                downbeats=tuple(float(beat) for beat in data["downbeats"]),
                beats_per_bar=int(data["beats_per_bar"]),
                key=str(data["key"]),
                available=bool(data["available"]),
                reason=str(data["reason"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a beat grid: {error}") from error
        if not (math.isfinite(grid.bpm) and grid.bpm > 0 and grid.beats_per_bar > 0):
            raise ValueError(f"not a beat grid: bpm {grid.bpm}, {grid.beats_per_bar} per bar")
        return grid


# -- analysis ---------------------------------------------------------------------------------


def _librosa() -> Any:  # noqa: ANN401 - the librosa module, or None without the extra
    try:
        import librosa
    except ImportError:
        return None
    return librosa


def _librosa_installed() -> bool:
    # Without importing it: the loader's process is the engine's, where importing librosa
    # (a second of bytecode under the GIL) is what the analysis process is there to avoid.
    return importlib.util.find_spec("librosa") is not None


NO_LIBROSA = "Beat tracking needs librosa: pip install 'livestems[practice]'."


def analyse(audio: np.ndarray, sample_rate: int) -> BeatGrid:
    """The beat grid and key of a song. Never raises for what a song may be (silence, noise,
    a free tempo, a few seconds): those give ``BeatGrid.unavailable`` with one sentence.

    Args:
        audio: [shape=(n_samples, n_channels), float32] (or [shape=(n_samples,)], mono).
        sample_rate: samples per second of ``audio``.

    Tempo and beats: librosa's dynamic-programming beat tracker (Ellis 2007) on an onset
    envelope of the mono mix. Its tempo is quantised to the envelope's frames, so the BPM is
    refined from the beats themselves (``_refined_bpm``). Downbeats: librosa has none, so a
    heuristic (``_downbeat_phase``). Key: chroma against Krumhansl-Schmuckler (``_key``).

    Cost: a 5-minute song takes about 5 s on one busy core and 400 MB at its peak (the
    first call in a process adds librosa's start-up, a few seconds).
    """
    librosa = _librosa()
    if librosa is None:
        return BeatGrid.unavailable(NO_LIBROSA)
    samples = np.asarray(audio, dtype=np.float32)
    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    if mono.size == 0:
        return BeatGrid.unavailable("This song is empty, so it has no beat.")
    if not np.all(np.isfinite(mono)):
        return BeatGrid.unavailable("This song has invalid (NaN or infinite) samples.")
    if float(np.abs(mono).max()) < SILENCE_PEAK:
        return BeatGrid.unavailable("This song is silent, so it has no beat.")
    y = librosa.resample(mono, orig_sr=sample_rate, target_sr=ANALYSIS_RATE)
    if y.size < ANALYSIS_RATE:
        return BeatGrid.unavailable("This song is too short to find its beat.")
    key = _key(librosa, y)

    mel = librosa.feature.melspectrogram(
        y=y, sr=ANALYSIS_RATE, n_fft=ONSET_FFT, hop_length=ONSET_HOP, n_mels=64
    )
    log_mel = librosa.power_to_db(mel, ref=np.max)
    envelope = librosa.onset.onset_strength(S=log_mel, sr=ANALYSIS_RATE)
    _, frames = librosa.beat.beat_track(
        onset_envelope=envelope,
        sr=ANALYSIS_RATE,
        hop_length=ONSET_HOP,
        bpm=_tempo(librosa, envelope),
    )
    frames = _trim_ends(np.asarray(frames, dtype=np.int64))
    if frames.size < MIN_BEATS:
        return BeatGrid.unavailable("No steady beat was found in this song.", key)
    period_frames = float(np.median(np.diff(frames)))
    if not _is_steady(envelope, frames, period_frames):
        return BeatGrid.unavailable("No steady beat was found in this song.", key)
    beats = librosa.frames_to_time(frames, sr=ANALYSIS_RATE, hop_length=ONSET_HOP)
    bpm = _refined_bpm(beats)
    low, high = BPM_RANGE
    if not low <= bpm <= high:
        return BeatGrid.unavailable(
            f"The beat found ({bpm:.0f} BPM) is outside {low:.0f}-{high:.0f} BPM, so it is not "
            "used.",
            key,
        )
    phase = _downbeat_phase(librosa, y, beats)
    return BeatGrid(
        bpm=bpm,
        beats=tuple(float(beat) for beat in beats),
        downbeats=tuple(float(beat) for beat in beats[phase::BEATS_PER_BAR]),
        beats_per_bar=BEATS_PER_BAR,
        key=key,
    )


def _tempo(librosa: Any, envelope: np.ndarray) -> float:  # noqa: ANN401
    """The tempo ``beat_track`` would estimate (the mean autocorrelation tempogram, 8 s lags,
    weighted by its log-normal prior around 120 BPM), a chunk of 24 s at a time, at most
    ``MAX_TEMPO_CHUNKS`` chunks spread over the song.

    Left to itself, ``beat_track`` builds the whole tempogram at once: 1378 lags by every
    5.8 ms frame, 3.5 GB and 24 s for a 5-minute song. Each chunk here carries half a window
    of the envelope on either side and keeps only its own columns (so a short song's sum is
    the whole tempogram's, in about 100 MB); a long song's tempo is the mean over 3 minutes
    of it, which is all the tracker needs: it is the period the beats are drawn towards, and
    the BPM reported is measured on the beats found (``_refined_bpm``).
    """
    n_frames = envelope.size
    n_lags = int(librosa.time_to_frames(8.0, sr=ANALYSIS_RATE, hop_length=ONSET_HOP))
    half = n_lags // 2
    starts = np.arange(0, n_frames, TEMPO_CHUNK_FRAMES)
    if starts.size > MAX_TEMPO_CHUNKS:
        starts = starts[np.linspace(0, starts.size - 1, MAX_TEMPO_CHUNKS).round().astype(int)]
    total, n_columns = np.zeros(n_lags), 0
    for start in starts.tolist():  # Python ints, which min() and max() type-check with
        stop = min(start + TEMPO_CHUNK_FRAMES, n_frames)
        low, high = max(start - half, 0), min(stop + half, n_frames)
        tempogram = librosa.feature.tempogram(
            onset_envelope=envelope[low:high],
            sr=ANALYSIS_RATE,
            hop_length=ONSET_HOP,
            win_length=n_lags,
        )
        total += tempogram[:, start - low : stop - low].sum(axis=1)
        n_columns += stop - start
    # [shape=(n_lags, 1)]: the tempogram already averaged over time
    mean = (total / n_columns)[:, None]
    tempo = librosa.feature.tempo(tg=mean, sr=ANALYSIS_RATE, hop_length=ONSET_HOP, aggregate=None)
    return float(np.asarray(tempo).reshape(-1)[0])


def _trim_ends(frames: np.ndarray) -> np.ndarray:
    """Drop first and last beats more than 15 % off the median spacing: the tracker places
    the song's last beat where its score runs out (a 90 BPM click's last beat came 125 ms
    early), while its inner beats are held to the tempo."""
    while frames.size > MIN_BEATS:
        spacing = np.diff(frames)
        median = float(np.median(spacing))
        if abs(spacing[0] - median) > 0.15 * median:
            frames = frames[1:]
        elif abs(spacing[-1] - median) > 0.15 * median:
            frames = frames[:-1]
        else:
            break
    return frames


def _is_steady(envelope: np.ndarray, frames: np.ndarray, period_frames: float) -> bool:
    """Whether the beats found are a steady beat and not the tracker's best guess in noise
    (it always returns beats): the envelope repeats at the beat period, and the beats fall on
    its peaks (``MIN_PERIODICITY``, ``MIN_BEAT_STRENGTH``)."""
    centred = envelope - envelope.mean()
    energy = float(np.dot(centred, centred))
    if energy <= 0.0 or envelope.mean() <= 0.0:
        return False
    lag = int(round(period_frames))
    if lag < 1 or lag + 2 >= centred.size:
        return False
    # The best of lags period +-2 frames: a live tempo wanders by a frame or two.
    periodicity = max(
        float(np.dot(centred[:-shift], centred[shift:])) / energy
        for shift in range(max(lag - 2, 1), lag + 3)
    )
    strength = float(envelope[frames].mean() / envelope.mean())
    return periodicity >= MIN_PERIODICITY and strength >= MIN_BEAT_STRENGTH


def _refined_bpm(beats: np.ndarray) -> float:
    """60 / the beat period, finer than librosa's tempo (a 120 BPM click reads 120.2 there).

    The median spacing of the beats gives the period, robust to a beat missed or doubled;
    each beat then gets its number on that period (a missed beat skips one), and a least-squares
    line through (number, time) averages the envelope's 5.8 ms frames away: beats at 120 BPM
    are 86.13 frames apart, so any one spacing reads 86 or 87 frames (120.2 or 118.8 BPM).
    """
    spacing = np.diff(beats)
    period = float(np.median(spacing))
    # Numbered spacing by spacing, not as (time - first) / period: the median is itself a
    # whole number of frames (0.6 s reads 0.598), and over a long song that error adds up
    # to a beat, which would skew the line (a 100 BPM song read 100.4).
    numbers = np.concatenate([[0.0], np.cumsum(np.maximum(np.round(spacing / period), 1.0))])
    slope, _ = np.polyfit(numbers, beats, 1)
    return 60.0 / float(slope)


def _downbeat_phase(librosa: Any, y: np.ndarray, beats: np.ndarray) -> int:  # noqa: ANN401
    """Which of the ``BEATS_PER_BAR`` phases of the beats starts the bars. A heuristic, not a
    downbeat tracker (librosa has none):

    the phase whose beats carry the most low-frequency onset energy (spectral flux below
    ``LOW_BAND_HZ``), because kick drums and bass notes (chord changes) fall on bar lines.
    When the low band carries little of the song's onsets (under 5 %: no kick, no bass) or
    tells the phases apart by under 10 % (a kick on every beat), the phase with the most
    onset energy over all bands (an accented first beat, as a click track's). It cannot tell
    beat 1 from beat 3 when both carry the same kick and no bass note changes on either.
    """
    n_fft = 2048  # 10.8 Hz bins at 22.05 kHz: the low band needs a long window
    hop = ONSET_HOP * 4
    magnitude = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    low_rows = librosa.fft_frequencies(sr=ANALYSIS_RATE, n_fft=n_fft) <= LOW_BAND_HZ
    frames = librosa.time_to_frames(beats, sr=ANALYSIS_RATE, hop_length=hop)
    # Linear, not log, magnitudes: a band that is nearly silent (a click's leakage) must not
    # weigh as much as a kick. [shape=(n_bins, n_frames)] -> rises, summed over bins.
    rises = np.maximum(np.diff(magnitude, axis=1, prepend=magnitude[:, :1]), 0.0)
    scores, totals = [], []
    for onset in (rises[low_rows].sum(axis=0), rises.sum(axis=0)):
        totals.append(float(onset.sum()))
        # the strongest onset within a frame of each beat (a beat may fall between frames)
        near = [onset[np.clip(frames + shift, 0, onset.size - 1)] for shift in (-1, 0, 1)]
        per_beat = np.max(near, axis=0)
        phases = [per_beat[phase::BEATS_PER_BAR].mean() for phase in range(BEATS_PER_BAR)]
        scores.append(np.array(phases))
    low, full = scores
    share = totals[0] / max(totals[1], 1e-12)
    spread = float(low.max() - low.min()) / max(float(low.mean()), 1e-12)
    return int(np.argmax(low if share >= 0.05 and spread >= 0.1 else full))


def _key(librosa: Any, y: np.ndarray) -> str:  # noqa: ANN401
    """The key whose Krumhansl-Schmuckler profile best correlates with the song's mean
    chroma (24 candidates: 12 tonics, major and minor); ``""`` when the chroma is nearly
    flat (``MIN_CHROMA_CONTRAST``: noise) or fits no profile (``MIN_KEY_CORRELATION``).
    Profile matching may read a song's relative key (G minor for B-flat major: the same
    notes; the bundled demo song reads so)."""
    # CQT chroma: its bins are a semitone wide down to the bass, where an STFT's are not.
    chroma = librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_RATE, hop_length=2048)
    profile = chroma.mean(axis=1)
    if not np.all(np.isfinite(profile)) or profile.mean() <= 0.0:
        return ""
    if float(profile.std() / profile.mean()) < MIN_CHROMA_CONTRAST:
        return ""  # all pitch classes alike: noise; any profile would fit it by chance
    best, name = -1.0, ""
    for profiles, names, mode in (
        (_MAJOR_PROFILE, _MAJOR_NAMES, "major"),
        (_MINOR_PROFILE, _MINOR_NAMES, "minor"),
    ):
        for tonic in range(12):
            correlation = float(np.corrcoef(profile, np.roll(profiles, tonic))[0, 1])
            if correlation > best:
                best, name = correlation, f"{names[tonic]} {mode}"
    return name if best >= MIN_KEY_CORRELATION else ""


# -- the cache --------------------------------------------------------------------------------


def default_cache_folder() -> Path:
    """``beat-grids/`` in livestems' cache: ``$LIVESTEMS_CACHE``, else
    ``$XDG_CACHE_HOME/livestems``, else ``~/.cache/livestems`` (the rule the training data's
    cache follows; that code is in ``models/``, which ``realtime/`` never imports)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("LIVESTEMS_CACHE", str(Path(base) / "livestems"))) / "beat-grids"


class BeatGridCache:
    """Beat grids stored as JSON, one file per song file.

    An entry's key is the file's resolved path, size and modification time (hashing the bytes
    of an hour of audio would cost more than it saves) and ``ANALYSIS_VERSION``. The grid is
    a property of the song, so the rate of the audio handed in is not part of the key.

    Args:
        folder: where entries live; ``default_cache_folder()`` by default.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else default_cache_folder()
        #: How many times this cache ran ``analyse`` (a hit does not); a count for tests and
        #: reports, not exact when threads share the cache.
        self.analyses = 0

    def entry(self, path: Path) -> Path | None:
        """The cache file for ``path``; ``None`` when ``path`` cannot be read."""
        try:
            stat = Path(path).stat()
            resolved = Path(path).resolve()
        except OSError:
            return None
        text = f"{ANALYSIS_VERSION}|{resolved}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"

    def grid(
        self,
        path: Path,
        audio: np.ndarray,
        sample_rate: int,
        analyser: Callable[[np.ndarray, int], BeatGrid] | None = None,
    ) -> BeatGrid:
        """The cached grid of ``path``, or ``analyser(audio, sample_rate)`` (``analyse`` by
        default) stored for next time. A corrupt entry is analysed again and replaced; a
        cache that cannot be written only costs the next load an analysis. Without librosa
        nothing is stored; an analyser that raises stores nothing either."""
        entry = self.entry(path)
        if entry is not None:
            try:
                return BeatGrid.from_json(entry.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                pass  # missing, or corrupt (a disk error, an old format): analyse again
        if not _librosa_installed():
            return BeatGrid.unavailable(NO_LIBROSA)
        self.analyses += 1
        grid = (analyser or analyse)(audio, sample_rate)
        if entry is not None:
            try:
                with atomic_write(entry) as handle:
                    handle.write(grid.to_json().encode("utf-8"))
            except OSError:
                pass  # read-only or full: the grid is still right, just not kept
        return grid


def grid_for_file(
    path: Path, audio: np.ndarray, sample_rate: int, cache: BeatGridCache | None = None
) -> BeatGrid:
    """The beat grid of the song in ``path``, whose samples are ``audio`` [shape=(n_samples,
    n_channels), float32] at ``sample_rate``: from ``cache`` (the default cache folder when
    ``None``) when it was analysed before, else analysed now and stored."""
    return (cache if cache is not None else BeatGridCache()).grid(path, audio, sample_rate)


# -- the analysis process -------------------------------------------------------------------

#: The module a grid is analysed in, as a process of its own (``beat_grid_child``).
CHILD_MODULE = "livestems.realtime.practice.beat_grid_child"


def start_analysis(audio: np.ndarray, sample_rate: int) -> subprocess.Popen[bytes]:
    """Start the child and hand it ``audio`` [shape=(n_samples, n_channels) or (n_samples,),
    float32]. Blocks while the samples go down the pipe (the child reads them at once)."""
    samples = np.ascontiguousarray(audio, dtype=np.float32)
    frames = samples.shape[0]
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    process = subprocess.Popen(
        [sys.executable, "-m", CHILD_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    header = {"frames": frames, "channels": channels, "sample_rate": sample_rate}
    try:
        process.stdin.write(json.dumps(header).encode() + b"\n")
        # The array's own buffer: no copy of a long song in this process.
        process.stdin.write(samples.data.cast("B"))
        process.stdin.flush()  # ``answer``'s ``communicate`` closes it
    except OSError:
        pass  # the child ended early (killed, or it failed to start): ``answer`` says why
    return process


def answer(process: subprocess.Popen[bytes]) -> dict[str, str]:
    """Wait for the child's answer: ``{"grid": ...}``, or ``{"error": sentence}`` when it
    failed or was killed."""
    out, err = process.communicate()
    line = out.decode("utf-8", "replace").strip().splitlines()
    if line:
        try:
            reply = json.loads(line[-1])
        except ValueError:
            reply = None
        if isinstance(reply, dict) and ("grid" in reply or "error" in reply):
            return {key: str(value) for key, value in reply.items()}
    last = err.decode("utf-8", "replace").strip().splitlines()
    why = f": {last[-1].strip()}" if last else ""
    return {"error": f"the analysis process ended with code {process.returncode}{why}"}


# -- the loader -------------------------------------------------------------------------------


class BeatGridLoader:
    """Finds a song's grid on a background thread while it starts playing: from the cache,
    else analysed in a process of its own (``beat_grid_child``), so that the analysis never
    holds the GIL of the process the engine plays in.

    Args:
        on_done: called with each song's grid, on the background thread, when it is ready
            (not for a song that ``start`` has since replaced).
        cache: where grids are kept; the default cache folder when ``None``.
    """

    def __init__(
        self,
        on_done: Callable[[BeatGrid], None] | None = None,
        cache: BeatGridCache | None = None,
    ) -> None:
        self.on_done = on_done
        self.cache = cache
        # Guards the (generation, result) pair: a song's analysis that ends after the next
        # song started must not publish its grid as the new song's.
        self._lock = threading.Lock()
        self._generation = 0
        self._result: BeatGrid | None = None
        self._done = threading.Event()
        # The analysis process of the current song, killed when a new song replaces it.
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, path: Path | None, audio: np.ndarray, sample_rate: int) -> None:
        """Start analysing a song (``path`` ``None``: no file, nothing cached). ``audio``
        [shape=(n_samples, n_channels), float32] is read on the background thread: the
        caller does not change it afterwards. The previous song's result is dropped, and its
        analysis stopped."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._result = None
            self._done = threading.Event()
            done = self._done
            process, self._process = self._process, None
        if process is not None:
            process.kill()
        # A daemon: quitting while a long song is analysed must not wait for it.
        thread = threading.Thread(
            target=self._run,
            args=(generation, done, path, audio, sample_rate),
            name="beat-grid",
            daemon=True,
        )
        thread.start()

    def result(self) -> BeatGrid | None:
        """The current song's grid, ``None`` while it is computed (or before ``start``)."""
        return self._result

    def wait(self, timeout: float | None = None) -> BeatGrid | None:
        """The current song's grid once ready; ``None`` after ``timeout`` seconds."""
        self._done.wait(timeout)
        return self._result

    def _run(
        self,
        generation: int,
        done: threading.Event,
        path: Path | None,
        audio: np.ndarray,
        sample_rate: int,
    ) -> None:
        def in_a_process(samples: np.ndarray, rate: int) -> BeatGrid:
            process = start_analysis(samples, rate)
            with self._lock:
                if generation == self._generation:
                    self._process = process
                else:
                    process.kill()  # replaced while it started: its answer is not wanted
            reply = answer(process)
            with self._lock:
                if self._process is process:
                    self._process = None
            if "error" in reply:
                raise RuntimeError(reply["error"])
            return BeatGrid.from_json(reply["grid"])

        try:
            if path is None:
                grid = in_a_process(audio, sample_rate)
            else:
                cache = self.cache if self.cache is not None else BeatGridCache()
                grid = cache.grid(path, audio, sample_rate, in_a_process)
        except Exception as error:  # noqa: BLE001 - any failure is "no grid", never a crash
            grid = BeatGrid.unavailable(f"Beat tracking failed: {_one_sentence(error)}")
        with self._lock:
            current = generation == self._generation
            if current:
                self._result = grid
        done.set()
        if current and self.on_done is not None:
            self.on_done(grid)


def _one_sentence(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if text.endswith(".") else f"{text}."
