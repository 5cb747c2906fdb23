"""FluidSynth through ctypes: a score's events in, one dry stereo signal per stem out.

FluidSynth routes MIDI channel ``c`` to audio group ``c % n_groups``; with four groups and
``fluid_synth_process`` writing each group to its own pair of buffers, one pass of one synth
renders the four stems apart (vocals on channels 0, 4, 8; drums on 9; bass on 2, 6; other on
3, 7, 11). Reverb and chorus are off and no effects buffers are passed, so the output is dry and
a function of the events only: the same events give the same samples, bit for bit.

Loading FluidR3_GM (148 MB) takes a quarter of a second, so each process loads it once per
(sound font, sample rate) and lends it to a new synth for every song (a reset synth would
remember the songs before; see ``FluidSynth``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...realtime.errors import UserError

DEFAULT_SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUND_FONT_ENV = "LIVESTEMS_SOUND_FONT"
N_GROUPS = 4  # one audio group per stem: vocals, drums, bass, other (STEMS order)
DRUM_CHANNEL = 9
FLUID_BLOCK = 64  # FluidSynth's internal block (FLUID_BUFSIZE)
INSTALL_HINT = (
    "install the Debian packages fluidsynth and fluid-soundfont-gm (./setup.sh --dev does)"
)

# Event kinds, in the order they apply when they fall on the same sample: a program or a
# controller before a note, and a note-off before a note-on (a repeated key re-strikes).
PROGRAM, CONTROL, BEND, NOTE_OFF, NOTE_ON = range(5)


class SynthesizerUnavailableError(UserError, RuntimeError):
    """FluidSynth or its sound font is missing; the message is one sentence."""


@dataclass(frozen=True, order=True)
class MidiEvent:
    """One MIDI message at a sample.

    Attributes:
        sample: when, in samples from the song's start.
        kind: PROGRAM, CONTROL, BEND, NOTE_OFF or NOTE_ON.
        channel: MIDI channel 0-15 (9 is the drum kit).
        data1: program, controller number, key, or bend value (0-16383, 8192 is centre).
        data2: controller value or velocity (0 otherwise).
    """

    sample: int
    kind: int
    channel: int
    data1: int
    data2: int = 0


def sound_font_path(sound_font: str | os.PathLike[str] | None = None) -> Path:
    """The General MIDI sound font to use: the argument, $LIVESTEMS_SOUND_FONT, or Debian's."""
    path = Path(sound_font or os.environ.get(SOUND_FONT_ENV) or DEFAULT_SOUND_FONT)
    if not path.is_file():
        raise SynthesizerUnavailableError(
            f"The General MIDI sound font {path} is missing: {INSTALL_HINT}, "
            f"or point ${SOUND_FONT_ENV} at a .sf2 file."
        )
    return path


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("fluidsynth")
    try:
        lib = ctypes.CDLL(name or "libfluidsynth.so.3")
    except OSError as err:
        raise SynthesizerUnavailableError(
            f"FluidSynth's library (libfluidsynth) is not installed: {INSTALL_HINT}."
        ) from err
    ptr, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[list[type], type | None]] = {
        "new_fluid_settings": ([], ptr),
        "fluid_settings_setint": ([ptr, c_char_p, c_int], c_int),
        "fluid_settings_setnum": ([ptr, c_char_p, ctypes.c_double], c_int),
        "new_fluid_synth": ([ptr], ptr),
        "delete_fluid_synth": ([ptr], None),
        "fluid_synth_sfload": ([ptr, c_char_p, c_int], c_int),
        "fluid_synth_get_sfont_by_id": ([ptr, c_int], ptr),
        "fluid_synth_add_sfont": ([ptr, ptr], c_int),
        "fluid_synth_remove_sfont": ([ptr, ptr], c_int),
        "fluid_synth_program_change": ([ptr, c_int, c_int], c_int),
        "fluid_synth_cc": ([ptr, c_int, c_int, c_int], c_int),
        "fluid_synth_pitch_bend": ([ptr, c_int, c_int], c_int),
        "fluid_synth_noteon": ([ptr, c_int, c_int, c_int], c_int),
        "fluid_synth_noteoff": ([ptr, c_int, c_int], c_int),
        "fluid_synth_process": ([ptr, c_int, c_int, ptr, c_int, ptr], c_int),
        "fluid_set_log_function": ([c_int, ptr, ptr], ptr),
    }
    for function, (argtypes, restype) in signatures.items():
        getattr(lib, function).argtypes = argtypes
        getattr(lib, function).restype = restype
    # Warnings (a note outside a preset's key range, say) would flood a training run's log.
    for level in (2, 3, 4):  # FLUID_WARN, FLUID_INFO, FLUID_DBG
        lib.fluid_set_log_function(level, None, None)
    return lib


