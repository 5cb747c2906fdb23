"""``livestems serve`` as a user starts it: a real uvicorn on a free loopback port, killed with
``kill -9`` mid-job and started again (the job finishes), and 20 uploads at once (all finish;
the peak memory of the server and its workers is printed)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
import httpx  # noqa: E402

from tests.helpers.service import (  # noqa: E402
    alive,
    descendants,
    rss_kb,
    running_server,
    song_bytes,
    wait_for_jobs,
)

pytestmark = pytest.mark.slow


def _post(url: str, name: str, content: bytes) -> dict:
    response = httpx.post(url + "/api/separations", files={"file": (name, content)}, timeout=120)
    assert response.status_code == 202, response.text
    return response.json()


def test_a_job_survives_kill_9_of_the_server(tmp_path: Path) -> None:
    data = tmp_path / "serve"
    with running_server(data, workers=1) as server:
        job = _post(server.url, "long.wav", song_bytes(120, seed=1))
        client = httpx.Client(base_url=server.url, timeout=10)
        deadline = time.monotonic() + 120
        while True:
            seen = client.get(f"/api/separations/{job['id']}").json()
            if seen["state"] == "running" and seen["progress"] > 0.05:
                break
            assert seen["state"] in ("queued", "running") and time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert server.process is not None
        workers = descendants(server.process.pid)[1:]
        server.kill()
        # the workers die with the server (PR_SET_PDEATHSIG): none goes on writing
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
        stems = data / "jobs" / job["id"] / "out" / "stems"
        assert not stems.exists()  # nothing half-written in place
        server.start()
        finished = wait_for_jobs(client, [job["id"]], 300)[job["id"]]
        assert finished["state"] == "done", finished
        for stem in finished["stems"]:
            assert sf.info(stems / f"{stem}.wav").frames == 120 * 44100
        # no temporary of the killed run is left beside the stems
        assert sorted(p.name for p in stems.parent.iterdir()) == ["stems"]


def test_twenty_uploads_at_once_all_finish(tmp_path: Path) -> None:
    with running_server(tmp_path / "serve", workers=2) as server:
        assert server.process is not None
        songs = [song_bytes(2 + (index % 3) * 0.5, seed=index) for index in range(20)]
        peak_kb: dict[int, int] = {}
        started = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            jobs = list(pool.map(lambda i: _post(server.url, f"song {i}.wav", songs[i]), range(20)))
        uploaded_s = time.monotonic() - started
        client = httpx.Client(base_url=server.url, timeout=10)
        ids = [job["id"] for job in jobs]
        deadline = time.monotonic() + 600
        while True:
            for pid in descendants(server.process.pid):
                peak_kb[pid] = max(peak_kb.get(pid, 0), rss_kb(pid, "VmHWM"))
            states = [client.get(f"/api/separations/{i}").json()["state"] for i in ids]
            if all(state in ("done", "failed") for state in states) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        total_s = time.monotonic() - started
        finished = wait_for_jobs(client, ids, 10)
        assert all(job["state"] == "done" for job in finished.values()), finished
        server_kb = peak_kb.pop(server.process.pid)
        wall = sorted(job["wall_s"] for job in finished.values())
        print(
            f"\n20 uploads: all sent in {uploaded_s:.1f} s, all done in {total_s:.1f} s; "
            f"separation {wall[len(wall) // 2]:.2f} s per job (median, 2-3 s songs), "
            f"peak RSS: server {server_kb / 1024:.0f} MB, "
            f"{len(peak_kb)} children "
            f"{', '.join(f'{kb / 1024:.0f}' for kb in peak_kb.values())} MB, "
            f"sum {(server_kb + sum(peak_kb.values())) / 1024:.0f} MB"
        )


def test_a_worker_killed_mid_job_fails_that_job_and_is_replaced(tmp_path: Path) -> None:
    data = tmp_path / "serve"
    with running_server(data, workers=1) as server:
        assert server.process is not None
        client = httpx.Client(base_url=server.url, timeout=10)
        job = _post(server.url, "long.wav", song_bytes(120, seed=2))
        deadline = time.monotonic() + 120
        while client.get(f"/api/separations/{job['id']}").json()["progress"] < 0.05:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        workers = [
            pid for pid in descendants(server.process.pid)[1:]
            if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()
        ]  # fmt: skip
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        failed = wait_for_jobs(client, [job["id"]], 30)[job["id"]]
        assert failed["state"] == "failed"
        assert failed["error"] == (
            "The worker separating it was killed by signal 9 (out of memory?); upload it again."
        )
        assert not (data / "jobs" / job["id"] / "out" / "stems").exists()
        # a fresh worker takes the next song
        after = _post(server.url, "short.wav", song_bytes(2))
        assert wait_for_jobs(client, [after["id"]], 120)[after["id"]]["state"] == "done"
