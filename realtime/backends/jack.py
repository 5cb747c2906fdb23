"""The JACK back-end: the mix and each stem on a named pair of output ports.

A DAW, a recorder or a patchbay sees ``livestems:mix_L``/``mix_R`` and, per stem,
``livestems:<stem>_L``/``<stem>_R`` (before its fader), and can record or route each stem on
its own; ``in_L``/``in_R`` take the input when the engine has no file source (live).

Thread contract:

- **Main thread**: opens the client (``open_client``), builds the back-end (registers the
  ports, preallocates every buffer), ``start``, ``run_for``, ``stop``; it also reads
  ``device_latency_samples`` (which asks the server for port latencies).
- **JACK's process thread** runs ``_process`` only: it asks JACK for each port's buffer (a
  numpy view is made only when JACK hands out a buffer at a new address, which in practice
  happens once per output port, and again for an input port when its connections change),
  copies the input ports into a preallocated (n_frames, n_channels) block, calls
  ``Engine.process_block``, copies the mix and each stem out to their ports and, if recording,
  the mix into a preallocated ``Recorder``. No lock, no logging, no array allocation: what it
  allocates are small Python objects (one cffi pointer per port per cycle, freed at once).
  To stop, ``stop()`` has the process thread end itself first (``SelfEndingProcess``): its
  last cycle plays silence and leaves Python, and libjack deactivates the client from that
  thread; the main thread closes the client once the thread is gone.
- **JACK's notification thread** runs ``_xrun`` (one integer increment into the telemetry) and
  ``_shutdown`` (one store of the reason the server gave): a server that goes away mid-stream
  ends ``run_for`` and ``stop()`` reports it as a ``DeviceError``.

The engine must run at the server's rate and block size: ``open_client`` first, then build the
engine with ``client.samplerate`` and ``client.blocksize`` and hand the client over; a mismatch
is a ``DeviceError`` that names both numbers.
"""

from __future__ import annotations

import ctypes.util
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..engine.engine import Engine
from .portaudio import DeviceError, Recorder

NO_SERVER = (
    "No JACK server is running: start one (for example 'jackd -d dummy' or your JACK control app)."
)
# jack_latency_callback_mode_t
CAPTURE_LATENCY = 0
PLAYBACK_LATENCY = 1
FLOAT_BYTES = 4

_LATENCY_CDEF = """
typedef struct { uint32_t min; uint32_t max; } jack_latency_range_t;
void jack_port_get_latency_range(void *port, int mode, jack_latency_range_t *range);
"""
_latency_api: tuple[Any, Any] | None = None


def _jack() -> ModuleType:
    try:
        import jack
    except OSError as error:  # JACK-Client raises it at import when libjack is missing
        raise DeviceError(
            "The JACK library is not installed: install it with 'apt-get install jackd2'."
        ) from error
    return jack


def open_client(client_name: str = "livestems", server_name: str | None = None) -> Any:
    """A ``jack.Client`` on a running server (never one that libjack starts by itself).

    Args:
        client_name: the name asked for; the server makes it unique (``livestems-01``).
        server_name: the server (``None``: ``$JACK_DEFAULT_SERVER``, else ``default``).

    Raises:
        DeviceError: no server runs, or it refused the client.
    """
    jack = _jack()
    # libjack explains a failed open in several lines on stderr; keep them out of the one
    # sentence the user gets (they are kept here for a debugger).
    messages: deque[str] = deque(maxlen=32)
    jack.set_error_function(messages.append)
    jack.set_info_function(messages.append)
    try:
        return jack.Client(client_name, no_start_server=True, servername=server_name)
    except jack.JackOpenError as error:
        if error.status.server_failed or error.status.server_error:
            raise DeviceError(NO_SERVER) from error
        raise DeviceError(
            f"The JACK server refused a client named {client_name!r} ({error.status})."
        ) from error
    finally:
        jack.set_error_function(None)
        jack.set_info_function(None)


