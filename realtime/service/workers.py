"""The worker pool: separations in processes of their own, started with ``spawn``.

Thread contract (threads and processes):

- **Worker processes** (``_worker_main``, one per ``--workers``): each loads the bundled model
  once, then takes job ids from the task queue and runs ``separate_file`` (the stream processor
  that ``livestems separate`` drives) on ``DATA/jobs/<id>/input<suffix>``. They block freely;
  they never touch the database, they report ``started``, ``progress``, ``done`` and ``failed``
  events on the event queue. A worker dies with the server (``PR_SET_PDEATHSIG``), so a server
  killed with ``kill -9`` leaves no orphan writing stems.
- **The pump thread** (``WorkerPool._pump``, in the server process): the only reader of the
  event queue and the only one that writes workers' news to the ``JobStore``. Every half second
  it also looks for dead workers: a job whose worker died is marked failed with the reason, and
  a fresh worker takes the dead one's place.
- **Request threads** call ``submit`` (puts an id on the task queue; never blocks).

Processes, not threads: onnxruntime and the decoders hold the GIL often enough that a song in a
thread would stall every request; a process also bounds what a crash or the OOM killer takes
down to one job. ``spawn``, not ``fork``: the server process runs uvicorn's event loop and
threads, which a forked child must not inherit.

Why no stem is ever half-written: ``separate_file`` writes a song's stems as a set into a
temporary folder and renames it into place (``io/stem_set.py``); a killed worker leaves only a
temporary that ``clean_stale`` removes before the job runs again.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jobs import JobStore

__all__ = ["STEMS_FOLDER", "WorkerPool", "input_path", "job_folder", "stems_folder"]

#: The song's folder name inside ``DATA/jobs/<id>/out/``: the stems are ``out/stems/<stem>.wav``.
STEMS_FOLDER = "stems"
#: Progress events per second per worker at most (a page redraws no faster).
_PROGRESS_INTERVAL_S = 0.1
_PR_SET_PDEATHSIG = 1
#: A worker that died before it was ready is started again after this long, not at once.
_RESPAWN_WAIT_S = 5.0


def job_folder(data: Path, job_id: str) -> Path:
    return data / "jobs" / job_id


def input_path(data: Path, job_id: str, suffix: str) -> Path:
    """Where an upload lives: named by the job's id, never by the name the client sent."""
    return job_folder(data, job_id) / f"input{suffix}"


def stems_folder(data: Path, job_id: str) -> Path:
    return job_folder(data, job_id) / "out" / STEMS_FOLDER


class _Cancelled(Exception):
    """The job was deleted while it ran."""


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the server process ends, however it ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return


def _worker_main(
    data: str, tasks: Any, events: Any, parent_pid: int, cpu_threads: int
) -> None:  # pragma: no cover - runs in the worker process
    """A worker process: the model once, then jobs until the parent goes away."""
    _die_with_parent()
    # Ctrl-C in the terminal reaches the whole process group: the server shuts the workers down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent_pid:  # the server died before prctl took effect
        return
    from ..runtime.catalog import resolve_model

    model = resolve_model(None, "cpu", cpu_threads=cpu_threads)
    events.put(("ready", os.getpid(), None))
    root = Path(data)
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        if task is None:
            return
        _run_job(root, task[0], task[1], model, events)


def _run_job(
    root: Path, job_id: str, suffix: str, model: Any, events: Any
) -> None:  # pragma: no cover
    """One job in a worker process: the separation, then one ``done`` or ``failed`` event."""
    from ..errors import UserError
    from ..io.stem_set import clean_stale
    from ..runtime.separation import separate_file

    source = input_path(root, job_id, suffix)
    if not source.exists():  # deleted while it waited
        return
    events.put(("started", os.getpid(), job_id))
    last = [0.0]

    def progress(done_s: float, total_s: float) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_INTERVAL_S:
            last[0] = now
            if not source.exists():
                raise _Cancelled
            events.put(("progress", os.getpid(), (job_id, done_s / total_s if total_s else 0)))

    out = stems_folder(root, job_id).parent
    started = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale(out)  # a temporary left by a worker killed on this job before
        report = separate_file(source, model, out, progress=progress, name=STEMS_FOLDER)
    except _Cancelled:
        events.put(("failed", os.getpid(), (job_id, "The job was deleted.")))
        return
    except UserError as error:
        # The server's paths mean nothing to a client: name the upload instead.
        message = str(error).replace(str(source), "the uploaded file")
        events.put(("failed", os.getpid(), (job_id, message)))
        return
    except MemoryError:
        events.put(("failed", os.getpid(), (job_id, "Not enough memory to separate it.")))
        return
    except OSError as error:
        reason = f"Cannot write the stems ({error.strerror or error})."
        events.put(("failed", os.getpid(), (job_id, reason)))
        return
    wall_s = time.perf_counter() - started
    events.put(("done", os.getpid(), (job_id, list(report.outputs), wall_s)))


