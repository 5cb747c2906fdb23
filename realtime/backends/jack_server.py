"""The one JACK dummy-server launcher: benchmarks, the soak and the tests start theirs here.

Thread contract: main thread only; ``start`` blocks until the server answers (or fails) and
``stop`` until it is gone.

JACK's dummy back-end is a real JACK server with real deadlines and no sound card, so a stream
measured on it runs as it would on a device. A server started here:

- has a name of its own (``livestems-<purpose>-<pid>``), so a user's running JACK server is never
  touched, and the process's libjack is pointed at it (``JACK_DEFAULT_SERVER``) and told never
  to start one itself (``JACK_NO_START_SERVER``);
- dies with the process that started it, however that process dies (``PR_SET_PDEATHSIG`` on
  Linux: a test run killed from outside never runs its teardown, and used to leave its server
  running);
- is stopped with SIGTERM, not SIGKILL: a killed JACK 2 server keeps its slot in the registry
  (eight per machine).

``wait_for="portaudio"`` waits until PortAudio lists the server's devices (the window's engine
and ``SoundDeviceBackend`` play through PortAudio's JACK host API); ``"client"`` until a JACK
client can connect (``JackPortsBackend``), and keeps that client open for ``set_block_size``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from ..errors import UserError

__all__ = ["JackServer", "jackd_available"]

_PR_SET_PDEATHSIG = 1
#: The server's real-time priority when it may have one: above the engine's worker's.
SERVER_PRIORITY = 80


def jackd_available() -> bool:
    return shutil.which("jackd") is not None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, however it dies."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class JackServer:
    """A JACK dummy server of its own name, started on construction or by ``start()``.

    Args:
        purpose: part of the server's name (``livestems-<purpose>-<pid>``).
        sample_rate: the server's rate.
        block_size: frames per period (the device block).
        wait_for: ``"client"``, ``"portaudio"`` or ``"nothing"`` (see the module's docstring).
        set_environment: point this process's libjack at the server (restored by ``stop``).
        timeout_s: how long ``start`` waits for the server.
        name: the server's name (default: made from ``purpose`` and the process id).
    """

    def __init__(
        self,
        purpose: str = "bench",
        sample_rate: int = 44100,
        block_size: int = 256,
        *,
        wait_for: Literal["client", "portaudio", "nothing"] = "client",
        set_environment: bool = True,
        timeout_s: float = 15.0,
        name: str | None = None,
    ) -> None:
        self.name = name or f"livestems-{purpose}-{os.getpid()}-{id(self) % 10_000}"
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.wait_for = wait_for
        self.set_environment = set_environment
        self.timeout_s = timeout_s
        self.client: Any = None
        self.realtime = False  # whether the server runs with real-time scheduling
        self.process: subprocess.Popen[bytes] | None = None
        self._previous_env: dict[str, str | None] = {}
        self._log: IO[str] | None = None
        self.log_path: Path | None = None

    @property
    def environment(self) -> dict[str, str]:
        """What a child process needs in its environment to use this server."""
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self) -> JackServer:
        jackd = shutil.which("jackd")
        if jackd is None:
            raise UserError(
                "jackd is not installed (Debian package jackd2; ./setup.sh installs it)."
            )
        if self.set_environment:
            for key, value in self.environment.items():
                self._previous_env[key] = os.environ.get(key)
                os.environ[key] = value
        self.log_path = Path(tempfile.gettempdir()) / f"{self.name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        # Real-time at priority 80 where this user may (as a desktop's JACK runs): above the
        # engine's worker (SCHED_FIFO 70), which would otherwise starve a non-real-time server
        # of its core on a busy machine; where it may not, the worker may not either, and the
        # server runs without (a refused -R makes jackd exit at once: then --no-realtime).
        for realtime in (["-R", "-P", str(SERVER_PRIORITY)], ["--no-realtime"]):
            self.process = subprocess.Popen(
                [jackd, *realtime, "-n", self.name, "-d", "dummy",
                 "-r", str(self.sample_rate), "-p", str(self.block_size)],
                stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
            try:
                self._wait()
            except UserError:
                if self.process.poll() is not None and realtime[0] == "-R":
                    continue  # refused real-time: once more without
                self.stop()
                raise
            except BaseException:
                self.stop()
                raise
            self.realtime = realtime[0] == "-R"
            return self
        raise AssertionError("unreachable")

    def _wait(self) -> None:
        if self.wait_for == "nothing":
            return
        deadline = time.monotonic() + self.timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self._log.name if self._log is not None else "its log"
                raise UserError(f"The JACK dummy server {self.name} did not start; see {log}.")
            if self._ready():
                return
            time.sleep(0.1)

    def _ready(self) -> bool:
        if self.wait_for == "portaudio":
            from .devices import list_audio_devices

            return any(d.host_api.startswith("JACK") for d in list_audio_devices(rescan=True))
        from .jack import open_client

        try:
            self.client = open_client("livestems-server-check", self.name)
        except UserError:
            return False
        return True

    def set_block_size(self, block_size: int) -> None:
        """A new period on the running server (through the kept client)."""
        if self.client is None:
            raise RuntimeError("set_block_size needs a server started with wait_for='client'")
        if self.client.blocksize != block_size:
            self.client.blocksize = block_size
        self.block_size = block_size

    def stop(self) -> None:
        """Close our client, then SIGTERM the server and wait for it (SIGKILL after 10 s)."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self.wait_for == "portaudio" and "sounddevice" in sys.modules:
            # PortAudio's JACK client must close while the server still runs: PortAudio
            # asserts (and aborts the process at exit) when it finds its server gone.
            import sounddevice

            sounddevice._terminate()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.wait_for == "portaudio" and "sounddevice" in sys.modules:
            import sounddevice

            sounddevice._initialize()
        if self._log is not None:
            self._log.close()
        for key, value in self._previous_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._previous_env = {}

    def __enter__(self) -> JackServer:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
