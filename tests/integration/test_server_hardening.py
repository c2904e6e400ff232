"""The web server under abuse (issue 10): slow and idle connections, token guessing, foreign Host
headers, missing security headers, server paths in answers, spoken form fields, staged uploads."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from describe_local.server import create_app
from describe_local.server.running import ServerThread
from describe_local.settings import Settings

PHOTO = "faces/photos/obama_small.jpg"
SLOW_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # and never the blank line that ends it


def _photo(shared_data: Path) -> dict:
    return {"photo": ("obama_small.jpg", (shared_data / PHOTO).read_bytes(), "image/jpeg")}


@pytest.fixture(scope="module")
def server(make_server) -> tuple[ServerThread, str]:
    """A server with the default settings, and its admin token."""
    return make_server()


@contextlib.contextmanager
def _sockets(server: ServerThread, count: int, first: bytes) -> Iterator[list[socket.socket]]:
    """``count`` connections to ``server`` that each sent ``first`` and nothing more."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=5)
            sock.sendall(first)
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def _closed_by(sockets: list[socket.socket], deadline: float) -> int:
    """How many of ``sockets`` the server closed (EOF or reset) before ``deadline`` (monotonic)."""
    closed = 0
    for sock in sockets:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            while sock.recv(4096):  # a refusal may come first; then the end
                pass
        except TimeoutError:
            continue
        except OSError:  # reset
            pass
        closed += 1
    return closed


# -- point 4: connections that never finish their request ----------------------------------------


def test_incomplete_request_heads_are_closed_and_the_server_keeps_answering(make_server):
    # No cap in the way here: only the header timeout can close them.
    server, _ = make_server(header_timeout_s=1, max_connections=1000)
    t0 = time.monotonic()
    with _sockets(server, 200, SLOW_HEAD) as slow:
        start = time.perf_counter()
        health = httpx.get(f"{server.url}/api/health", timeout=2)
        assert health.status_code == 200 and time.perf_counter() - start < 2
        if time.monotonic() - t0 < 0.8:  # not at once but on time (unless this machine was too slow to tell)
            assert _closed_by(slow[:1], time.monotonic() + 0.05) == 0
        # Every one of them is closed by the server within the header timeout (and some slack).
        assert _closed_by(slow, t0 + 1 + 2.0) == 200
    assert httpx.get(f"{server.url}/api/health", timeout=2).status_code == 200


def test_beyond_max_connections_idle_ones_are_closed_first(make_server):
    server, _ = make_server(header_timeout_s=30, max_connections=20)
    with _sockets(server, 50, SLOW_HEAD) as slow:
        health = httpx.get(f"{server.url}/api/health", timeout=2)
        assert health.status_code == 200
        # The oldest idle connections made room; at most 20 are left open.
        assert _closed_by(slow, time.monotonic() + 1.0) >= 31


def test_beyond_max_connections_the_slowest_upload_makes_room(make_server):
    server, _ = make_server(max_connections=4, request_timeout_s=30)
    # Uploads in progress take connections too, but not for ever: a new connection closes the
    # slowest one rather than being refused, so that a few slow senders cannot lock everyone out.
    head = (
        b"POST /api/describe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
    )
    with _sockets(server, 4, head) as busy:
        time.sleep(0.3)
        health = httpx.get(f"{server.url}/api/health", timeout=5)
        assert health.status_code == 200
        assert _closed_by(busy, time.monotonic() + 0.5) >= 1


def test_a_head_on_its_way_is_not_closed_for_a_newer_connection(make_server):
    server, _ = make_server(max_connections=4, request_timeout_s=30)
    head = (
        b"POST /api/describe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
    )
    with _sockets(server, 4, head) as busy, _sockets(server, 1, b"") as (waiting,):
        time.sleep(0.2)
        # A newer connection past the cap: an upload makes room, not the one whose head is due.
        with _sockets(server, 1, b""):
            time.sleep(0.2)
            waiting.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = waiting.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        assert _closed_by(busy, time.monotonic() + 0.5) >= 2