@dataclass
class _Worker:
    process: Any  # multiprocessing's SpawnProcess
    job_id: str | None = None
    ready: bool = False
    died_at: float | None = None


class WorkerPool:
    """``n_workers`` worker processes fed from one task queue.

    Args:
        data: the service's data folder.
        store: where the pump records what the workers report.
        n_workers: processes (each holds one model and separates one song at a time).
        cpu_threads: onnxruntime threads per worker.
        on_change: called on the pump thread after each change it records (tests, logging).
    """

    def __init__(
        self,
        data: Path,
        store: JobStore,
        n_workers: int,
        cpu_threads: int = 1,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._data = data
        self._store = store
        self._n_workers = n_workers
        self._cpu_threads = cpu_threads
        self._on_change = on_change
        self._context = mp.get_context("spawn")
        self._tasks: Any = self._context.Queue()
        self._events: Any = self._context.Queue()
        self._workers: list[_Worker] = []
        self._stopping = threading.Event()
        self._pump_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ server process, main

    def start(self) -> None:
        """Start the workers and the pump, and queue the jobs a previous run left unfinished."""
        for job_id in self._store.requeue_unfinished():
            job = self._store.get(job_id)
            if job is not None:
                self.submit(job.id, job.suffix)
        self._workers = [self._spawn() for _ in range(self._n_workers)]
        self._pump_thread = threading.Thread(target=self._pump, name="worker-pump", daemon=True)
        self._pump_thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the workers (a running job is left as running: the next start runs it again)."""
        self._stopping.set()
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self._workers:
            worker.process.join(timeout_s)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout_s)
        for q in (self._tasks, self._events):
            q.close()
            q.cancel_join_thread()

    def submit(self, job_id: str, suffix: str) -> None:
        """Queue a job whose input is in place (any thread)."""
        self._tasks.put((job_id, suffix))

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers if worker.process.pid]

    def n_ready(self) -> int:
        return sum(worker.ready for worker in self._workers)

    def _spawn(self) -> _Worker:
        process = self._context.Process(
            target=_worker_main,
            args=(str(self._data), self._tasks, self._events, os.getpid(), self._cpu_threads),
            name="livestems-serve-worker",
            daemon=True,
        )
        process.start()
        return _Worker(process)

    # ----------------------------------------------------------------------- the pump thread

    def _pump(self) -> None:
        while not self._stopping.is_set():
            try:
                kind, pid, payload = self._events.get(timeout=0.5)
            except queue.Empty:
                self._replace_dead_workers()
                continue
            except (EOFError, OSError, ValueError):  # the queue closed under us: stopping
                return
            self._record(kind, pid, payload)
            if self._on_change is not None:
                self._on_change()

    def _worker(self, pid: int) -> _Worker | None:
        return next((w for w in self._workers if w.process.pid == pid), None)

    def _record(self, kind: str, pid: int, payload: Any) -> None:
        worker = self._worker(pid)
        if kind == "ready":
            if worker is not None:
                worker.ready = True
            return
        if kind == "started":
            if worker is not None:
                worker.job_id = payload
            self._store.set_running(payload)
            return
        job_id = payload[0]
        if kind == "progress":
            self._store.set_progress(job_id, payload[1])
            return
        if worker is not None:
            worker.job_id = None
        if self._store.get(job_id) is None:  # deleted while it ran: drop what it wrote
            _remove_tree(job_folder(self._data, job_id))
        elif kind == "done":
            self._store.set_done(job_id, payload[1], payload[2])
        elif kind == "failed":
            self._store.set_failed(job_id, payload[1])

    def _replace_dead_workers(self) -> None:
        if self._stopping.is_set():
            return
        for index, worker in enumerate(self._workers):
            if worker.process.is_alive():
                continue
            now = time.monotonic()
            if not worker.ready:
                # One that dies before its model is loaded would die again at once: wait.
                if worker.died_at is None:
                    worker.died_at = now
                if now - worker.died_at < _RESPAWN_WAIT_S:
                    continue
            code = worker.process.exitcode
            if worker.job_id is not None and self._store.get(worker.job_id) is not None:
                how = f"killed by signal {-code}" if code is not None and code < 0 else "stopped"
                self._store.set_failed(
                    worker.job_id,
                    f"The worker separating it was {how} (out of memory?); upload it again.",
                )
            self._workers[index] = self._spawn()
            if self._on_change is not None:
                self._on_change()


def _remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