def channel_suffixes(n_channels: int) -> tuple[str, ...]:
    """Port name suffixes: ``L``/``R`` for stereo, else ``1``, ``2``, ..."""
    return ("L", "R") if n_channels == 2 else tuple(str(i + 1) for i in range(n_channels))


def stem_port_prefix(stem: str) -> str:
    """A stem's port names start with its name (``vocals_L``), made safe for JACK (no ``:``
    or spaces); a stem called like one of the other ports (``mix``, ``in``) gets ``stem_``."""
    name = "".join("_" if char == ":" or char.isspace() else char for char in stem)
    return f"stem_{name}" if name in ("mix", "in") else name


def _latency_library() -> tuple[Any, Any] | None:
    """libjack's latency-range call, which JACK-Client does not wrap (``None``: unavailable)."""
    global _latency_api
    if _latency_api is None:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_LATENCY_CDEF)
        try:
            lib = ffi.dlopen(ctypes.util.find_library("jack") or "libjack.so.0")
        except OSError:
            return None
        _latency_api = (ffi, lib)
    return _latency_api


def port_latency(port: Any, mode: int) -> int:
    """The most frames between ``port`` and the hardware (``mode``: ``CAPTURE_LATENCY`` or
    ``PLAYBACK_LATENCY``), as the server computed it for the current connections; 0 when the
    port is connected to nothing (or libjack cannot say)."""
    api = _latency_library()
    if api is None:
        return 0
    jack = _jack()
    ffi, lib = api
    address = int(jack._ffi.cast("uintptr_t", port._ptr))
    latency_range = ffi.new("jack_latency_range_t *")
    lib.jack_port_get_latency_range(ffi.cast("void *", address), mode, latency_range)
    return int(latency_range.max)


class SelfEndingProcess:
    """A JACK process callback that can end its own thread, for a clean close.

    libjack's deactivate (and close) cancels a process thread that is still running,
    asynchronously: at any instruction. Cancelled inside Python it takes the GIL with it and the
    whole program hangs (Ctrl-C on ``livestems live`` did, 2 times in 180 stops on a loaded
    machine). So ``end()``, on the main thread, asks the next cycle to run ``last_cycle`` (say,
    silence the outputs), note its thread id and raise ``jack.CallbackExit``: libjack then
    deactivates the client from the process thread itself and ends that thread, outside Python.
    ``end()`` returns once the thread is gone; the client can then be closed safely. An
    inactive client's notification thread calls no callback.

    Args:
        process: the callback, ``process(frames)``, run on JACK's process thread.
        last_cycle: run instead of ``process`` in the last cycle (``None``: nothing).
    """

    def __init__(
        self, process: Callable[[int], None], last_cycle: Callable[[int], None] | None = None
    ) -> None:
        self.process = process
        self.last_cycle = last_cycle
        self.ending = False
        self.ended = threading.Event()
        self.thread_id = 0
        self._callback_exit = _jack().CallbackExit

    def __call__(self, frames: int) -> None:
        if not self.ending:
            self.process(frames)
            return
        if self.last_cycle is not None:
            self.last_cycle(frames)
        self.thread_id = threading.get_native_id()
        self.ended.set()
        raise self._callback_exit

    def end(self, client: Any) -> None:
        """From the main thread, with ``client`` active. ``ended`` says whether the process
        thread ended itself: not if the server ran no cycle for a while (close as usual then)."""
        self.ending = True
        seconds_per_cycle = client.blocksize / client.samplerate
        if not self.ended.wait(max(0.5, 50 * seconds_per_cycle)):
            return
        # libjack deactivates the client from the process thread, then ends the thread; Linux
        # lists a thread under /proc until it has ended (elsewhere: a generous pause).
        if not Path("/proc/self/task").is_dir():
            time.sleep(0.2)
            return
        task = Path(f"/proc/self/task/{self.thread_id}")
        deadline = time.monotonic() + 2.0
        while task.exists() and time.monotonic() < deadline:
            time.sleep(0.002)