def _trickle(server: ServerThread, heads: list[bytes], seconds: float) -> dict[str, int]:
    """Keep one socket per head sending its body a byte a second, reopening those the server
    closes, for ``seconds``; how many were opened and closed."""
    counts = {"opened": 0, "closed": 0}
    sockets: dict[int, socket.socket] = {}

    def open_one(i: int) -> None:
        try:
            sock = socket.create_connection((server.host, server.port), timeout=2)
            sock.sendall(heads[i])
            sockets[i] = sock
            counts["opened"] += 1
        except OSError:
            sockets.pop(i, None)

    for i in range(len(heads)):
        open_one(i)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i in range(len(heads)):
            sock = sockets.get(i)
            try:
                if sock is None:
                    raise OSError
                sock.sendall(b"x")
            except OSError:
                counts["closed"] += sock is not None
                if sock is not None:
                    sock.close()
                open_one(i)
        time.sleep(1.0)
    for sock in sockets.values():
        sock.close()
    return counts


def test_slow_bodies_on_every_body_route_do_not_starve_the_server(make_server):
    server, _ = make_server(request_timeout_s=120)
    routes = ["/api/describe", "/api/alt-text", "/api/ask", "/api/gallery/people", "/share"]
    heads = [(f"POST {routes[i % len(routes)]} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n"
              "Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n").encode() for i in range(150)]
    fds_before = len(os.listdir("/proc/self/fd"))
    result: dict[str, int] = {}
    attack = threading.Thread(target=lambda: result.update(_trickle(server, heads, 12.0)))
    attack.start()
    times, codes, fds = [], [], []
    # Each check on a connection of its own: past max_connections the server closes idle ones first,
    # and a kept-alive connection closed just as a request goes out is reset (a browser sends it again).
    with httpx.Client(base_url=server.url, timeout=5, headers={"Connection": "close"}) as client:
        while attack.is_alive():
            t0 = time.perf_counter()
            codes.append(client.get("/api/health").status_code)
            times.append(time.perf_counter() - t0)
            fds.append(len(os.listdir("/proc/self/fd")))
            time.sleep(0.1)
    attack.join()
    times.sort()
    assert set(codes) == {200}, codes
    # The attack runs in this process too (its thread reopens a hundred sockets a second beside the
    # server's): one check in a hundred may stall behind it (0.6 s seen once in CI), not more.
    assert times[len(times) * 95 // 100] < 0.1 and times[-2] < 0.5 and times[-1] < 2.0, times[-5:]
    # Trickles are cut (after their first seconds) and reopened: the server never holds them all.
    assert result["closed"] >= 100, result
    assert max(fds) - fds_before < 2 * 150 + 50  # both ends of every socket live in this process


def test_a_body_that_trickles_after_the_answer_is_cut_off(make_server):
    server, _ = make_server(header_timeout_s=1)
    # /api/health answers without reading the body (405); the client keeps trickling it.
    head = b"POST /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(head)
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < 6:
            try:
                sock.sendall(b"x")
            except OSError:
                cut = True
                break
            time.sleep(0.2)
        assert cut, "the server kept a trickling connection open"


# -- point 15: token guessing, Host, security headers, paths --------------------------------------


def test_wrong_tokens_from_one_address_get_429(make_server):
    server, token = make_server(token_failures_per_minute=3)
    people = "/api/gallery/people"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for _ in range(3):
            assert c.get(people, headers={"Authorization": "Bearer guess"}).status_code == 401
        refused = c.get(people, headers={"Authorization": "Bearer guess"})
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "too many" in refused.json()["detail"]
        # Locked out: even the right token is not tried now.
        assert c.get(people, headers={"Authorization": f"Bearer {token}"}).status_code == 429
    # Another address is not held back; asking without a token is not a guess.
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.url, timeout=10, transport=other) as c:
        for _ in range(5):
            assert c.get(people).status_code == 401
        assert c.get(people, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_only_allowed_hosts_are_answered(make_server):
    server, _ = make_server(allowed_hosts="describe.home, 127.0.0.1")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/api/health").status_code == 200  # Host: 127.0.0.1:PORT
        assert c.get("/api/health", headers={"Host": "describe.home"}).status_code == 200
        assert c.get("/api/health", headers={"Host": "DESCRIBE.home:8000"}).status_code == 200
        for host in ("evil.example", "describe.home.evil.example", "127.0.0.1.nip.io"):
            refused = c.get("/api/health", headers={"Host": host})
            assert refused.status_code == 400, host
            assert "host" in refused.json()["detail"].lower()
            assert refused.headers["x-content-type-options"] == "nosniff"
    anyone, _ = make_server(allowed_hosts="*")  # "*": any Host (the default is this machine's own names)
    assert httpx.get(f"{anyone.url}/api/health", headers={"Host": "evil.example"}, timeout=10).status_code == 200


def _assert_secure(response: httpx.Response, what: str) -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") == "no-referrer", what
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and headers.get("x-frame-options") == "DENY", what
    assert len(headers.get_list("content-security-policy")) == 1, what


def test_every_response_has_security_headers(server, shared_data: Path):
    server, _ = server
    with httpx.Client(base_url=server.url, timeout=120) as c:
        described = c.post("/api/describe", files=_photo(shared_data))
        assert described.status_code == 200
        responses = {
            "json": c.get("/api/health"),
            "described": described,
            "audio": c.get(described.json()["audio_url"]),
            "static": c.get("/static/app.css"),
            "page": c.get("/"),
            "docs": c.get("/docs"),
            "redoc": c.get("/redoc"),
            "docs asset": c.get("/static-offline-docs/swagger-ui-bundle.js"),
            "openapi": c.get("/openapi.json"),
            "404": c.get("/nowhere"),
            "415": c.post("/api/describe", files={"photo": ("a.txt", b"text", "text/plain")}),
            "403": c.get("/api/audio/x.mp3", params={"expires": "1", "sig": "z"}),
        }
    for what, response in responses.items():
        _assert_secure(response, what)
    assert responses["audio"].headers["content-type"] == "audio/mpeg"
    # JSON and audio load nothing; the page keeps its own policy.
    assert responses["json"].headers["content-security-policy"].startswith("default-src 'none'")
    assert "default-src 'self'" in responses["page"].headers["content-security-policy"]
    # /docs runs its one inline script by its hash, not by allowing any inline script.
    docs = responses["docs"]
    csp = docs.headers["content-security-policy"]
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
    assert inline and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def _no_paths(text: str, settings: Settings) -> None:
    for folder in (settings.models_dir, settings.known_faces, settings.state_dir, Path(settings.models_dir).parent):
        assert str(folder) not in text
    assert not re.search(r"(^|[\s'\"(])/(tmp|home|work|srv|root|usr|var)/", text), text


def test_no_server_paths_reach_anyone_but_the_admin(server, base_settings: Settings, shared_data: Path):
    server, token = server
    with httpx.Client(base_url=server.url, timeout=120) as c:
        health = c.get("/api/health")
        _no_paths(health.text, base_settings)
        assert "not installed" in health.json()["models"]["caption"]["detail"]  # still says what is wrong
        described = c.post("/api/describe", files=_photo(shared_data))
        _no_paths(described.text, base_settings)
        assert "not installed" in described.json()["errors"]["caption"]
        wrong = c.get("/api/health", headers={"Authorization": "Bearer wrong"})
        _no_paths(wrong.text, base_settings)
        full = c.get("/api/health", headers={"Authorization": f"Bearer {token}"})
        assert str(base_settings.models_dir) in full.json()["models"]["caption"]["detail"]


def test_error_bodies_hold_no_server_paths(base_settings: Settings, tmp_path: Path, shared_data: Path):
    # The gallery is a file: loading fails with a message that names its path.
    not_a_folder = tmp_path / "gallery-file"
    not_a_folder.write_text("x")
    settings = Settings.load(
        environ={}, **{**base_settings.as_dict(), "state_dir": tmp_path / "state", "known_faces": not_a_folder}
    )
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        deadline = time.monotonic() + 90
        while c.get("/api/health").json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        health = c.get("/api/health")
        assert health.json()["status"] == "failed" and "not a folder" in health.json()["error"]
        refused = c.post("/api/describe", files=_photo(shared_data))
        assert refused.status_code == 503 and "not a folder" in refused.json()["detail"]
        for text in (health.text, refused.text):
            assert str(not_a_folder) not in text and str(tmp_path) not in text
            _no_paths(text, settings)


# -- point 11: form fields that would be spoken ---------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"lang": "../../etc/passwd"},
        {"lang": "x" * 4096},
        {"lang": "x" * 5000},
        {"lang": "zz"},
        {"voice": "../../../etc/passwd"},
        {"voice": "v" * 4096},
        {"lang": "en", "voice": "en_US-nobody-medium"},
    ],
    ids=["lang-path", "lang-4k", "lang-5k", "lang-unknown", "voice-path", "voice-4k", "voice-unknown"],
)
def test_unknown_lang_or_voice_is_refused_unspoken(make_server, shared_data: Path, fields: dict):
    server, _ = make_server()  # its own, so that no audio clip is kept from another test
    with httpx.Client(base_url=server.url, timeout=120) as c:
        t0 = time.perf_counter()
        response = c.post("/api/describe", files=_photo(shared_data), data=fields)
        assert response.status_code == 422, response.text[:300]
        assert time.perf_counter() - t0 < 2  # refused before any describing
        assert "audio_url" not in response.json()
        assert "passwd" not in response.text and "xxxx" not in response.text and "vvvv" not in response.text
        assert c.get("/api/health").json()["audio_clips"] == 0


