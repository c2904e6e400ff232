"""The web server on loopback: real models, real photos, a real uvicorn on a free port."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from describe_local.audio import decode_audio
from describe_local.server import create_app
from describe_local.server.audio_store import AudioStore
from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore
from describe_local.server.logs import keep_names_out_of_logs
from describe_local.server.running import ServerThread
from describe_local.server.signing import SignatureError, UrlSigner
from describe_local.settings import Settings

PHOTOS = "faces/photos"
OBAMA_TRAIN = ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"]
OBAMA_TEST = "knn_test__obama1.jpg"
NAMELESS_PART = b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"
GROUP = "knn_test__obama_and_biden.jpg"  # three faces; the text stage reads it too: seconds of work


# -- fixtures -------------------------------------------------------------------------------------


# base_settings, describer and make_server: tests/integration/conftest.py


@pytest.fixture(scope="module")
def server(make_server) -> tuple[ServerThread, str]:
    return make_server()


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0].url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def admin(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server[1]}"}


def photo_file(shared_data: Path, name: str, folder: str = PHOTOS) -> tuple[str, bytes, str]:
    return (name, (shared_data / folder / name).read_bytes(), "image/jpeg")


def describe(client: httpx.Client, shared_data: Path, name: str, **kwargs: Any) -> httpx.Response:
    return client.post("/api/describe", files={"photo": photo_file(shared_data, name)}, **kwargs)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def pending(client: httpx.Client) -> int:
    return client.get("/api/health").json()["queue"]["pending"]


# -- the main path --------------------------------------------------------------------------------


def test_health_lists_the_loaded_models(client: httpx.Client):
    health = client.get("/api/health").json()
    assert health["status"] == "ready"
    models = health["models"]
    assert models["faces"]["loaded"] and models["text"]["loaded"] and models["speech"]["loaded"]
    assert models["speech"]["name"] == "en_US-joe-medium"
    assert not models["caption"]["loaded"] and "not installed" in models["caption"]["detail"]
    assert health["queue"] == {"pending": 0, "max": 4}


def test_describe_returns_the_description_and_a_signed_mp3(client: httpx.Client, shared_data: Path):
    response = describe(client, shared_data, GROUP, data={"lang": "en"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["unknown_faces"] == 3 and data["people"] == []
    assert "3 people" in data["text"]
    assert {"decode", "faces", "text", "speech", "encode", "total"} <= set(data["timings_ms"])
    assert data["errors"]["caption"].startswith("not installed")
    assert "path" not in data  # nothing about the server's files

    assert data["audio_url"].startswith("/api/audio/") and "sig=" in data["audio_url"]
    assert 0 < data["audio_expires"] - time.time() <= 600
    audio = client.get(data["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    samples, rate = decode_audio(audio.content)
    words = len(data["text"].split())
    assert 1.5 <= words / (len(samples) / rate) <= 5.0  # the audio speaks this text

    # Byte ranges, which Safari needs to play audio.
    size = len(audio.content)
    for header, status, first, last in [
        ("bytes=10-19", 206, 10, 19),
        ("bytes=100-", 206, 100, size - 1),
        ("bytes=-50", 206, size - 50, size - 1),
        (f"bytes=0-{size + 1000}", 206, 0, size - 1),
        ("bytes=1-2,5-6", 200, 0, size - 1),  # several ranges: the whole file
    ]:
        part = client.get(data["audio_url"], headers={"Range": header})
        assert part.status_code == status, header
        assert part.content == audio.content[first : last + 1], header
        if status == 206:
            assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
    beyond = client.get(data["audio_url"], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    head = client.head(data["audio_url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == size and not head.content


@pytest.fixture(scope="module")
def audio_url(client: httpx.Client, shared_data: Path) -> str:
    response = describe(client, shared_data, "obama_small.jpg")
    assert response.status_code == 200, response.text
    return response.json()["audio_url"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda u: u.replace("/api/audio/", "/api/audio/x"),  # another clip
        lambda u: u.replace("expires=", "expires=9"),  # lives longer
        lambda u: u[:-1] + ("0" if u[-1] != "0" else "1"),  # signature changed
        lambda u: u.split("?")[0],  # not signed at all
        lambda u: u.replace("sig=", "sig=%C3%A9"),  # not even hex
    ],
    ids=["path", "expiry", "signature", "unsigned", "non-ascii"],
)
def test_a_changed_audio_url_is_refused(client: httpx.Client, audio_url: str, tamper):
    assert client.get(audio_url).status_code == 200
    response = client.get(tamper(audio_url))
    assert response.status_code == 403, response.text
    assert "describe the photo again" in response.json()["detail"]


class MovableClock:
    """Unix time that a test moves forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_an_expired_audio_url_is_refused_and_the_clip_is_gone(make_server, shared_data: Path):
    clock = MovableClock()
    server, _ = make_server(audio_ttl_s=60, clock=clock)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        data = describe(c, shared_data, "obama_small.jpg").json()
        assert c.get(data["audio_url"]).status_code == 200
        clock.now = data["audio_expires"] + 1
        response = c.get(data["audio_url"])
        assert response.status_code == 403
        assert "expired" in response.json()["detail"]
        assert c.get("/api/health").json()["audio_clips"] == 0  # deleted, not only refused


