"""The engine in a process of its own, behind the same surface as ``AudioSession``: the GUI's
Python (painting, layout, MIDI) then never holds the GIL that the audio callback needs
(DESIGN.md, the GIL paragraph).

Thread contract:

- **GUI process, GUI thread**: ``ProcessSession``. Controls (gain, mute, solo, pan, bleed gate,
  master, bypass, tempo, transpose, count-in, play, seek, loop) are one message each on a pipe,
  never waited for (their values checked here first). The song's beat grid, found in the engine
  process, is a request the window makes every ``GRID_POLL_S`` until it is there. Opening a song or
  changing settings is a request that waits for its answer (as the in-process session blocks
  for the model's warm-up). ``snapshot``, the transport position and the lost flag are read
  from shared memory without a lock: a sequence counter, odd while the writer is inside,
  makes the reader retry a torn copy.
- **Engine process**: its main thread serves the pipe (one ``AudioSession``: a real engine, its
  worker thread and the device's callback thread, exactly as in-process); one publisher thread
  copies a telemetry snapshot and the transport into shared memory ``PUBLISH_HZ`` times a
  second. Its GIL is shared by the callback, the worker, the publisher and the pipe only.

The child is started with ``spawn`` (a fresh interpreter: no Qt state forked into it); this
module imports no Qt.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from ..realtime.engine.telemetry import COMPUTE_HISTORY, SPECTRUM_SIZE, TelemetrySnapshot
from ..realtime.errors import UserError
from ..realtime.practice.beat_grid import BeatGrid
from ..realtime.practice.tempo_key import check_tempo, check_transpose, require_rubber_band
from .session import AudioSession, SessionSettings, SessionStatus, check_bleed_gate

PUBLISH_HZ = 60
MAX_STEMS = 8
N_BINS = SPECTRUM_SIZE // 2 + 1
REQUEST_TIMEOUT_S = 60.0
GRID_POLL_S = 0.5  # how often the window asks for a beat grid still being found
# Header slots of the shared block (float64 each).
(SEQUENCE, FRAMES_PLAYED, UNDERRUNS, WORST_LATENESS, DEVICE_XRUNS, HOPS, SPECTRUM_COUNT,
 OUT_RING_FILL, POSITION, N_SAMPLES, PLAYING, FINISHED, LOOP_START, LOOP_END, RUNNING, LOST,
 N_HEADER) = range(17)  # fmt: skip
RMS = N_HEADER
PEAK = RMS + MAX_STEMS
GAINS = PEAK + MAX_STEMS  # the mixer's current gain per stem (the post-fader meters)
SPECTRA = GAINS + MAX_STEMS
HOP_SECONDS = SPECTRA + MAX_STEMS * N_BINS
N_SLOTS = HOP_SECONDS + COMPUTE_HISTORY


class SharedTelemetry:
    """The shared block: a float64 array of ``N_SLOTS``, laid out by the constants above."""

    def __init__(self, name: str | None = None) -> None:
        size = N_SLOTS * 8
        self.memory = SharedMemory(name=name, create=name is None, size=size)
        self.slots: np.ndarray = np.ndarray((N_SLOTS,), dtype=np.float64, buffer=self.memory.buf)
        if name is None:
            self.slots.fill(0.0)

    def close(self, unlink: bool = False) -> None:
        del self.slots
        self.memory.close()
        if unlink:
            self.memory.unlink()


# -- the engine process ---------------------------------------------------------------------


def _publish(session: AudioSession, shared: SharedTelemetry, stop: threading.Event) -> None:
    """Copy the telemetry and the transport into shared memory, ``PUBLISH_HZ`` times a second."""
    slots = shared.slots
    while not stop.wait(1.0 / PUBLISH_HZ):
        engine, backend = session.engine, session.backend
        slots[SEQUENCE] += 1  # odd: being written
        if engine is None:
            slots[RUNNING] = 0.0
        else:
            snapshot = engine.telemetry.snapshot()
            n_stems = len(engine.stems)
            slots[FRAMES_PLAYED] = snapshot.samples_played
            slots[UNDERRUNS] = snapshot.underruns
            slots[WORST_LATENESS] = snapshot.worst_lateness_samples
            slots[DEVICE_XRUNS] = snapshot.device_xruns
            slots[HOPS] = snapshot.hops
            slots[SPECTRUM_COUNT] = snapshot.spectrum_count
            slots[OUT_RING_FILL] = snapshot.out_ring_fill
            slots[RMS : RMS + n_stems] = snapshot.stem_rms_db
            slots[PEAK : PEAK + n_stems] = snapshot.stem_peak_db
            slots[GAINS : GAINS + n_stems] = engine.mixer.current_gains()[:n_stems]
            spectra = slots[SPECTRA : SPECTRA + n_stems * N_BINS].reshape(n_stems, N_BINS)
            spectra[:] = snapshot.stem_spectra_db
            n_hops = snapshot.hop_seconds.size
            slots[HOP_SECONDS : HOP_SECONDS + n_hops] = snapshot.hop_seconds
            source = engine.source
            if source is not None:
                # The song time heard (a PracticeSource's ring runs ahead of it).
                slots[POSITION] = round(source.seconds * source.sample_rate)
                slots[N_SAMPLES] = source.n_samples
                slots[PLAYING] = source.playing
                slots[FINISHED] = source.finished
                slots[LOOP_START], slots[LOOP_END] = source.loop_start, source.loop_end
            slots[RUNNING] = 1.0
            lost = backend is not None and not backend.alive() or engine.worker_error is not None
            slots[LOST] = float(lost)
        slots[SEQUENCE] += 1  # even: consistent


def _describe(session: AudioSession) -> dict[str, Any]:
    return {
        "stems": session.stems,
        "sample_rate": session.sample_rate,
        "model_name": session.model_name,
        "notice": session.notice,
        "song_name": session.song_name,
        "settings": session.settings,
        "status": session.status(),
        "running": session.engine is not None,
        "live_input": session.live_input,
        "block_size": session.settings.block_size,
    }


def serve(connection: Connection, shared_name: str, settings: SessionSettings) -> None:
    """The engine process: serve requests from the GUI until it says ``quit`` or goes away."""
    # Ctrl-C reaches the whole process group: the window decides when the engine ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shared = SharedTelemetry(shared_name)
    session = AudioSession(settings)
    session.lock_memory = True
    stop = threading.Event()
    publisher = threading.Thread(target=_publish, args=(session, shared, stop), daemon=True)
    publisher.start()
    try:
        while True:
            try:
                request = connection.recv()
            except EOFError:  # the GUI process went away
                break
            command, arguments = request[0], request[1:]
            if command == "quit":
                break
            try:
                reply = _handle(session, command, arguments)
            except UserError as error:
                reply = {"error": str(error)}
            if reply is not None:
                connection.send(reply | {"describe": _describe(session)})
    finally:
        stop.set()
        publisher.join()
        session.stop()
        shared.close()


def _handle(session: AudioSession, command: str, arguments: tuple[Any, ...]) -> dict | None:
    """One request; a dict for those the GUI waits on, ``None`` for controls."""
    engine, source = session.engine, session.source
    if command == "gain":
        session.set_gain_db(*arguments)
    elif command == "mute":
        session.set_mute(*arguments)
    elif command == "solo":
        session.set_solo(*arguments)
    elif command == "master":
        session.set_master_gain_db(*arguments)
    elif command == "bypass":
        session.set_bypass(*arguments)
    elif command in ("pan", "bleed_gate", "tempo", "transpose", "count_in"):
        try:  # the GUI checked the value; a control never answers, so never with an error
            getattr(session, f"set_{command}")(*arguments)
        except UserError:
            pass
    elif command == "grid":
        return {"grid": session.beat_grid()}
    elif command in ("toggle", "seek", "seek_by", "set_loop", "play", "pause"):
        if source is not None:
            getattr(source, command)(*arguments)
    elif command == "open":
        session.open_song(arguments[0])
        session.start()
        return {}
    elif command == "live":
        session.open_live_input()
        return {}
    elif command == "load_model":
        return {"notice": session.load_model()}
    elif command == "start":
        session.live_input = arguments[0]
        session.start()
        return {}
    elif command == "stop":
        session.stop()
        return {}
    elif command == "settings":
        session.apply_settings(arguments[0])
        return {}
    elif command == "lost_reason":
        return {"reason": session.lost_reason()}
    elif command == "mixer":
        if engine is None:
            return dict.fromkeys(
                (
                    "targets",
                    "current",
                    "pans",
                    "gates",
                    "click_target",
                    "tempo",
                    "transpose",
                    "count_in",
                )  # fmt: skip
            ) | {"bypassed": False}
        mixer, n_stems = engine.mixer, len(engine.stems)
        click = n_stems < len(engine.mix_stems)  # a song's engine: the click stem after them
        return {
            "targets": list(mixer.effective_targets()[:n_stems]),  # the model's stems
            "current": list(mixer.current_gains()[:n_stems]),
            "bypassed": engine.bypassed,
            "pans": [mixer.pan(index) for index in range(len(engine.mix_stems))],
            "gates": [engine.processor.bleed_gate_db(index) for index in range(n_stems)],
            "click_target": float(mixer.effective_targets()[n_stems]) if click else None,
            "tempo": getattr(source, "tempo", None),
            "transpose": getattr(source, "transpose", None),
            "count_in": getattr(source, "count_in", None),
        }
    else:
        raise ValueError(f"unknown request {command!r}")
    return None


# -- the GUI process ------------------------------------------------------------------------


@dataclass
class RemoteSource:
    """The file source as the GUI sees it: read from shared memory, controlled by messages."""

    session: ProcessSession
    sample_rate: int

    def _slot(self, index: int) -> float:
        return float(self.session.shared.slots[index])

    @property
    def position(self) -> int:
        return int(self._slot(POSITION))

    @property
    def n_samples(self) -> int:
        return int(self._slot(N_SAMPLES))

    @property
    def seconds(self) -> float:
        return self.position / self.sample_rate

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def playing(self) -> bool:
        return bool(self._slot(PLAYING))

    @property
    def finished(self) -> bool:
        return bool(self._slot(FINISHED))

    @property
    def loop_end(self) -> int:
        return int(self._slot(LOOP_END))

    def _send(self, *request: Any) -> None:
        self.session.send(*request)

    def toggle(self) -> None:
        self.session.shared.slots[PLAYING] = not self.playing  # seen at once, confirmed soon
        self._send("toggle")

    def seek(self, seconds: float) -> None:
        self.session.shared.slots[POSITION] = min(max(seconds, 0.0), self.duration) * (
            self.sample_rate
        )
        self._send("seek", seconds)

    def seek_by(self, seconds: float) -> None:
        self.seek(self.seconds + seconds)

    def set_loop(self, start_seconds: float, end_seconds: float) -> None:
        self._send("set_loop", start_seconds, end_seconds)


class ProcessSession:
    """``AudioSession``'s surface, with the engine in a child process.

    Args:
        settings: as for ``AudioSession``.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.shared = SharedTelemetry()
        self._spawn()
        self.stems: tuple[str, ...] = ()
        self.sample_rate = 44100
        self.model_name = ""
        self.notice: str | None = None
        self.song_name = ""
        self.live_input = False
        self._status: SessionStatus | None = None
        self._pending_song: str | Path | None = None  # sent with the next start
        self._song: str | None = None  # the song the engine plays, to open again on revival
        self._running = False
        self._closed = False
        self._grid: BeatGrid | None = None
        self._grid_asked = 0.0  # when the engine process was last asked for the grid

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, self.shared.memory.name, self.settings), daemon=True,
            name="livestems-engine",
        )  # fmt: skip
        self.process.start()
        child.close()

    def revive(self, position_seconds: float, playing: bool) -> str:
        """A new engine process after the old one died: the same settings, song and position
        (the window sends its controls again). Returns the sentence that says so.

        Raises:
            UserError: the new process cannot play either.
        """
        exit_status = self.process.exitcode
        self._connection.close()
        self.shared.slots[:] = 0.0
        self._running = False
        self._spawn()
        if self._song is not None and not self.live_input:
            self._pending_song = self._song
        self.start()
        if self._song is not None and not self.live_input:
            self.send("seek", position_seconds)
            if not playing:
                self.send("pause")
        return (
            f"The audio engine's process ended (exit status {exit_status}) and was started "
            f"again at {position_seconds:.1f} s."
        )

    # -- requests ---------------------------------------------------------------------------

    def send(self, *request: Any) -> None:
        if not self._closed and self.process.is_alive():
            self._connection.send(request)

    def _request(self, *request: Any) -> dict[str, Any]:
        if self._closed or not self.process.is_alive():
            raise UserError(self._died())
        self._connection.send(request)
        if not self._connection.poll(REQUEST_TIMEOUT_S):
            raise UserError(
                f"The audio engine did not answer within {REQUEST_TIMEOUT_S:.0f} s "
                "(is the machine overloaded?)."
            )
        reply: dict[str, Any] = self._connection.recv()
        described = reply["describe"]
        self.stems, self.sample_rate = described["stems"], described["sample_rate"]
        self.model_name, self.notice = described["model_name"], described["notice"]
        self.song_name, self.settings = described["song_name"], described["settings"]
        self._status, self._running = described["status"], described["running"]
        self.live_input = described["live_input"]
        if "error" in reply:
            raise UserError(reply["error"])
        if self._running:
            self._wait_for_publisher()
        return reply

    def _wait_for_publisher(self) -> None:
        # The first shared snapshot of a new stream comes within 1 / PUBLISH_HZ.
        deadline = time.monotonic() + 1.0
        while not self.shared.slots[RUNNING] and time.monotonic() < deadline:
            time.sleep(0.005)

    def _died(self) -> str:
        return f"The audio engine's process ended (exit status {self.process.exitcode})."

    # -- AudioSession's surface -------------------------------------------------------------

    def load_model(self) -> str | None:
        notice: str | None = self._request("load_model")["notice"]
        return notice

    def open_live_input(self) -> None:
        """As ``AudioSession.open_live_input``, in the engine process."""
        self.shared.slots[RUNNING] = 0.0
        self._request("live")

    def open_song(self, path: str | Path) -> None:
        """As ``AudioSession.open_song``: the engine process opens the song at the next
        ``start`` (the song is read, and the model for it loaded, there)."""
        self._pending_song = path
        self._grid = None

    def beat_grid(self) -> BeatGrid | None:
        """As ``AudioSession.beat_grid``: asked of the engine process (a request, at most
        every ``GRID_POLL_S`` while it is being found; kept once found)."""
        if self._grid is None and self._running and not self.live_input:
            now = time.monotonic()
            if now - self._grid_asked >= GRID_POLL_S:
                self._grid_asked = now
                self._grid = self._request("grid")["grid"]
        return None if self.live_input else self._grid

    def start(self, position_seconds: float = 0.0, playing: bool = True) -> None:
        pending, self._pending_song = self._pending_song, None
        self.shared.slots[RUNNING] = 0.0
        if pending is not None:
            self._request("open", str(pending))
            self._song = str(pending)
        else:
            self._request("start", self.live_input)

    def stop(self) -> None:
        if not self._closed and self.process.is_alive():
            self._request("stop")
        self._running = False

    def apply_settings(self, settings: SessionSettings) -> None:
        self.shared.slots[RUNNING] = 0.0
        self._request("settings", settings)

    def lost_reason(self) -> str | None:
        if not self.process.is_alive():
            return self._died() if self._running else None
        if self._running and self.shared.slots[LOST]:
            reason: str | None = self._request("lost_reason")["reason"]
            return reason
        return None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def engine(self) -> None:
        return None  # in another process: only ``snapshot`` and the controls reach it

    @property
    def source(self) -> RemoteSource | None:
        if not self._running or self.live_input or not self.shared.slots[N_SAMPLES]:
            return None
        return RemoteSource(self, self.sample_rate)

    def snapshot(self) -> TelemetrySnapshot | None:
        if not self._running:
            return None
        slots, n_stems = self.shared.slots, len(self.stems)
        while True:
            before = slots[SEQUENCE]
            if before % 2 == 0:
                header = slots[:N_HEADER].copy()
                rms = slots[RMS : RMS + n_stems].copy()
                peak = slots[PEAK : PEAK + n_stems].copy()
                spectra = slots[SPECTRA : SPECTRA + n_stems * N_BINS].reshape(n_stems, N_BINS)
                spectra = spectra.copy()
                n_hops = min(int(header[HOPS]), COMPUTE_HISTORY)
                hop_seconds = slots[HOP_SECONDS : HOP_SECONDS + n_hops].copy()
                if slots[SEQUENCE] == before:
                    break
            time.sleep(0.0005)
        return TelemetrySnapshot(
            samples_played=int(header[FRAMES_PLAYED]),
            underruns=int(header[UNDERRUNS]),
            worst_lateness_samples=int(header[WORST_LATENESS]),
            device_xruns=int(header[DEVICE_XRUNS]),
            hops=int(header[HOPS]),
            hop_seconds=hop_seconds,
            stem_rms_db=rms,
            stem_peak_db=peak,
            stem_spectra_db=spectra,
            spectrum_count=int(header[SPECTRUM_COUNT]),
            out_ring_fill=int(header[OUT_RING_FILL]),
        )

    def status(self) -> SessionStatus | None:
        return self._status if self._running else None

    def stem_gains(self) -> np.ndarray | None:
        """As ``AudioSession.stem_gains``: the engine's mixer's current gains, as its publisher
        last copied them (at most 1 / ``PUBLISH_HZ`` old). [shape=(n_stems,)], linear"""
        if not self._running:
            return None
        return self.shared.slots[GAINS : GAINS + len(self.stems)].copy()

    def cpu_seconds(self) -> float:
        """CPU time the engine's process has used (Linux ``/proc``; 0 elsewhere), so that the
        window's CPU load counts the engine too."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        # utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_gain_db(self, stem: int, db: float) -> None:
        self.send("gain", stem, db)

    def set_mute(self, stem: int, muted: bool) -> None:
        self.send("mute", stem, muted)

    def set_solo(self, stem: int, soloed: bool) -> None:
        self.send("solo", stem, soloed)

    def set_master_gain_db(self, db: float) -> None:
        self.send("master", db)

    def set_bypass(self, bypassed: bool) -> None:
        self.send("bypass", bypassed)

    # The practice controls are checked here, so that a bad value is the caller's UserError
    # (one sentence) and the message sent is one the engine process takes.

    def set_pan(self, stem: int, pan: float) -> None:
        if not (-1.0 <= float(pan) <= 1.0):
            raise UserError(f"Pan must be between -1 (left) and +1 (right), not {pan:g}.")
        self.send("pan", stem, float(pan))

    def set_bleed_gate(self, stem: int, threshold_db: float | None) -> None:
        check_bleed_gate(threshold_db)
        self.send("bleed_gate", stem, threshold_db)

    def set_tempo(self, tempo: float) -> None:
        tempo = check_tempo(tempo)
        if tempo != 1.0:
            require_rubber_band()
        self.send("tempo", tempo)

    def set_transpose(self, semitones: float) -> None:
        semitones = check_transpose(semitones)
        if semitones != 0.0:
            require_rubber_band()
        self.send("transpose", semitones)

    def set_count_in(self, enabled: bool) -> None:
        self.send("count_in", bool(enabled))

    def mixer_state(self) -> dict[str, Any]:
        """The engine's mixer as the callback has it: the model stems' effective targets and
        current gains, bypass, every stem's pan, the click stem's target, and the song's tempo,
        transpose and count-in (a request that waits: for tests and diagnostics, not for the
        timer)."""
        return self._request("mixer")

    def close(self) -> None:
        """Stop the stream and end the engine process (idempotent)."""
        if self._closed:
            return
        if self.process.is_alive():
            self.send("quit")
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout=5)
        self._closed = True
        self._running = False
        self._connection.close()
        self.shared.close(unlink=True)
