"""The stem mixer: per-stem gain, mute and solo, and a master gain, ramped so nothing clicks.

Thread contract:

- **Audio callback thread** owns the mix: ``mix_into`` is the only method it calls. It reads
  the control state once per block (at the block's first sample), owns all ramp state and
  every scratch buffer (allocated in ``__init__``), and never blocks, locks, logs or
  allocates array memory. A control change therefore takes effect at the next block
  boundary and then ramps over ``ramp_samples``.
- **Control threads** (GUI, MIDI, scripts; any number, any thread) call the setters
  (``set_gain``, ``set_gain_db``, ``set_mute``, ``set_solo``, ``set_pan``, ``set_master_gain``,
  ``set_master_gain_db``) and the read-back of the *target* state (``gain``, ``gain_db``,
  ``is_muted``, ``is_soloed``, ``master_gain``, ``effective_targets``). A setter validates its
  argument and stores one Python float or bool into a preallocated list slot: one atomic
  store under CPython's GIL, no lock, no array memory. Concurrent writers to the same control
  race harmlessly (the last store wins); the callback may see a group of changes (solo A,
  then mute B) split over two blocks, which the ramps smooth over.
- ``current_gains`` may be read from any thread (telemetry); it copies the callback's state
  without a lock, so it is a snapshot that may be one block old.
- ``reset`` only while the callback is not running.

Semantics. The *effective target* of stem ``s`` is ``fader[s] * master`` when the stem
sounds and ``0`` when it does not. A stem sounds unless it is muted, or some stem (muted or
not) is soloed and it is not: any solo wins, and mute beats solo on the same stem. When a
block sees an effective target that differs from the one its stem is ramping to, the stem
starts a linear ramp from its *current* gain (the gain of the last sample it played, so a
ramp can be retargeted mid-way) with a per-sample step ``(target - start) / ramp_samples``:
sample ``k = 1, 2, ...`` of the ramp (``k = 1`` being the block's first sample) plays
``start + k * step`` and, from ``k = ramp_samples`` on, exactly ``target``. Steady-state gains
are therefore bitwise the targets (as float32), and the gain trajectory depends only on when
the changes were seen, not on how the samples are cut into blocks.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..dsp.stft import SAMPLE_DTYPE


def db_to_gain(db: float) -> float:
    """Linear gain of a level in decibels (``-inf`` dB is a gain of 0)."""
    if db == -math.inf:
        return 0.0
    return float(10.0 ** (float(db) / 20.0))


def gain_to_db(gain: float) -> float:
    """Level in decibels of a linear gain (a gain of 0 is ``-inf`` dB)."""
    if gain <= 0.0:
        return -math.inf
    return 20.0 * math.log10(gain)


class StemMixer:
    """Sums ``n_stems`` stems into one output with ramped per-stem and master gains.

    Args:
        n_stems: stems mixed per call.
        n_channels: channels per stem and of the output.
        sample_rate: samples per second (sets ``ramp_samples``).
        max_block: most samples one ``mix_into`` call may mix (scratch buffers are this long).
        ramp_seconds: how long a gain change takes; rounded to whole samples, at least one
            (a one-sample ramp is a jump).
    """

    def __init__(
        self,
        n_stems: int,
        n_channels: int,
        sample_rate: int,
        max_block: int,
        ramp_seconds: float = 0.010,
    ) -> None:
        if n_stems < 1 or n_channels < 1 or sample_rate < 1 or max_block < 1:
            raise ValueError(
                "n_stems, n_channels, sample_rate and max_block must all be at least 1, got "
                f"{n_stems}, {n_channels}, {sample_rate}, {max_block}"
            )
        if not (math.isfinite(ramp_seconds) and ramp_seconds >= 0.0):
            raise ValueError(f"ramp_seconds must be finite and not negative, got {ramp_seconds}")
        self._n_stems = int(n_stems)
        self._n_channels = int(n_channels)
        self._sample_rate = int(sample_rate)
        self._max_block = int(max_block)
        self._ramp_samples = max(1, round(ramp_seconds * sample_rate))

        # Control state (targets): written by any thread, one slot store at a time.
        self._fader = [1.0] * self._n_stems
        self._mute = [False] * self._n_stems
        self._solo = [False] * self._n_stems
        self._pan = [0.0] * self._n_stems
        self._master = 1.0

        # Ramp state, owned by the callback, per *unit*: one channel of one stem (unit
        # s * n_channels + c), since a pan gives a stem's channels different gains. A unit is
        # steady when its ramp position has reached ramp_samples; it then plays exactly
        # _ramp_target.
        self._n_units = self._n_stems * self._n_channels
        targets = self._unit_targets()
        self._ramp_target = list(targets)
        self._current = list(targets)
        self._ramp_start = list(targets)
        self._ramp_step = [0.0] * self._n_units
        self._ramp_pos = [self._ramp_samples] * self._n_units
        # The targets one block reads, refilled in place.
        self._block_targets = list(targets)

        # 0-d arrays carry the per-unit scalars into ufuncs: a Python float there would be
        # converted to a fresh 0-d array on every call, and a 1-element array would make numpy
        # build a broadcasting iterator; a 0-d array of the operand's dtype does neither.
        self._gain32 = [np.array(t, dtype=SAMPLE_DTYPE) for t in targets]
        self._start64 = [np.array(t, dtype=np.float64) for t in targets]
        self._step64 = [np.zeros((), dtype=np.float64) for _ in targets]

        # Ramp positions k = 0 .. ramp_samples as float64, so that k * step is the same
        # product whichever block a sample falls in. [shape=(ramp_samples + 1,)]
        self._k = np.arange(self._ramp_samples + 1, dtype=np.float64)
        # Scratch for one unit's per-sample ramp, in float64 and as played. [shape=(max_block,)]
        self._ramp64 = np.zeros(self._max_block, dtype=np.float64)
        self._ramp32 = np.zeros(self._max_block, dtype=SAMPLE_DTYPE)
        # One stem times its gain, before it is added. [shape=(max_block, n_channels)]
        self._scaled = np.zeros((self._max_block, self._n_channels), dtype=SAMPLE_DTYPE)

    # -- geometry -------------------------------------------------------------------------

    @property
    def n_stems(self) -> int:
        return self._n_stems

    @property
    def n_channels(self) -> int:
        return self._n_channels

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def max_block(self) -> int:
        return self._max_block

    @property
    def ramp_samples(self) -> int:
        """Samples a gain change takes to reach its target."""
        return self._ramp_samples

    # -- controls, any thread -------------------------------------------------------------

    def set_gain(self, stem: int, gain: float) -> None:
        """Set a stem's fader to a linear gain (finite, not negative)."""
        self._fader[self._check_stem(stem)] = _check_gain(gain)

    def set_gain_db(self, stem: int, db: float) -> None:
        """Set a stem's fader in decibels (``-inf`` is silence)."""
        self.set_gain(stem, db_to_gain(db))

    def set_mute(self, stem: int, muted: bool) -> None:
        self._mute[self._check_stem(stem)] = bool(muted)

    def set_solo(self, stem: int, soloed: bool) -> None:
        self._solo[self._check_stem(stem)] = bool(soloed)

    def set_pan(self, stem: int, pan: float) -> None:
        """Set a stem's pan, -1 (left) to +1 (right), 0 in the middle. A balance law: the
        side it moves towards keeps its level, the other falls with a cosine taper to nothing
        at the end, so a centred stem plays as recorded and no pan ever boosts (a stereo stem
        keeps its image until it is pushed to one side). Mono output: no effect."""
        pan = float(pan)
        if not (math.isfinite(pan) and -1.0 <= pan <= 1.0):
            raise ValueError(f"pan must be between -1 and 1, got {pan}")
        self._pan[self._check_stem(stem)] = pan

    def pan(self, stem: int) -> float:
        return self._pan[self._check_stem(stem)]

    def set_master_gain(self, gain: float) -> None:
        """Set the master gain, linear (finite, not negative)."""
        self._master = _check_gain(gain)

    def set_master_gain_db(self, db: float) -> None:
        self.set_master_gain(db_to_gain(db))

    def gain(self, stem: int) -> float:
        """A stem's fader, linear (the target, not the ramping value)."""
        return self._fader[self._check_stem(stem)]

    def gain_db(self, stem: int) -> float:
        return gain_to_db(self.gain(stem))

    def is_muted(self, stem: int) -> bool:
        return self._mute[self._check_stem(stem)]

    def is_soloed(self, stem: int) -> bool:
        return self._solo[self._check_stem(stem)]

    def master_gain(self) -> float:
        return self._master

    def master_gain_db(self) -> float:
        return gain_to_db(self._master)

    def effective_targets(self) -> np.ndarray:
        """The gain each stem is heading for under the current controls (before its pan).

        Returns: float64 gains. [shape=(n_stems,)]
        """
        return np.array(self._targets(), dtype=np.float64)

    def current_gains(self) -> np.ndarray:
        """The gain each stem played on the last sample mixed (a snapshot, see the contract):
        the loudest of its channels', so a panned stem reads its fader.

        Returns: float64 gains. [shape=(n_stems,)]
        """
        units = np.array(self._current, dtype=np.float64)
        return units.reshape(self._n_stems, self._n_channels).max(axis=1)

    # -- callback -------------------------------------------------------------------------

    def mix_into(self, stems: np.ndarray, out: np.ndarray) -> None:
        """Overwrite ``out`` with the sum of the stems times their current gains.

        Args:
            stems: one block per stem. [shape=(n_stems, n_samples, n_channels), float32]
            out: preallocated destination, n_samples <= max_block.
                [shape=(n_samples, n_channels), float32]
        """
        self._check_block(stems, out)
        n_samples = out.shape[0]
        if n_samples == 0:
            return
        targets = self._block_targets
        self._unit_targets_into(targets)
        ramp_samples = self._ramp_samples
        n_channels = self._n_channels
        first = True  # the first stem that sounds writes out; the others add to it
        for s in range(self._n_stems):
            silent = True
            for c in range(n_channels):
                u = s * n_channels + c
                if targets[u] != self._ramp_target[u]:
                    self._start_ramp(u, targets[u])
                if self._ramp_pos[u] < ramp_samples or targets[u] != 0.0:
                    silent = False
            if silent:
                # Silent and steady: skipped, so a muted stem cannot leak NaN or inf.
                continue
            dest = out if first else self._scaled[:n_samples]
            for c in range(n_channels):
                u = s * n_channels + c
                pos = self._ramp_pos[u]
                # Channel by channel: the engine's stems are strided views of its interleaved
                # ring block, and a two-dimensional strided multiply (or broadcasting gains[:,
                # None]) makes numpy allocate an iterator buffer (3.3 kB a block, measured).
                if pos >= ramp_samples:
                    if targets[u] == 0.0:
                        dest[:, c].fill(0.0)  # a channel panned away: no NaN leaks either
                    else:
                        np.multiply(stems[s, :, c], self._gain32[u], out=dest[:, c])
                else:
                    gains = self._ramp_gains(u, pos, n_samples)
                    np.multiply(stems[s, :, c], gains, out=dest[:, c])
            if first:
                first = False
            else:
                np.add(out, dest, out=out)
        if first:
            out.fill(0.0)

    # -- neither thread running -----------------------------------------------------------

    def reset(self) -> None:
        """Jump every stem to its effective target, no ramp. Only while the callback is not
        running."""
        for u, target in enumerate(self._unit_targets()):
            self._ramp_target[u] = target
            self._current[u] = target
            self._ramp_start[u] = target
            self._ramp_step[u] = 0.0
            self._ramp_pos[u] = self._ramp_samples
            self._gain32[u].fill(target)

    # -- helpers --------------------------------------------------------------------------

    def _targets(self) -> list[float]:
        targets = [0.0] * self._n_stems
        self._targets_into(targets)
        return targets

    def _targets_into(self, targets: list[float]) -> None:
        # Each control slot is read once, so that a stem's target comes from one consistent
        # value of each of its controls even while another thread writes them.
        master = self._master
        any_solo = any(self._solo)
        for s in range(self._n_stems):
            sounds = not self._mute[s] and (self._solo[s] or not any_solo)
            targets[s] = self._fader[s] * master if sounds else 0.0

    def _unit_targets(self) -> list[float]:
        targets = [0.0] * self._n_units
        self._unit_targets_into(targets)
        return targets

    def _unit_targets_into(self, targets: list[float]) -> None:
        """Per unit: the stem's effective target times its channel's pan gain."""
        master = self._master
        any_solo = any(self._solo)
        n_channels = self._n_channels
        for s in range(self._n_stems):
            sounds = not self._mute[s] and (self._solo[s] or not any_solo)
            base = self._fader[s] * master if sounds else 0.0
            pan = self._pan[s]
            for c in range(n_channels):
                gain = base
                if n_channels == 2 and pan != 0.0 and base != 0.0:
                    # the channel on the far side of the pan tapers: left falls as pan > 0
                    away = pan if c == 0 else -pan
                    if away >= 1.0:
                        gain = 0.0
                    elif away > 0.0:
                        gain = base * math.cos(0.5 * math.pi * away)
                targets[s * n_channels + c] = gain

    # (the ramp helpers take a unit: one channel of one stem)
    def _start_ramp(self, s: int, target: float) -> None:
        # Restart from the gain last played, so that a retargeted ramp never jumps.
        start = self._current[s]
        step = (target - start) / self._ramp_samples
        self._ramp_target[s] = target
        self._ramp_start[s] = start
        self._ramp_step[s] = step
        self._ramp_pos[s] = 0
        self._start64[s].fill(start)
        self._step64[s].fill(step)
        self._gain32[s].fill(target)

    def _ramp_gains(self, s: int, pos: int, n_samples: int) -> np.ndarray:
        """Per-sample gains of stem ``s`` for the block, advancing its ramp.

        Returns: a view of the ramp scratch buffer. [shape=(n_samples,), float32]
        """
        ramp_samples = self._ramp_samples
        # Samples strictly inside the ramp (k < ramp_samples); the rest play the target.
        n_inside = min(n_samples, ramp_samples - 1 - pos)
        gains = self._ramp32[:n_samples]
        if n_inside > 0:
            ramp = self._ramp64[:n_inside]
            np.multiply(self._k[pos + 1 : pos + 1 + n_inside], self._step64[s], out=ramp)
            np.add(ramp, self._start64[s], out=ramp)
            np.copyto(gains[:n_inside], ramp)
        if n_inside < n_samples:
            gains[n_inside:].fill(self._ramp_target[s])
        new_pos = min(pos + n_samples, ramp_samples)
        self._ramp_pos[s] = new_pos
        if new_pos >= ramp_samples:
            self._current[s] = self._ramp_target[s]
        else:
            # The same float64 operations as the ramp above, so it equals the last sample.
            self._current[s] = self._ramp_start[s] + new_pos * self._ramp_step[s]
        return gains

    def _check_stem(self, stem: int) -> int:
        if isinstance(stem, bool):
            raise ValueError(f"stem index must be an integer, got {stem!r}")
        try:
            index = operator.index(stem)
        except TypeError:
            raise ValueError(f"stem index must be an integer, got {stem!r}") from None
        if not 0 <= index < self._n_stems:
            raise ValueError(f"stem index must be in [0, {self._n_stems}), got {index}")
        return index

    def _check_block(self, stems: np.ndarray, out: np.ndarray) -> None:
        # Cheap checks only (attribute reads and comparisons): this runs on the audio path.
        if not isinstance(stems, np.ndarray) or not isinstance(out, np.ndarray):
            raise ValueError("stems and out must be numpy arrays")
        if out.ndim != 2 or out.shape[1] != self._n_channels or out.shape[0] > self._max_block:
            raise ValueError(
                f"out must have shape (n_samples <= {self._max_block}, {self._n_channels}), "
                f"got {out.shape}"
            )
        if stems.ndim != 3 or stems.shape != (self._n_stems, out.shape[0], self._n_channels):
            raise ValueError(
                f"stems must have shape ({self._n_stems}, {out.shape[0]}, {self._n_channels}), "
                f"got {stems.shape}"
            )
        if stems.dtype != SAMPLE_DTYPE or out.dtype != SAMPLE_DTYPE:
            raise ValueError(f"stems and out must be float32, got {stems.dtype} and {out.dtype}")


def _check_gain(gain: float) -> float:
    gain = float(gain)
    if not (math.isfinite(gain) and gain >= 0.0):
        raise ValueError(f"gain must be finite and not negative, got {gain}")
    return gain
