"""Shared fixtures: a real JACK server (dummy back-end) for tests that need a live stream.

The dummy back-end is a real JACK server with real deadlines and no sound card, so tests run
the same on a laptop, a headless CI machine and a server. Each test session gets a server of
its own name, so a user's running JACK server is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class JackServerInfo:
    name: str
    sample_rate: int
    period: int


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServerInfo]:
    """A JACK dummy server at 44.1 kHz with 256-frame periods, for the whole test session
    (``realtime/backends/jack_server.py``: it dies with the test process, however that dies)."""
    from livestems.realtime.backends.jack_server import JackServer, jackd_available
    from livestems.realtime.errors import UserError

    if not jackd_available():
        message = "jackd is not installed (Debian package jackd2; ./setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = JackServer("test", 44100, 256, wait_for="portaudio")
    try:
        server.start()
    except UserError as error:
        pytest.fail(str(error))
    try:
        yield JackServerInfo(server.name, server.sample_rate, server.block_size)
    finally:
        server.stop()