@pytest.mark.parametrize("fields", [{"lang": "EN"}, {"lang": "en-US"}, {"voice": "en_US-joe-medium"}])
def test_known_lang_and_voice_are_accepted(server, shared_data: Path, fields: dict):
    response = httpx.post(f"{server[0].url}/api/describe", files=_photo(shared_data), data=fields, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["language"].startswith("en") and response.json()["voice"] == "en_US-joe-medium"


# -- point 9: photos staged for enrolment ---------------------------------------------------------


def test_stale_enrolment_staging_is_cleaned_at_start(make_server, base_settings: Settings, tmp_path: Path):
    state_dir = tmp_path / "state"
    stale = state_dir / "staging" / "enrol-crashed"
    stale.mkdir(parents=True)
    (stale / "01-face.jpg").write_bytes(b"someone's face")
    legacy = Path(base_settings.known_faces) / ".upload-crashed"  # where older versions staged
    legacy.mkdir(parents=True)
    (legacy / "01-face.jpg").write_bytes(b"someone's face")
    make_server(state_dir=state_dir)
    assert not stale.exists() and not legacy.exists()
    assert not list((state_dir / "staging").iterdir())


def test_a_crash_during_enrolment_leaves_no_photos(server, shared_data: Path, monkeypatch):
    from describe_local.see.faces.gallery import Gallery

    server, token = server
    staged: list[Path] = []

    def crash(self, name, photos):
        staged.extend(photos)
        assert all(p.is_file() for p in photos)
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(Gallery, "add", crash)
    files = [("photos", ("a.jpg", (shared_data / PHOTO).read_bytes(), "image/jpeg"))]
    response = httpx.post(
        f"{server.url}/api/gallery/people", data={"name": "Somebody"}, files=files,
        headers={"Authorization": f"Bearer {token}"}, timeout=60,
    )  # fmt: skip
    assert response.status_code == 500
    assert staged and not any(p.exists() for p in staged)
    assert not staged[0].is_relative_to(Path(server.app.state.server.settings.known_faces))


def test_concurrent_slow_sockets_and_real_requests(make_server, shared_data: Path):
    """Slow sockets arriving all the time do not keep real requests out."""
    server, _ = make_server(header_timeout_s=1, max_connections=30)
    stop = threading.Event()

    def flood() -> None:
        held: list[socket.socket] = []
        while not stop.is_set():
            with contextlib.suppress(OSError):
                sock = socket.create_connection((server.host, server.port), timeout=2)
                sock.sendall(SLOW_HEAD)
                held.append(sock)
            time.sleep(0.01)
        for sock in held:
            sock.close()

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for _ in range(3):
                assert c.post("/api/describe", files=_photo(shared_data)).status_code == 200
    finally:
        stop.set()
        flooder.join(30)
