"""``livestems serve``'s API through FastAPI's test client, with real songs and real workers:
a song in, four stems out (wav, flac, zip), every bad request's own one-sentence error, the
token, file names that try to be paths, and the API documentation served from this server."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from livestems.realtime.service.app import ServiceConfig, create_app  # noqa: E402
from tests.helpers.service import song_bytes, wait_for_jobs  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def client(data: Path) -> Iterator[TestClient]:
    config = ServiceConfig(data=data, token=TOKEN, workers=2, max_upload_mb=2.0, max_seconds=10.0)
    with TestClient(create_app(config), headers=AUTH) as test_client:
        yield test_client


def _upload(client: TestClient, name: str, content: bytes) -> tuple[int, dict]:
    response = client.post("/api/separations", files={"file": (name, content, "audio/wav")})
    return response.status_code, response.json()


def test_a_song_becomes_four_stems_as_wav_flac_and_zip(client: TestClient, data: Path) -> None:
    status, job = _upload(client, "song.wav", song_bytes(2.5))
    assert status == 202, job
    assert job["state"] == "queued" and job["model"] == "ensemble-studio"
    done = wait_for_jobs(client, [job["id"]], 120)[job["id"]]
    assert done["state"] == "done", done
    assert done["stems"] == ["vocals", "drums", "bass", "other"]
    assert done["progress"] == 1.0 and done["duration_s"] == pytest.approx(2.5)
    listed = client.get("/api/separations").json()["separations"]
    assert job["id"] in [item["id"] for item in listed]
    total = None
    for stem in done["stems"]:
        response = client.get(f"/api/separations/{job['id']}/stems/{stem}")
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        audio, rate = sf.read(io.BytesIO(response.content), dtype="float32", always_2d=True)
        assert rate == 44100 and audio.shape == (round(2.5 * 44100), 2)
        total = audio if total is None else total + audio
    assert total is not None and np.abs(total).max() > 0.05  # the stems hold the song
    flac = client.get(f"/api/separations/{job['id']}/stems/vocals", params={"format": "flac"})
    assert flac.status_code == 200
    assert sf.info(io.BytesIO(flac.content)).format == "FLAC"
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/separations/{job['id']}/stems.zip").content)
    )
    assert sorted(archive.namelist()) == sorted(f"{stem}.wav" for stem in done["stems"])
    # the events stream ends with the finished job
    with client.stream("GET", f"/api/separations/{job['id']}/events") as events:
        lines = [line for line in events.iter_lines() if line.startswith("data:")]
    assert '"state": "done"' in lines[-1]
    assert client.delete(f"/api/separations/{job['id']}").status_code == 204
    assert client.get(f"/api/separations/{job['id']}").status_code == 404
    assert not (data / "jobs" / job["id"]).exists()


@pytest.mark.parametrize(
    ("name", "content", "status", "words"),
    [
        ("big.wav", song_bytes(30), 413, "larger than this server's 2 MB limit"),
        (
            "broken.wav",
            b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 50,
            422,
            'Cannot load "broken.wav"',
        ),
        ("silence.wav", song_bytes(2, gain=0.0), 422, '"silence.wav" is silent'),
        ("long.flac", song_bytes(11, format="FLAC"), 422, "takes songs of up to"),
        ("notes.txt", b"hello", 415, '"notes.txt" is not a file livestems reads'),
        ("empty.wav", b"", 422, "The file is empty"),
    ],
    ids=["oversized", "corrupt", "silent", "too-long", "unsupported", "empty"],
)
def test_bad_uploads_get_their_own_sentence(
    client: TestClient, data: Path, name: str, content: bytes, status: int, words: str
) -> None:
    got, body = _upload(client, name, content)
    assert got == status, body
    assert set(body) == {"detail"} and words in body["detail"]
    detail = body["detail"]
    assert detail.endswith(".") and detail.count(". ") == 0, detail  # one sentence
    assert str(data) not in detail  # never the server's own paths
    assert not [p for p in (data / "jobs").iterdir() if p.name not in _ids(client)]


def _ids(client: TestClient) -> set[str]:
    return {job["id"] for job in client.get("/api/separations").json()["separations"]}


def test_an_oversized_upload_is_refused_before_its_body(client: TestClient) -> None:
    # a Content-Length over the limit is answered before the multipart parser reads anything
    response = client.post(
        "/api/separations", content=b"x" * 10, headers={"Content-Length": str(50 * 10**6)}
    )
    assert response.status_code == 413, response.text


def test_the_token(client: TestClient) -> None:
    no_token = client.get("/api/separations", headers={"Authorization": ""})
    wrong = client.get("/api/separations", headers={"Authorization": "Bearer nope"})
    assert no_token.status_code == wrong.status_code == 401
    assert "needs a token" in no_token.json()["detail"]
    assert "token is wrong" in wrong.json()["detail"]
    posted = client.post(
        "/api/separations",
        files={"file": ("a.wav", song_bytes(1))},
        headers={"Authorization": "Bearer nope"},
    )
    assert posted.status_code == 401
    # links and EventSource cannot send headers: ?token= works for GETs, only the right one
    assert (
        client.get(
            "/api/limits", headers={"Authorization": ""}, params={"token": TOKEN}
        ).status_code
        == 200
    )
    assert (
        client.get("/api/limits", headers={"Authorization": ""}, params={"token": "x"}).status_code
        == 401
    )
    # the page itself needs no token (it asks for one)
    assert client.get("/", headers={"Authorization": ""}).status_code == 200


def test_file_names_are_never_paths(client: TestClient, data: Path, tmp_path: Path) -> None:
    before = set(data.parent.iterdir())
    names = ["../../escape.wav", "..\\..\\escape.wav", "/etc/passwd.wav", "a/../../b.wav", "..wav"]
    ids = []
    for name in names:
        status, job = _upload(client, name, song_bytes(1, seed=3))
        assert status == 202, job
        assert "/" not in job["name"] and "\\" not in job["name"]
        ids.append(job["id"])
        # the upload lies under the job's id, whatever it was called (``out/``: its stems)
        assert {p.name for p in (data / "jobs" / job["id"]).iterdir()} <= {"input.wav", "out"}
    assert set(data.parent.iterdir()) == before  # nothing written beside the data folder
    jobs = wait_for_jobs(client, ids, 120)
    assert all(job["state"] == "done" for job in jobs.values()), jobs
    for bad in ("../jobs.sqlite3", "..%2F..%2Fjobs.sqlite3", "vocals.wav"):
        response = client.get(f"/api/separations/{ids[0]}/stems/{bad}")
        assert response.status_code == 404, (bad, response.text)
    assert client.get("/api/separations/..%2F..%2Fetc/stems.zip").status_code == 404
    for job_id in ids:
        client.delete(f"/api/separations/{job_id}")


#: Every URL a documentation page loads: scripts, style sheets, icons, ReDoc's spec-url, and
#: Swagger UI's ``url: '/openapi.json'``.
_PAGE_URLS = re.compile(r"""(?:src|href|spec-url)=["']([^"']*)["']|\burl:\s*["']([^"']*)["']""")


@pytest.mark.parametrize(
    ("page", "needed"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
def test_the_api_docs_load_everything_from_this_server(
    client: TestClient, page: str, needed: set[str]
) -> None:
    # no token: the pages and the description hold no job (the /api calls they make need one)
    no_token = {"Authorization": ""}
    response = client.get(page, headers=no_token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # FastAPI's own pages name cdn.jsdelivr.net, fastapi.tiangolo.com and fonts.googleapis.com
    assert "cdn." not in html and "http" not in html
    urls = {first or second for first, second in _PAGE_URLS.findall(html)}
    assert {url.rsplit("/", 1)[-1] for url in urls} == needed, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url, headers=no_token)
        assert asset.status_code == 200, (url, asset.status_code)
        assert len(asset.content) > 0, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], asset.headers
            assert len(asset.content) > 100_000, url  # the whole bundle, not a stub
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), asset.headers
    description = client.get("/openapi.json", headers=no_token).json()
    assert "/api/separations" in description["paths"]
    # the token as a bearer scheme on every /api call: Swagger UI's Authorize button sends it
    scheme = description["components"]["securitySchemes"]["token"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for path, operations in description["paths"].items():
        for operation in operations.values():
            assert operation.get("security") == [{"token": []}], path
