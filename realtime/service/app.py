"""The service's HTTP side: the FastAPI application (the API and the page) and its uvicorn server.

Thread contract: uvicorn's event loop runs the ``async`` endpoints (the server-sent events,
which only poll the ``JobStore``); FastAPI runs the plain ``def`` endpoints (uploads, decoding
checks, stem files) in its thread pool, where they may block. The worker pool's pump thread
records the workers' news. No endpoint separates anything: that happens in the worker processes
(``workers.py``).

Why FastAPI on uvicorn: typed endpoints give the OpenAPI description (``/docs``) for free,
multipart uploads and streaming responses are built in, and uvicorn is one pure-Python process
to start, nothing to configure. ``/docs`` (Swagger UI) and ``/redoc`` load their scripts from
this server, never a CDN, so they work on a machine or a rehearsal-room network with no internet:
the files come from the ``fastapi-offline`` package (Swagger UI 5, which reads the OpenAPI 3.1
that FastAPI writes, and ReDoc), served at ``/docs-assets``. Every error a client can cause is
``{"detail": "<one sentence>"}`` with a 4xx status, which the page shows as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi_offline
import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ..io.atomic_file import atomic_path
from ..io.audio_file import (
    AudioFileError,
    audio_info,
    load_audio,
    read_blocks,
    reads_in_blocks,
    save_audio_atomic,
)
from ..runtime.catalog import bundled_model_file
from ..runtime.separation import AUDIO_SUFFIXES
from .jobs import FINISHED, Job, JobStore
from .workers import WorkerPool, input_path, job_folder, stems_folder

__all__ = ["ServiceConfig", "create_app", "default_data_folder", "serve"]

STATIC = Path(__file__).resolve().parent / "static"
#: Where the API documentation's scripts, style sheet and icon are served from (this server).
DOCS_ASSETS = "/docs-assets"


def docs_assets_folder() -> Path:
    """Swagger UI's and ReDoc's files as the ``fastapi-offline`` package ships them.

    Its ``static`` folder (``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``,
    ``favicon.png``) is the package's layout, not an API: the pin in pyproject.toml keeps it, and
    a test fetches every file ``/docs`` and ``/redoc`` name.
    """
    return Path(fastapi_offline.__file__).resolve().parent / "static"


#: Below this peak (-80 dBFS) a song is silence: there is nothing to separate.
SILENCE_PEAK = 1e-4
_CHUNK = 1 << 20
#: Server-sent events: how often a stream looks at the store, and sends a keep-alive comment.
_POLL_S = 0.25
_KEEPALIVE_S = 15.0


def default_data_folder() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "livestems" / "serve"


@dataclass(frozen=True)
class ServiceConfig:
    """What ``livestems serve`` was told.

    Attributes:
        data: the folder for the job database and the jobs' files.
        host, port: where to listen (127.0.0.1 unless told otherwise).
        token: when set, every ``/api`` call needs ``Authorization: Bearer <token>``.
        workers: worker processes, each separating one song at a time.
        max_upload_mb: the largest upload, in megabytes (10**6 bytes).
        max_seconds: the longest song, in seconds.
        cpu_threads: onnxruntime threads per worker.
    """

    data: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    workers: int = 2
    max_upload_mb: float = 200.0
    max_seconds: float = 20 * 60.0
    cpu_threads: int = 1

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1e6)


def _display_name(name: str | None) -> str:
    """The client's file name, for display only: its last part, printable, at most 200 chars."""
    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in last if ch.isprintable()).strip()
    return clean[:200] if clean not in ("", ".", "..") else "upload"


def _download_name(name: str) -> str:
    """A file name that is safe in a Content-Disposition header."""
    return re.sub(r"[^\w .()-]+", "_", name).strip() or "song"


def _song_label(job: Job) -> str:
    for suffix in sorted(AUDIO_SUFFIXES, key=len, reverse=True):
        if job.name.lower().endswith(suffix):
            return job.name[: -len(suffix)] or "song"
    return job.name


def _peak(path: Path, sample_rate: int) -> float:
    """The largest absolute sample, a block at a time where the format allows."""
    if reads_in_blocks(path):
        return max((float(np.abs(block).max()) for block in read_blocks(path, 1 << 16)), default=0)
    return float(np.abs(load_audio(path, sample_rate)).max(initial=0.0))