def end_and_close(client: Any, process: SelfEndingProcess, active: bool = True) -> None:
    """Closes a client whose process callback is ``process``: its process thread ends itself
    first when the client is ``active`` (see ``SelfEndingProcess``)."""
    if active:
        process.end(client)
    client.deactivate()
    client.close()


class JackPortsBackend:
    """The engine as a JACK client with an output port pair for the mix and for each stem.

    Args:
        engine: the engine to drive; its sample rate and block size must be the server's.
        client_name: the JACK client's name (when ``client`` is not given).
        connect_outputs: connect the mix to the system's playback ports on ``start``.
        connect_inputs: connect the system's capture ports to the inputs on ``start`` (live
            only: with a file source the inputs are unused).
        recorder: optionally keeps the mix played.
        client: an open ``jack.Client`` (from ``open_client``) to use and close; ``None``
            opens one.
        server_name: the server to open a client on (``None``: ``$JACK_DEFAULT_SERVER``); kept
            for helpers that open clients beside it (``loopback.py``). JACK 2's libjack talks
            to one server per process: every client of a process must be on the same one.

    Raises:
        DeviceError: no server, or the engine's rate or block size is not the server's.
    """

    def __init__(
        self,
        engine: Engine,
        client_name: str = "livestems",
        connect_outputs: bool = True,
        connect_inputs: bool = True,
        *,
        recorder: Recorder | None = None,
        client: Any = None,
        server_name: str | None = None,
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.connect_outputs = connect_outputs
        self.connect_inputs = connect_inputs
        self.lost: str | None = None
        self.server_name = server_name
        self.callback_error: BaseException | None = None
        self.client = client if client is not None else open_client(client_name, server_name)
        self._active = False
        self._closed = False
        self._process_callback = SelfEndingProcess(self._process, last_cycle=self._silence)
        try:
            self._check_geometry()
            self._register_ports()
        except BaseException:
            self._close_client()
            raise
        self._allocate_buffers()
        self.client.set_process_callback(self._process_callback)
        self.client.set_xrun_callback(self._xrun)
        self.client.set_shutdown_callback(self._shutdown)
        self._device_latency = self._measure_device_latency()

    # -- set-up, main thread ----------------------------------------------------------------

    def _check_geometry(self) -> None:
        settings = self.engine.settings
        server_rate, server_block = self.client.samplerate, self.client.blocksize
        if settings.sample_rate != server_rate:
            raise DeviceError(
                f"The JACK server runs at {server_rate} Hz but the model needs "
                f"{settings.sample_rate} Hz: restart the server at {settings.sample_rate} Hz "
                f"(for example 'jackd -d dummy -r {settings.sample_rate}') or use a "
                f"{server_rate} Hz model."
            )
        if settings.block_size != server_block:
            raise DeviceError(
                f"The JACK server's buffer is {server_block} samples but the engine was built "
                f"for {settings.block_size}: build it with the server's buffer size, or restart "
                f"the server with '-p {settings.block_size}'."
            )

    def _register_ports(self) -> None:
        suffixes = channel_suffixes(self.engine.n_channels)
        register_in, register_out = self.client.inports.register, self.client.outports.register
        self.input_ports = [register_in(f"in_{suffix}") for suffix in suffixes]
        self.mix_ports = [register_out(f"mix_{suffix}") for suffix in suffixes]
        self.stem_ports = {
            stem: [register_out(f"{stem_port_prefix(stem)}_{suffix}") for suffix in suffixes]
            for stem in self.engine.stems
        }

    def _allocate_buffers(self) -> None:
        engine, jack = self.engine, _jack()
        block, n_channels = engine.settings.block_size, engine.n_channels
        self._block = block
        self._live = engine.source is None
        self._get_buffer = jack._lib.jack_port_get_buffer
        self._cffi_buffer = jack._ffi.buffer
        self._null = jack._ffi.NULL
        # The engine's layout: [shape=(n_frames, n_channels)] and (n_stems, n_frames, n_channels).
        self._in = np.zeros((block, n_channels), dtype=np.float32)
        self._out = np.zeros((block, n_channels), dtype=np.float32)
        self._stems = np.zeros((len(engine.stems), block, n_channels), dtype=np.float32)
        # One entry per port, inputs first: the port, and the engine-side column it copies from
        # or to (a strided view made once, here).
        in_routes = [(port, self._in[:, c]) for c, port in enumerate(self.input_ports)]
        out_routes = [(port, self._out[:, c]) for c, port in enumerate(self.mix_ports)]
        for s, stem in enumerate(engine.stems):
            out_routes += [
                (port, self._stems[s, :, c]) for c, port in enumerate(self.stem_ports[stem])
            ]
        routes = (in_routes if self._live else []) + out_routes
        self._port_pointers = [port._ptr for port, _ in routes]
        self._columns = [column for _, column in routes]
        self._n_inputs = len(in_routes) if self._live else 0
        self._n_routes = len(routes)
        # The buffer JACK gave each port last, and a numpy view on it; the views start on a
        # scratch block so that a NULL buffer (never seen in practice) is harmless.
        self._buffer_pointers: list[Any] = [self._null] * self._n_routes
        self._scratch = np.zeros(block, dtype=np.float32)
        self._views: list[np.ndarray] = [self._scratch] * self._n_routes
        self.views_made = 0  # how often a port's buffer moved (tests watch it stay put)

    @property
    def port_names(self) -> list[str]:
        """Every port's full name (``client:port``), inputs first."""
        ports = self.input_ports + self.mix_ports
        for stem_ports in self.stem_ports.values():
            ports = ports + stem_ports
        return [port.name for port in ports]

    # -- JACK's process thread --------------------------------------------------------------

    def _process(self, frames: int) -> None:
        if frames != self._block or self.callback_error is not None:
            self._silence(frames)
            return
        try:
            self._fetch_buffers(frames)
            self._copy_and_process()
        except Exception as error:  # a bug: keep it for stop(), play silence, never raise here
            self.callback_error = error
            self._silence(frames)

    def _fetch_buffers(self, frames: int) -> None:
        """This cycle's port buffers; a new view only when JACK moved one."""
        get_buffer, pointers, known = self._get_buffer, self._port_pointers, self._buffer_pointers
        for i in range(self._n_routes):
            buffer = get_buffer(pointers[i], frames)
            if buffer != known[i]:
                known[i] = buffer
                if buffer == self._null:
                    self._views[i] = self._scratch
                else:
                    self._views[i] = np.frombuffer(
                        self._cffi_buffer(buffer, frames * FLOAT_BYTES), dtype=np.float32
                    )
                self.views_made += 1

    def _copy_and_process(self) -> None:
        """Input ports -> engine block -> engine -> mix and stem ports. No array allocation."""
        views, columns, n_inputs = self._views, self._columns, self._n_inputs
        for i in range(n_inputs):
            np.copyto(columns[i], views[i])
        self.engine.process_block(self._in if self._live else None, self._out, self._stems)
        for i in range(n_inputs, self._n_routes):
            np.copyto(views[i], columns[i])
        if self.recorder is not None:
            self.recorder.write(self._out)

    def _silence(self, frames: int) -> None:
        if frames != self._block and self.lost is None:
            self.lost = (
                f"the JACK server changed its buffer size from {self._block} to {frames} samples "
                "(start livestems again to follow it)"
            )
        for i in range(self._n_inputs, self._n_routes):
            buffer = self._get_buffer(self._port_pointers[i], frames)
            if buffer != self._null:
                # A view on JACK's buffer, zeroed in place: no sample buffer is allocated.
                np.frombuffer(self._cffi_buffer(buffer, frames * FLOAT_BYTES), np.float32).fill(0)

    # -- JACK's notification thread ---------------------------------------------------------

    def _xrun(self, delayed_usecs: float) -> None:
        self.engine.telemetry.device_xruns += 1

    def _shutdown(self, status: Any, reason: str) -> None:
        self.lost = f"the JACK server shut down ({reason})"

    # -- lifetime, main thread --------------------------------------------------------------

    def start(self) -> None:
        """Warm the model up, start the worker, activate the client and connect its ports."""
        self.engine.warm_up()
        self.engine.start()
        self.client.activate()
        self._active = True
        if self.connect_outputs:
            playback = self.client.get_ports(is_audio=True, is_input=True, is_physical=True)
            self._connect_pairs(self.mix_ports, playback)
        if self.connect_inputs and self._live:
            capture = self.client.get_ports(is_audio=True, is_output=True, is_physical=True)
            self._connect_pairs(capture, self.input_ports)

    def _connect_pairs(self, sources: list[Any], destinations: list[Any]) -> None:
        """Channel by channel (ports beyond the shorter side are left alone); a mono side
        feeds, or takes, every channel of the other."""
        if len(sources) == 1:
            pairs = [(sources[0], destination) for destination in destinations]
        elif len(destinations) == 1:
            pairs = [(source, destinations[0]) for source in sources]
        else:
            pairs = list(zip(sources, destinations, strict=False))
        for source, destination in pairs:
            try:
                self.client.connect(source, destination)
            except Exception as error:  # jack.JackError; the server has the details
                raise DeviceError(
                    f"JACK could not connect {source.name} to {destination.name} ({error})."
                ) from error

    def run_for(self, seconds: float, poll: float = 0.05) -> None:
        """Play for ``seconds`` (or until the source ends or the server goes away)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.lost or self.callback_error is not None:
                break
            if self.engine.source is not None and self.engine.source.finished:
                break
            time.sleep(poll)

    def stop(self) -> None:
        """Deactivate and close the client, stop the worker; then report a lost server
        (``DeviceError``) or a failed callback (an internal error, with its traceback)."""
        try:
            if self._active and self.lost is None:
                self._device_latency = self._measure_device_latency()
            self._close_client()
        finally:
            self.engine.stop()
        if self.callback_error is not None:
            raise RuntimeError("the JACK process callback failed") from self.callback_error
        if self.lost is not None:
            raise DeviceError(f"The stream stopped: {self.lost}.")

    @property
    def process_thread_ended_itself(self) -> bool:
        """Whether the last stop found the process thread ending itself before deactivating."""
        return self._process_callback.ended.is_set()

    def _close_client(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A lost server runs no cycle that could end the process thread.
        running = self._active and self.lost is None
        self._active = False
        end_and_close(self.client, self._process_callback, active=running)

    # -- latency ----------------------------------------------------------------------------

    @property
    def device_latency_samples(self) -> int:
        """Frames the server adds outside the engine: capture (live only) plus playback, from
        the port latency ranges; read fresh while the client runs, as last read after."""
        if self._active and self.lost is None:
            self._device_latency = self._measure_device_latency()
        return self._device_latency

    def _measure_device_latency(self) -> int:
        """Our ports' latency ranges; for a side connected to nothing, the system ports' (what
        it would be once connected); failing both, one buffer per side."""
        client, block = self.client, self._block
        playback = max(port_latency(port, PLAYBACK_LATENCY) for port in self.mix_ports)
        if playback == 0:
            system = client.get_ports(is_audio=True, is_input=True, is_physical=True)
            playback = max((port_latency(port, PLAYBACK_LATENCY) for port in system), default=0)
        latency = playback or block
        if self._live:
            capture = max(port_latency(port, CAPTURE_LATENCY) for port in self.input_ports)
            if capture == 0:
                system = client.get_ports(is_audio=True, is_output=True, is_physical=True)
                capture = max((port_latency(port, CAPTURE_LATENCY) for port in system), default=0)
            latency += capture or block
        return latency
