"""Shared fixtures: a real JACK server (dummy back-end) for tests that need a live stream.

The dummy back-end is a real JACK server with real deadlines and no sound card, so tests run
the same on a laptop, a headless CI machine and a server. Each test session gets a server of
its own name, so a user's running JACK server is never touched.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class JackServer:
    name: str
    sample_rate: int
    period: int


def _portaudio_sees_jack() -> bool:
    from livestems.realtime.devices import list_audio_devices

    return any(device.host_api.startswith("JACK") for device in list_audio_devices(rescan=True))


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies (a run
    killed from outside never runs the fixture's teardown, and left its server running)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServer]:
    """A JACK dummy server at 44.1 kHz with 256-frame periods, for the whole test session."""
    jackd = shutil.which("jackd")
    if jackd is None:
        message = "jackd is not installed (Debian package jackd2; ./setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = JackServer(name=f"livestems-test-{os.getpid()}", sample_rate=44100, period=256)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    # Never let libjack start a server of its own when ours is not (or no longer) there.
    os.environ["JACK_NO_START_SERVER"] = "1"
    os.environ["JACK_DEFAULT_SERVER"] = server.name
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{server.name}.log"), "w")
    process = subprocess.Popen(
        [jackd, "--no-realtime", "-n", server.name, "-d", "dummy",
         "-r", str(server.sample_rate), "-p", str(server.period)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15.0
        while not _portaudio_sees_jack():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the JACK dummy server did not start; see {log.name}")
            time.sleep(0.2)
        yield server
    finally:
        # PortAudio's JACK client must close while the server still runs: PortAudio asserts
        # (and aborts the process at exit) when it finds its server gone.
        import sounddevice

        sounddevice._terminate()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        sounddevice._initialize()
