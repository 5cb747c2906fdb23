"""The separation service for tests: songs as upload bytes, a real ``livestems serve`` on a free
loopback port (started and stopped by the test), and the peak memory of a process tree."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import soundfile as sf

from livestems.realtime.io.generated_song import generated_song


def song_bytes(seconds: float, seed: int = 0, format: str = "WAV", gain: float = 1.0) -> bytes:
    """The generated song as a file's bytes (16-bit wav by default)."""
    buffer = io.BytesIO()
    audio = generated_song(seconds, seed=seed) * gain
    sf.write(buffer, audio, 44100, format=format, subtype="PCM_16")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``livestems serve`` in a child process, on 127.0.0.1 and a free port."""

    def __init__(self, data: Path, *extra: str, workers: int = 2) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data / "server.log"

    def start(self, timeout_s: float = 60.0) -> None:
        command = [
            sys.executable, "-m", "livestems.realtime.commands.cli", "serve",
            "--port", str(self.port), "--data", str(self.data), "--workers", str(self.workers),
            *self.extra,
        ]  # fmt: skip
        self.data.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in {timeout_s} s")

    def kill(self) -> None:
        """``kill -9`` the server process alone (its workers die with it: PR_SET_PDEATHSIG)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_server(data: Path, *extra: str, workers: int = 2) -> Iterator[Server]:
    server = Server(data, *extra, workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for_jobs(
    client: httpx.Client | object,
    ids: list[str],
    timeout_s: float,
    headers: dict[str, str] | None = None,
) -> dict[str, dict]:
    """Poll until every job is done or failed; returns id -> the job's JSON."""
    deadline = time.monotonic() + timeout_s
    jobs: dict[str, dict] = {}
    while time.monotonic() < deadline:
        for job_id in ids:
            if jobs.get(job_id, {}).get("state") in ("done", "failed"):
                continue
            jobs[job_id] = client.get(f"/api/separations/{job_id}", headers=headers).json()  # type: ignore[attr-defined]
        if all(job.get("state") in ("done", "failed") for job in jobs.values()):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"jobs not finished in {timeout_s} s: {jobs}")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), in kB; 0 once gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"