class FluidSynth:
    """One sound font, loaded once, and a fresh synth per song that borrows it.

    A reset synth is not a new one: its voices keep their filters' history from the previous
    song, so the same events would sound different depending on what the synth played before.
    A new synth (a few milliseconds) sharing the loaded sound font (a quarter of a second) is
    both fast and exact.
    """

    def __init__(self, sound_font: Path, sample_rate: int) -> None:
        lib = _library()
        settings = lib.new_fluid_settings()
        for name, value in (
            ("synth.audio-channels", N_GROUPS),
            ("synth.audio-groups", N_GROUPS),
            ("synth.reverb.active", 0),
            ("synth.chorus.active", 0),
            ("synth.polyphony", 256),
            ("synth.cpu-cores", 1),  # one thread: the order of float additions never varies
        ):
            lib.fluid_settings_setint(settings, name.encode(), value)
        lib.fluid_settings_setnum(settings, b"synth.sample-rate", float(sample_rate))
        lib.fluid_settings_setnum(settings, b"synth.gain", 0.5)
        owner = lib.new_fluid_synth(settings)  # holds the sound font for the process's lifetime
        font_id = lib.fluid_synth_sfload(owner, os.fsencode(sound_font), 0) if owner else -1
        if font_id < 0:
            raise SynthesizerUnavailableError(
                f"FluidSynth cannot load the sound font {sound_font}: {INSTALL_HINT}."
            )
        self._lib = lib
        self._settings = settings  # kept alive as long as the synths that read it
        self._owner = owner
        self._font = lib.fluid_synth_get_sfont_by_id(owner, font_id)
        self.sample_rate = sample_rate

    def render(self, events: Sequence[MidiEvent], n_samples: int) -> np.ndarray:
        """The events played by a new synth.

        Returns:
            [shape=(N_GROUPS, n_samples, 2)] float32, one dry stereo signal per audio group.
        """
        lib = self._lib
        synth = lib.new_fluid_synth(self._settings)
        if not synth:
            raise MemoryError("FluidSynth could not create a synthesizer")
        try:
            lib.fluid_synth_add_sfont(synth, self._font)
            try:
                return self._play(synth, events, n_samples)
            finally:
                lib.fluid_synth_remove_sfont(synth, self._font)  # the owner frees it, not this
        finally:
            lib.delete_fluid_synth(synth)

    def _play(self, synth: int, events: Sequence[MidiEvent], n_samples: int) -> np.ndarray:
        lib = self._lib
        n_padded = -(-n_samples // FLUID_BLOCK) * FLUID_BLOCK
        planar = np.zeros((N_GROUPS * 2, n_padded), np.float32)  # process() adds into it
        row_addresses = [planar[row].ctypes.data for row in range(N_GROUPS * 2)]
        itemsize = planar.itemsize
        buffers = (ctypes.c_void_p * (N_GROUPS * 2))()
        cursor = 0

        def render_until(sample: int) -> None:
            nonlocal cursor
            sample = min(sample, n_padded)
            if sample <= cursor:
                return
            for row, address in enumerate(row_addresses):
                buffers[row] = address + cursor * itemsize
            lib.fluid_synth_process(synth, sample - cursor, 0, None, N_GROUPS * 2, buffers)
            cursor = sample

        for event in sorted(events):
            render_until(event.sample)
            if event.sample >= n_padded:
                break
            channel = event.channel
            if event.kind == NOTE_ON:
                lib.fluid_synth_noteon(synth, channel, event.data1, event.data2)
            elif event.kind == NOTE_OFF:
                lib.fluid_synth_noteoff(synth, channel, event.data1)
            elif event.kind == BEND:
                lib.fluid_synth_pitch_bend(synth, channel, event.data1)
            elif event.kind == CONTROL:
                lib.fluid_synth_cc(synth, channel, event.data1, event.data2)
            else:
                lib.fluid_synth_program_change(synth, channel, event.data1)
        render_until(n_padded)
        # planar rows are (group 0 left, group 0 right, group 1 left, ...)
        stereo = planar[:, :n_samples].reshape(N_GROUPS, 2, n_samples)
        return np.ascontiguousarray(stereo.transpose(0, 2, 1))


_synths: dict[tuple[Path, int], FluidSynth] = {}


def synthesizer(sound_font: Path, sample_rate: int) -> FluidSynth:
    """This process's synth for the sound font and rate, loaded on first use."""
    key = (sound_font.resolve(), sample_rate)
    if key not in _synths:
        _synths[key] = FluidSynth(sound_font, sample_rate)
    return _synths[key]