# -- limits and bad input -------------------------------------------------------------------------


def test_an_oversize_upload_is_refused_with_413(make_server, shared_data: Path):
    server, _ = make_server(max_upload_bytes=200_000)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        big = describe(c, shared_data, "tests_obama3.jpg")  # 596 kB
        assert big.status_code == 413
        assert "200 kB" in big.json()["detail"] or "limit" in big.json()["detail"]

        # Without a Content-Length the server counts as it reads, and still stops.
        def chunks() -> Iterator[bytes]:
            for _ in range(50):
                yield b"x" * 10_000

        streamed = c.post(
            "/api/describe", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert streamed.status_code == 413
        assert describe(c, shared_data, "obama_small.jpg").status_code == 200  # 33 kB is fine


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"this is text, not a photo\n", "not an image"),
        ("empty.jpg", b"", "empty"),
        ("cut.jpg", None, "truncated"),
    ],
)
def test_a_file_that_is_not_a_photo_gets_415(
    client: httpx.Client, shared_data: Path, name: str, content: bytes | None, message: str
):
    if content is None:  # a real photo cut in half
        whole = (shared_data / PHOTOS / OBAMA_TEST).read_bytes()
        content = whole[: len(whole) // 2]
    response = client.post("/api/describe", files={"photo": (name, content, "image/jpeg")})
    assert response.status_code == 415, response.text
    detail = response.json()["detail"]
    assert message in detail and "<upload>" not in detail


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"garbage", "headers": {"Content-Type": "multipart/form-data; boundary=zz"}}, 400),
        ({"content": b"{}", "headers": {"Content-Type": "application/json"}}, 400),
        ({"content": b"", "headers": {}}, 400),
        ({"files": {"picture": ("a.jpg", b"123", "image/jpeg")}}, 400),  # wrong field
        ({"data": {"photo": "not a file"}}, 400),
        ({"files": [("photo", ("a.jpg", b"1", "image/jpeg")), ("photo", ("b.jpg", b"2", "image/jpeg"))]}, 400),
        ({"content": NAMELESS_PART, "headers": {"Content-Type": "multipart/form-data; boundary=b"}}, 400),
    ],
    ids=["bad-multipart", "json", "empty", "wrong-field", "text-not-file", "two-photos", "nameless-part"],
)
def test_malformed_requests_get_a_clear_error(client: httpx.Client, kwargs: dict, status: int):
    response = client.post("/api/describe", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_malformed_requests_do_not_take_the_server_down(client: httpx.Client, server, shared_data: Path):
    import socket

    host, port = server[0].host, server[0].port
    junk = [
        b"GARBAGE\r\n\r\n",
        b"POST /api/describe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /api/describe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
        b"Content-Type: multipart/form-data; boundary=q\r\n\r\n--q\r\n",  # then hang up mid-body
        b"GET /api/audio/%00%ff.mp3?expires=-1&sig=zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ]
    for raw in junk:
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                sock.recv(4096)
    assert client.get("/api/gallery/people/%2e%2e%2f%2e%2e").status_code in {401, 404, 405}
    assert client.get("/api/health").json()["status"] == "ready"
    assert describe(client, shared_data, "obama_small.jpg").status_code == 200


def test_a_full_queue_answers_503_with_retry_after(make_server, shared_data: Path):
    server, _ = make_server(max_queue=1)
    results: dict[str, httpx.Response] = {}
    def send_slow() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as own:
            results["slow"] = describe(own, shared_data, GROUP)

    with httpx.Client(base_url=server.url, timeout=120) as c:
        slow = threading.Thread(target=send_slow)
        slow.start()
        wait_for(lambda: pending(c) == 1)
        refused = describe(c, shared_data, "obama_small.jpg")
        slow.join()
        assert pending(c) == 0
        # Once the slot is free again, the same request goes through.
        later = describe(c, shared_data, "obama_small.jpg")
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "busy" in refused.json()["detail"]
    assert results["slow"].status_code == 200
    assert later.status_code == 200


def test_a_request_over_its_time_budget_gets_504_and_frees_its_slot(make_server, shared_data: Path):
    server, _ = make_server(request_timeout_s=0.2)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        response = describe(c, shared_data, GROUP)
        assert response.status_code == 504
        assert "longer than 0.2 s" in response.json()["detail"]
        # The work cannot be interrupted: it keeps its slot until it ends, then frees it.
        wait_for(lambda: pending(c) == 0)


def test_describing_can_require_a_token(make_server, shared_data: Path):
    server, describe_token = make_server(require_token_for_describe=True, describe_token=True)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        assert c.get("/api/health").json()["describe_needs_token"] is True
        refused = describe(c, shared_data, "obama_small.jpg")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert "access token" in refused.json()["detail"]
        wrong = describe(c, shared_data, "obama_small.jpg", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = describe(c, shared_data, "obama_small.jpg", headers={"Authorization": f"Bearer {describe_token}"})
        assert ok.status_code == 200, ok.text
        # The describe token opens nothing else.
        gallery = c.get("/api/gallery/people", headers={"Authorization": f"Bearer {describe_token}"})
        assert gallery.status_code == 401


def test_a_trickling_upload_is_given_up(make_server, shared_data: Path):
    server, _ = make_server(request_timeout_s=0.5)
    photo = (shared_data / PHOTOS / "obama_small.jpg").read_bytes()

    def slowly() -> Iterator[bytes]:
        for i in range(0, len(photo), 4096):
            time.sleep(0.1)
            yield photo[i : i + 4096]

    with httpx.Client(base_url=server.url, timeout=120) as c:
        form = {"Content-Type": "multipart/form-data; boundary=b"}
        response = c.post("/api/describe", content=slowly(), headers=form)
        assert response.status_code == 408
        assert "took longer" in response.json()["detail"]
        assert c.get("/api/health").json()["status"] == "ready"


def test_models_that_fail_to_load_are_reported(base_settings: Settings, tmp_path: Path, shared_data: Path):
    # No describer given: the app loads the models itself, in the background, and
    # here the settings ask for an OCR language that Tesseract does not have.
    settings = Settings.load(
        environ={}, **{**base_settings.as_dict(), "state_dir": tmp_path, "ocr_languages": "eng+xyz"}
    )
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        wait_for(lambda: c.get("/api/health").json()["status"] != "loading")
        health = c.get("/api/health").json()
        assert health["status"] == "failed" and "xyz" in health["error"]
        response = describe(c, shared_data, "obama_small.jpg")
        assert response.status_code == 503
        assert "could not load its models" in response.json()["detail"] and "xyz" in response.json()["detail"]


# -- the gallery ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/gallery/people"), ("POST", "/api/gallery/people"), ("DELETE", "/api/gallery/people/Anyone")],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic abc", "Bearer"])
def test_the_gallery_needs_the_admin_token(client: httpx.Client, method: str, path: str, auth: str | None):
    headers = {"Authorization": auth} if auth else {}
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert "admin token" in response.json()["detail"]


def test_gallery_add_list_recognise_remove(client: httpx.Client, admin: dict, shared_data: Path):
    files = [("photos", photo_file(shared_data, name)) for name in OBAMA_TRAIN]
    added = client.post("/api/gallery/people", headers=admin, data={"name": "Barack Obama"}, files=files)
    assert added.status_code == 201, added.text
    assert added.json() == {"name": "Barack Obama", "added": 2, "photos": 2}
    assert client.get("/api/gallery/people", headers=admin).json() == {
        "people": [{"name": "Barack Obama", "photos": 2}]
    }

    # The describer sees the new person at once.
    seen = describe(client, shared_data, OBAMA_TEST).json()
    assert seen["people"] == ["Barack Obama"]
    assert "I recognize one person: Barack Obama." in seen["text"]

    removed = client.delete("/api/gallery/people/barack obama", headers=admin)
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"name": "Barack Obama", "removed_photos": 2}
    assert client.get("/api/gallery/people", headers=admin).json() == {"people": []}
    assert describe(client, shared_data, OBAMA_TEST).json()["people"] == []
    assert client.delete("/api/gallery/people/Barack Obama", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("folder", "name", "message"),
    [
        ("faces/groups", "2008_001009.jpg", "2 faces found"),
        ("faces/groups", "dogs.jpg", "no face found"),
        ("ocr/signs", "english.png", "no face found"),
    ],
)
def test_gallery_refuses_photos_without_exactly_one_face(
    client: httpx.Client, admin: dict, shared_data: Path, folder: str, name: str, message: str
):
    files = {"photos": photo_file(shared_data, name, folder)}
    response = client.post("/api/gallery/people", headers=admin, data={"name": "Somebody"}, files=files)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail and name in detail  # the user's file name, not a temporary path
    assert ".upload-" not in detail and "enrol-" not in detail and "staging" not in detail
    assert client.get("/api/gallery/people", headers=admin).json() == {"people": []}


@pytest.mark.parametrize(
    ("data", "files", "message"),
    [
        ({"name": "../escape"}, True, "cannot be a person's name"),
        ({"name": "   "}, True, "name"),
        ({"name": "Somebody"}, False, "photo"),
        ({"name": "Somebody"}, "text", "not an image"),
    ],
    ids=["escaping-name", "blank-name", "no-photo", "not-a-photo"],
)
def test_gallery_refuses_bad_names_and_files(
    client: httpx.Client,
    server,
    admin: dict,
    shared_data: Path,
    base_settings: Settings,
    data: dict,
    files: Any,
    message: str,
):
    if files is True:
        upload = {"photos": photo_file(shared_data, OBAMA_TRAIN[0])}
    elif files == "text":
        upload = {"photos": ("notes.txt", b"hello", "text/plain")}
    else:
        upload = None
    response = client.post("/api/gallery/people", headers=admin, data=data, files=upload)
    assert response.status_code in {400, 422}, response.text
    assert message in response.json()["detail"]
    assert client.get("/api/gallery/people", headers=admin).json() == {"people": []}
    # The staged uploads are gone too.
    staging = Path(server[0].app.state.server.settings.state_dir) / "staging"
    assert not list(staging.glob("*")) and not list(Path(base_settings.known_faces).glob(".upload-*"))


# -- privacy --------------------------------------------------------------------------------------


def test_uploads_are_not_written_and_logs_hold_no_names_or_text(
    client: httpx.Client, admin: dict, shared_data: Path, base_settings: Settings, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    keep_names_out_of_logs(debug=False)  # as `describe-local serve` does
    files = [("photos", photo_file(shared_data, name)) for name in OBAMA_TRAIN]
    added = client.post("/api/gallery/people", headers=admin, data={"name": "Barack Obama"}, files=files)
    assert added.status_code == 201
    try:
        data = describe(client, shared_data, OBAMA_TEST).json()
        assert data["people"] == ["Barack Obama"]
        # The server's own loggers (uvicorn's access log is off in the server; pytest
        # captures it anyway) -- and describe_local's, the pipeline's included.
        ours = [r for r in caplog.records if r.name.startswith(("describe_local", "uvicorn.error"))]
        logged = "\n".join(f"{r.name} {r.getMessage()}" for r in ours)
        assert "POST /api/describe 200" in logged  # there is a log, and it is about timings
        assert "Obama" not in logged and "obama" not in logged
        assert data["text"] not in logged
    finally:
        assert client.delete("/api/gallery/people/Barack Obama", headers=admin).status_code == 200
        keep_names_out_of_logs(debug=True)  # back to the default for the other tests
    state_dir = Path(base_settings.state_dir)
    assert not (state_dir / "uploads").exists()


def test_a_large_upload_never_touches_the_disk(
    client: httpx.Client, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Starlette's own form parser would spool an upload over 1 MB to a temporary
    # file; this one is 4 MB (the group photo as PNG). Such a file has no name in
    # the folder (O_TMPFILE), so the opening itself is watched, not only the folder.
    from PIL import Image

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    opened: list[str] = []
    real_open = os.open

    def watched_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(private)):
            opened.append(str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", watched_open)
    png = io.BytesIO()
    Image.open(shared_data / PHOTOS / GROUP).save(png, "PNG")
    assert png.tell() > 2_000_000
    response = client.post("/api/describe", files={"photo": ("group.png", png.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["unknown_faces"] == 3
    assert opened == [] and list(private.rglob("*")) == []


def test_keep_uploads_keeps_them(make_server, shared_data: Path):
    server, _ = make_server(keep_uploads=True)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        assert describe(c, shared_data, "obama_small.jpg").status_code == 200
    kept = list((Path(server.app.state.server.settings.state_dir) / "uploads").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == (shared_data / PHOTOS / "obama_small.jpg").read_bytes()


# -- pages and docs -------------------------------------------------------------------------------


def test_languages_offered_are_those_installed(client: httpx.Client):
    # This store has no translation models: English only, and it is the default.
    assert client.get("/api/languages").json() == {"default": "en", "languages": [{"code": "en", "name": "English"}]}


def test_pages_and_docs_are_served_from_this_server(client: httpx.Client):
    index = client.get("/")
    assert index.status_code == 200
    assert 'accept="image/*" capture="environment"' in index.text
    assert "Content-Security-Policy" in index.headers
    for page in ("/", "/gallery", "/docs"):
        html = client.get(page).text
        assert "http://" not in html and "https://" not in html, page  # no CDN
    assert '"validatorUrl": null' in client.get("/docs").text  # Swagger UI's online validator is off
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    for icon in manifest.json()["icons"]:
        assert client.get(icon["src"]).status_code == 200
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and "javascript" in sw.headers["content-type"]
    api = client.get("/openapi.json").json()
    assert {"/api/describe", "/api/health", "/api/gallery/people"} <= set(api["paths"])
    assert "multipart/form-data" in api["paths"]["/api/describe"]["post"]["requestBody"]["content"]


# -- the parts on their own -----------------------------------------------------------------------


def test_signer_refuses_changes_and_expiry():
    signer = UrlSigner()
    url = signer.sign("/api/audio/abc.mp3", 60, now=1000)
    path, query = url.split("?")
    params = dict(p.split("=") for p in query.split("&"))
    signer.verify(path, params["expires"], params["sig"], now=1059)
    with pytest.raises(SignatureError, match="expired"):
        signer.verify(path, params["expires"], params["sig"], now=1060)
    with pytest.raises(SignatureError, match="damaged"):
        signer.verify("/api/audio/abd.mp3", params["expires"], params["sig"], now=1000)
    with pytest.raises(SignatureError, match="damaged"):
        UrlSigner().verify(path, params["expires"], params["sig"], now=1000)  # another server's secret


def test_audio_store_forgets_expired_clips_and_stays_bounded():
    store = AudioStore(ttl_s=10, max_bytes=25)
    first, _ = store.put(b"a" * 10, now=0)
    second, _ = store.put(b"b" * 10, now=5)
    assert store.get(first, now=9) == b"a" * 10
    assert store.get(first, now=10) is None and store.get(second, now=10) == b"b" * 10
    store.put(b"c" * 10, now=11)
    store.put(b"d" * 10, now=12)  # over 25 bytes: the oldest goes
    assert store.get(second, now=12) is None and len(store) == 2 and store.total_bytes == 20
    assert store.sweep(now=100) == 0 and store.total_bytes == 0


def test_admin_token_is_stored_hashed(tmp_path: Path):
    store = TokenStore.open(tmp_path)
    token = store.ensure(ADMIN)
    assert token and store.ensure(ADMIN) is None  # made once
    stored = (tmp_path / "tokens.json").read_text()
    assert token not in stored
    assert (tmp_path / "tokens.json").stat().st_mode & 0o777 == 0o600
    again = TokenStore.open(tmp_path)
    assert again.check(ADMIN, token) and not again.check(ADMIN, token + "x") and not again.check(DESCRIBE, token)


def test_serve_command_prints_the_admin_token_once_and_serves(tmp_path: Path, shared_data: Path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"DESCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"), "DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path),
           "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "faces"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    outputs = []
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "describe_local", "serve", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
                except httpx.HTTPError:
                    time.sleep(0.2)
                    continue
                if health["status"] == "ready":
                    break
                assert health["status"] == "loading"
                time.sleep(0.2)
            if not outputs:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/api/describe",
                    files={"photo": photo_file(shared_data, "obama_small.jpg")},
                    timeout=60,
                )
                assert reply.status_code == 200
        finally:
            proc.terminate()
            outputs.append(proc.communicate(timeout=30)[0])
    assert "Admin token" in outputs[0] and "Admin token" not in outputs[1]
    token = outputs[0].split("Admin token", 1)[1].split(":", 1)[1].split()[0]
    assert TokenStore.open(tmp_path / "state").check(ADMIN, token)
