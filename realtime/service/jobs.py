"""The job store: every separation the service was asked for, in SQLite under the data folder.

Thread contract: one ``JobStore`` per server process, shared by uvicorn's event loop (the
server-sent events poll it), the request threads (FastAPI runs plain ``def`` endpoints in a
thread pool) and the worker pool's event pump thread. One connection behind one lock: every
call is a short statement, so holding the lock for it never blocks anyone for long. Worker
processes never open the database; they report to the pump, which writes for them.

Why SQLite: the standard library has it, one file holds the jobs, and a committed row survives a
``kill -9`` of the server, so after a restart queued jobs run, the ones that were running run
again, and finished ones are still listed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FINISHED", "STATES", "Job", "JobStore"]

#: queued -> running -> done | failed; a restart puts running jobs back to queued.
STATES = ("queued", "running", "done", "failed")
FINISHED = ("done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    suffix TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    duration_s REAL NOT NULL DEFAULT 0,
    model TEXT NOT NULL DEFAULT '',
    stems TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    wall_s REAL,
    created REAL NOT NULL,
    updated REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Job:
    """One separation as the API shows it.

    Attributes:
        id: a random hex id; also the job's folder name under ``DATA/jobs/``.
        name: the uploaded file's name, for display only (never a path).
        suffix: the upload's audio suffix (``.wav``); the file is ``DATA/jobs/<id>/input<suffix>``.
        state: one of ``STATES``.
        progress: 0 to 1, the fraction of the song rendered.
        duration_s: seconds of audio in the song.
        model: the model's name.
        stems: the stems written, in the model's order (empty until done).
        error: the sentence that says why it failed, else ``None``.
        wall_s: seconds the separation took, once done.
        created: when it was uploaded (Unix time).
    """

    id: str
    name: str
    suffix: str
    state: str
    progress: float
    duration_s: float
    model: str
    stems: list[str]
    error: str | None
    wall_s: float | None
    created: float

    def public(self) -> dict[str, Any]:
        """The JSON the API answers with (the suffix is the server's business)."""
        fields = asdict(self)
        del fields["suffix"]
        return fields


class JobStore:
    """Jobs in ``path`` (an SQLite file, made if missing)."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        # check_same_thread=False: the lock, not sqlite's thread check, keeps calls apart.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with self._lock:
            # WAL: a reader never waits for the pump's writes; synchronous=NORMAL is still
            # durable against a killed process (only a power cut can lose the last commits).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, args)
            return cursor.fetchall()

    @staticmethod
    def _job(row: Any) -> Job:
        (id_, name, suffix, state, progress, duration_s, model, stems, error, wall_s, created) = row
        return Job(
            id_, name, suffix, state, progress, duration_s, model, json.loads(stems), error,
            wall_s, created,
        )  # fmt: skip

    _COLUMNS = "id, name, suffix, state, progress, duration_s, model, stems, error, wall_s, created"

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def insert(self, job_id: str, name: str, suffix: str, duration_s: float, model: str) -> Job:
        """A new queued job under an id the caller chose (its folder already holds the input)."""
        now = time.time()
        self._execute(
            "INSERT INTO jobs (id, name, suffix, state, duration_s, model, created, updated) "
            "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
            (job_id, name, suffix, duration_s, model, now, now),
        )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._execute(f"SELECT {self._COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def all_jobs(self) -> list[Job]:
        """Every job, newest first."""
        rows = self._execute(f"SELECT {self._COLUMNS} FROM jobs ORDER BY created DESC, id")
        return [self._job(row) for row in rows]

    def version(self) -> float:
        """Changes whenever any job changes: the newest update time and the number of jobs."""
        rows = self._execute("SELECT COALESCE(MAX(updated), 0) + COUNT(*) * 1e-9 FROM jobs")
        return float(rows[0][0])

    def _update(self, job_id: str, sets: str, args: tuple[Any, ...]) -> None:
        self._execute(
            f"UPDATE jobs SET {sets}, updated = ? WHERE id = ?", (*args, time.time(), job_id)
        )

    def set_running(self, job_id: str) -> None:
        self._update(job_id, "state = 'running', progress = 0, error = NULL", ())

    def set_progress(self, job_id: str, progress: float) -> None:
        self._update(job_id, "progress = ?", (min(max(progress, 0.0), 1.0),))

    def set_done(self, job_id: str, stems: list[str], wall_s: float) -> None:
        self._update(
            job_id,
            "state = 'done', progress = 1, stems = ?, wall_s = ?",
            (json.dumps(stems), wall_s),
        )

    def set_failed(self, job_id: str, error: str) -> None:
        self._update(job_id, "state = 'failed', error = ?", (error,))

    def delete(self, job_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            return cursor.rowcount > 0

    def requeue_unfinished(self) -> list[str]:
        """After a restart: jobs that were running go back to the queue with those that were
        waiting; returns their ids, oldest first (the order they run in)."""
        self._execute("UPDATE jobs SET state = 'queued', progress = 0 WHERE state = 'running'")
        rows = self._execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, id")
        return [row[0] for row in rows]

    def ids(self) -> set[str]:
        return {row[0] for row in self._execute("SELECT id FROM jobs")}