def create_app(config: ServiceConfig, *, start_workers: bool = True) -> FastAPI:
    """The application: the API under ``/api``, the page at ``/``, the workers in its lifespan.

    Args:
        config: the service's options.
        start_workers: ``False`` serves the API without separating (tests of bad input).
    """
    data = Path(config.data)
    model_file = bundled_model_file()
    model_name = model_file.stem if model_file is not None else "none"
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        (data / "jobs").mkdir(parents=True, exist_ok=True)
        store = JobStore(data / "jobs.sqlite3")
        # Folders without a row: uploads cut off when the server died, or deletions it missed.
        known = store.ids()
        for folder in (data / "jobs").iterdir():
            if folder.is_dir() and folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
        pool = WorkerPool(data, store, config.workers, config.cpu_threads)
        if start_workers:
            pool.start()
        state.update(store=store, pool=pool)
        try:
            yield
        finally:
            state["stopping"] = True
            if start_workers:
                await asyncio.to_thread(pool.stop)
            store.close()

    app = FastAPI(
        title="livestems",
        summary="Separate songs into vocals, drums, bass and other; play the stems in a browser.",
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from a CDN: ours below load them from here.
        docs_url=None,
        redoc_url=None,
    )

    def store() -> JobStore:
        found: JobStore = state["store"]
        return found

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith("/api") and config.token is not None:
            header = request.headers.get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else None
            # EventSource and download links cannot send headers: ?token= stands in for GETs.
            if given is None and request.method == "GET":
                given = request.query_params.get("token")
            if given is None:
                return JSONResponse(
                    {"detail": "This server needs a token: send 'Authorization: Bearer <token>' "
                     "with the token given to livestems serve --token."},
                    status_code=401,
                )  # fmt: skip
            if not secrets.compare_digest(given.encode(), config.token.encode()):
                return JSONResponse(
                    {"detail": "The token is wrong; ask whoever started the server for it."},
                    status_code=401,
                )
        if path == "/api/separations" and request.method == "POST":
            length = request.headers.get("content-length")
            # Refused before the body is read: the multipart parser would spool all of it.
            if (
                length is not None
                and length.isdigit()
                and int(length) > config.max_upload_bytes + _CHUNK
            ):
                return JSONResponse({"detail": _too_large(config)}, status_code=413)
        response: Response = await call_next(request)
        return response

    def job_or_404(job_id: str) -> Job:
        job = store().get(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if job is None:
            raise HTTPException(404, f"No separation has the id {job_id!r}.")
        return job

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # The documentation pages and /openapi.json need no token, as before: they describe the API
    # and hold no job; the calls "Try it out" makes are /api calls, which do.
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets_folder()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    # ReDoc's code asks cdn.redoc.ly for its "powered by" logo, and no option stops it; offline
    # the image fails and ReDoc takes it out, nothing else is missing.
    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,  # fonts.googleapis.com: the system's fonts instead
        )

    @app.get("/api/limits")
    def limits() -> dict[str, Any]:
        """The upload limits, the model and the formats read."""
        return {
            "max_upload_mb": config.max_upload_mb,
            "max_seconds": config.max_seconds,
            "model": model_name,
            "suffixes": list(AUDIO_SUFFIXES),
        }

    @app.post("/api/separations", status_code=202)
    def create_separation(file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
        """Upload a song (multipart field ``file``); answers 202 with the queued job."""
        name = _display_name(file.filename)
        suffix = next(
            (s for s in sorted(AUDIO_SUFFIXES, key=len, reverse=True) if name.lower().endswith(s)),
            "",
        )
        if not suffix:
            kinds = ", ".join(s.lstrip(".") for s in AUDIO_SUFFIXES)
            raise HTTPException(
                415, f'"{name}" is not a file livestems reads: send one of {kinds}.'
            )
        job_id = JobStore.new_id()
        folder = job_folder(data, job_id)
        source = input_path(data, job_id, suffix)
        try:
            folder.mkdir(parents=True)
            _receive(file, source, config)
            duration_s = _check_audio(source, name, config)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = store().insert(job_id, name, suffix, duration_s, model_name)
        state["pool"].submit(job.id, suffix)
        return JSONResponse(
            {"id": job.id, **job.public()},
            status_code=202,
            headers={"Location": f"/api/separations/{job.id}"},
        )

    @app.get("/api/separations")
    def list_separations() -> dict[str, Any]:
        """Every separation, newest first."""
        return {"separations": [job.public() for job in store().all_jobs()]}

    @app.get("/api/separations/{job_id}")
    def get_separation(job_id: str) -> dict[str, Any]:
        """One separation: state (queued, running, done, failed), progress 0-1, the error."""
        return job_or_404(job_id).public()

    @app.delete("/api/separations/{job_id}", status_code=204)
    def delete_separation(job_id: str) -> Response:
        """Forget a separation and delete its files (a running one stops at its next chunk)."""
        job = job_or_404(job_id)
        store().delete(job.id)
        shutil.rmtree(job_folder(data, job.id), ignore_errors=True)
        return Response(status_code=204)

    def finished_stem(job_id: str, stem: str) -> tuple[Job, Path]:
        job = job_or_404(job_id)
        if job.state != "done":
            raise HTTPException(
                409, f"The separation is {job.state}, not done: its stems are not there yet."
            )
        if stem not in job.stems:
            raise HTTPException(
                404, f"There is no stem {stem!r}: this separation has {', '.join(job.stems)}."
            )
        return job, stems_folder(data, job.id) / f"{stem}.wav"

    @app.get("/api/separations/{job_id}/stems/{stem}")
    def get_stem(job_id: str, stem: str, format: str = "wav") -> FileResponse:
        """One stem as wav (32-bit float) or, with ``?format=flac``, flac (24-bit)."""
        if format not in ("wav", "flac"):
            raise HTTPException(400, f"Unknown format {format!r}: ask for wav or flac.")
        job, wav = finished_stem(job_id, stem)
        path = wav
        if format == "flac":
            path = job_folder(data, job.id) / "out" / "flac" / f"{stem}.flac"
            if not path.exists():
                import soundfile as sf

                audio, rate = sf.read(wav, dtype="float32", always_2d=True)
                # 24-bit flac holds full scale; a stem louder than that is clipped, as asked.
                save_audio_atomic(path, np.clip(audio, -1.0, 1.0), rate)
        label = _download_name(f"{_song_label(job)} - {stem}.{format}")
        return FileResponse(path, media_type=f"audio/{format}", filename=label)

    @app.get("/api/separations/{job_id}/stems.zip")
    def get_zip(job_id: str) -> FileResponse:
        """Every stem (wav) in one zip file."""
        job = job_or_404(job_id)
        if job.state != "done":
            raise HTTPException(
                409, f"The separation is {job.state}, not done: its stems are not there yet."
            )
        path = job_folder(data, job.id) / "out" / "stems.zip"
        if not path.exists():
            # Stored, not deflated: float samples hardly compress, and stored is fast.
            with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive:
                for stem in job.stems:
                    archive.write(stems_folder(data, job.id) / f"{stem}.wav", f"{stem}.wav")
        label = _download_name(f"{_song_label(job)} - stems.zip")
        return FileResponse(path, media_type="application/zip", filename=label)

    async def event_stream(request: Request, job_id: str | None) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        last: str | None = None
        quiet_s = 0.0
        while not state.get("stopping"):
            if await request.is_disconnected():
                return
            if job_id is None:
                payload = json.dumps({"separations": [job.public() for job in store().all_jobs()]})
                finished = False
            else:
                job = store().get(job_id)
                payload = json.dumps(job.public() if job else {"id": job_id, "state": "deleted"})
                finished = job is None or job.state in FINISHED
            if payload != last:
                last, quiet_s = payload, 0.0
                yield f"data: {payload}\n\n"
            elif quiet_s >= _KEEPALIVE_S:
                quiet_s = 0.0
                yield ": keep-alive\n\n"
            if finished:
                return
            await asyncio.sleep(_POLL_S)
            quiet_s += _POLL_S

    sse_headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    @app.get("/api/events")
    async def all_events(request: Request) -> StreamingResponse:
        """Server-sent events: the whole job list, each time any job changes."""
        return StreamingResponse(
            event_stream(request, None), media_type="text/event-stream", headers=sse_headers
        )

    @app.get("/api/separations/{job_id}/events")
    async def job_events(request: Request, job_id: str) -> StreamingResponse:
        """Server-sent events: the job each time it changes, until it is done or failed."""
        job_or_404(job_id)
        return StreamingResponse(
            event_stream(request, job_id), media_type="text/event-stream", headers=sse_headers
        )

    app.state.service = state
    if config.token is not None:
        _declare_the_token(app)
    return app


def _declare_the_token(app: FastAPI) -> None:
    """With ``--token``, the description says every ``/api`` call needs a bearer token, so that
    /docs shows an Authorize button and "Try it out" sends the token (the guard checks it; the
    routes never see it, so FastAPI cannot infer the scheme from them)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {})["securitySchemes"] = {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token given to livestems serve --token",
                }
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/api"):
                    for operation in operations.values():
                        operation["security"] = [{"token": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def _too_large(config: ServiceConfig) -> str:
    return (
        f"The file is larger than this server's {config.max_upload_mb:g} MB limit; "
        "send a shorter or compressed song (flac, ogg, mp3)."
    )


def _receive(upload: UploadFile, target: Path, config: ServiceConfig) -> None:
    """Copy the upload to ``target`` (under the job's id), refusing it once it passes the limit."""
    size = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(_CHUNK):
            size += len(chunk)
            if size > config.max_upload_bytes:
                raise HTTPException(413, _too_large(config))
            out.write(chunk)
    if size == 0:
        raise HTTPException(422, "The file is empty (0 bytes); send a song.")


def _check_audio(source: Path, name: str, config: ServiceConfig) -> float:
    """The song's duration; 422 with one sentence when it is corrupt, too long or silent."""
    try:
        info = audio_info(source)
        if info.duration_s > config.max_seconds:
            raise HTTPException(
                422,
                f'"{name}" is {info.duration_s / 60:.1f} minutes long and this server takes songs '
                f"of up to {config.max_seconds / 60:g} minutes; cut it shorter.",
            )
        peak = _peak(source, info.sample_rate)
    except AudioFileError as error:
        # The sentence names the server's path; the client knows the file by its own name.
        message = str(error).replace(f'"{source}"', f'"{name}"').replace(str(source), name)
        raise HTTPException(422, message) from error
    if peak < SILENCE_PEAK:
        raise HTTPException(
            422,
            f'"{name}" is silent (it never rises above -80 dBFS): there is nothing to separate.',
        )
    return info.duration_s


def serve(config: ServiceConfig) -> None:
    """Run the service until Ctrl-C (blocks the calling thread, which becomes uvicorn's)."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="info",
        # An open page holds an event stream forever: give it a second, then close it.
        timeout_graceful_shutdown=1,
    )
