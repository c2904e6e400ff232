"""``POST /api/ask`` on a real server: questions about a described photo kept in memory for a while,
answered by a tiny random OFA checkpoint imported into the store; the short or detailed description;
the Web Share Target that hands a shared photo to the page."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from describe_local.audio import decode_audio
from describe_local.pipeline import Describer
from describe_local.server import create_app
from describe_local.server.running import ServerThread
from describe_local.settings import Settings

PHOTOS = "faces/photos"
ONE = "obama_small.jpg"
NO_MODEL = "No model here can answer questions about photos"


class Clock:
    """Unix time that a test can move forward (photo and audio expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def ofa_settings(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    """An empty store and gallery, with a tiny OFA checkpoint imported as from a USB stick."""
    import make_tiny_models

    from describe_local.store.importing import import_model
    from describe_local.store.local import ModelStore

    root = tmp_path_factory.mktemp("ask")
    usb = make_tiny_models.write_ofa(root / "usb" / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)
    name = import_model(ModelStore.open(root / "models"), usb).name
    return make_settings(root, caption_model=name, beam=1, device="cpu")


@pytest.fixture(scope="module")
def ofa_describer(ofa_settings: Settings, shared_data: Path) -> Iterator[Describer]:
    with Describer.load(ofa_settings) as d:
        yield d


@pytest.fixture(scope="module")
def serve(ofa_settings: Settings, ofa_describer: Describer, tmp_path_factory: pytest.TempPathFactory):
    """Start a server on the OFA describer with some settings changed; returns it and its clock.
    With ``require_token_for_describe``, the token is in ``server.token``."""
    from describe_local.server.auth import DESCRIBE, TokenStore

    servers: list[ServerThread] = []

    def start(**overrides: Any) -> tuple[ServerThread, Clock]:
        settings = replace(ofa_settings, state_dir=tmp_path_factory.mktemp("state"), **overrides)
        token = TokenStore.open(settings.state_dir).reset(DESCRIBE) if settings.require_token_for_describe else None
        clock = Clock()
        server = ServerThread(create_app(settings, ofa_describer, clock=clock)).start()
        server.token = token  # type: ignore[attr-defined]
        servers.append(server)
        return server, clock

    yield start
    for server in servers:
        server.stop()


def describe(url: str, shared_data: Path, name: str = ONE, folder: str = PHOTOS, **data: str) -> dict[str, Any]:
    photo = (name, (shared_data / folder / name).read_bytes(), "image/jpeg")
    response = httpx.post(f"{url}/api/describe", files={"photo": photo}, data=data, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def ask(url: str, photo_id: str | None, question: str | None, **kwargs: Any) -> httpx.Response:
    fields = {k: v for k, v in {"photo_id": photo_id, "question": question}.items() if v is not None}
    # multipart, as the page sends it (a dummy file part forces httpx to use multipart/form-data)
    return httpx.post(f"{url}/api/ask", files={"_": (None, b"")}, data=fields, timeout=120, **kwargs)


def test_a_question_about_a_described_photo_is_answered_and_spoken(
    serve, shared_data: Path, caplog: pytest.LogCaptureFixture
):
    server, _ = serve()
    described = describe(server.url, shared_data)
    photo_id = described["photo_id"]
    assert len(photo_id) >= 32 and re.fullmatch(r"[\w-]+", photo_id)  # secrets.token_urlsafe(24): 192 bits
    assert 0 < described["photo_expires"] - time.time() <= 300  # ask_ttl_s

    question = "what colour is the jacket of the man?"
    with caplog.at_level("DEBUG"):
        for _ in range(2):  # the photo is kept: more than one question
            answered = ask(server.url, photo_id, question)
            assert answered.status_code == 200, answered.text
            body = answered.json()
            assert body["question"] == question and body["answer"].strip()
            assert {"decode", "answer", "speech", "encode", "total"} <= set(body["timings_ms"])
            assert body["audio_url"].startswith("/api/audio/") and "sig=" in body["audio_url"]
            audio = httpx.get(server.url + body["audio_url"], timeout=30)
            samples, rate = decode_audio(audio.content)
            assert audio.headers["content-type"] == "audio/mpeg" and len(samples) / rate > 0.3
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "jacket" not in logged and photo_id not in logged  # neither the question nor the id in the logs
    state = Path(server.app.state.server.settings.state_dir)
    assert [p.name for p in state.rglob("*") if p.is_file()] == []  # no photo on disk: memory only


def test_an_expired_or_pushed_out_photo_answers_410(serve, shared_data: Path):
    server, clock = serve(ask_ttl_s=60, ask_max_photos=2)
    first = describe(server.url, shared_data)["photo_id"]
    assert ask(server.url, first, "is there a dog?").status_code == 200
    clock.offset = 61  # past ask_ttl_s
    gone = ask(server.url, first, "is there a dog?")
    assert gone.status_code == 410 and "no longer kept" in gone.json()["detail"]
    assert "take or choose it again" in gone.json()["detail"]

    clock.offset = 0
    kept = [describe(server.url, shared_data)["photo_id"] for _ in range(3)]  # one more than ask_max_photos
    assert ask(server.url, kept[0], "is there a dog?").status_code == 410  # the oldest went first
    assert ask(server.url, kept[2], "is there a dog?").status_code == 200


@pytest.mark.parametrize(
    ("photo_id", "question", "status", "words"),
    [
        (secrets.token_urlsafe(24), "is there a dog?", 404, "no photo has this id"),
        ("../../etc/passwd", "is there a dog?", 404, "no photo has this id"),
        ("x" * 5000, "is there a dog?", 400, "too long"),
        (None, "is there a dog?", 400, "photo_id"),
        ("kept", None, 400, "ask a question"),
        ("kept", "   ", 400, "ask a question"),
        ("kept", "why " * 200, 400, "too long"),
    ],
    ids=["unknown", "path", "huge-id", "no-id", "no-question", "blank-question", "long-question"],
)
def test_unknown_ids_and_bad_questions_are_refused(
    serve, shared_data: Path, photo_id: str | None, question: str | None, status: int, words: str
):
    server, _ = serve()
    if photo_id == "kept":
        photo_id = describe(server.url, shared_data)["photo_id"]
    t0 = time.perf_counter()
    refused = ask(server.url, photo_id, question)
    assert refused.status_code == status, refused.text
    assert words in refused.json()["detail"] and "passwd" not in refused.text
    assert time.perf_counter() - t0 < 2  # refused before any model runs


def test_asking_needs_the_token_describing_needs(serve, shared_data: Path):
    server, _ = serve(require_token_for_describe=True)
    auth = {"Authorization": f"Bearer {server.token}"}
    photo = (ONE, (shared_data / PHOTOS / ONE).read_bytes(), "image/jpeg")
    described = httpx.post(f"{server.url}/api/describe", files={"photo": photo}, headers=auth, timeout=120).json()
    refused = ask(server.url, described["photo_id"], "is there a dog?")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert ask(server.url, described["photo_id"], "is there a dog?", headers=auth).status_code == 200


def test_without_a_model_that_answers_questions_the_answer_says_so(make_server, shared_data: Path):
    # make_server (tests/integration/conftest.py): the real models, and no caption model in the store.
    server, _ = make_server()
    described = describe(server.url, shared_data)
    assert described["photo_id"] is None  # nothing kept for nothing
    refused = ask(server.url, secrets.token_urlsafe(24), "is there a dog?")
    assert refused.status_code == 503 and refused.json()["detail"] == NO_MODEL
    assert "describe-local" not in refused.text and "/" not in refused.json()["detail"]


def test_a_caption_model_that_cannot_answer_turns_questions_off(settings: Settings, shared_data: Path):
    """A captioner without question answering (e.g. ViT-GPT2): the first question learns it, and
    from then on no photo is kept."""

    class Captioner:
        name = "vit-gpt2:stand-in"

        def caption(self, image: Image.Image) -> str:
            return "a man in a suit"

    with Describer(settings, caption=Captioner()) as describer, ServerThread(create_app(settings, describer)) as s:
        photo_id = describe(s.url, shared_data)["photo_id"]
        assert photo_id
        refused = ask(s.url, photo_id, "is there a dog?")
        assert refused.status_code == 503 and refused.json()["detail"] == NO_MODEL
        assert "--caption-model" not in refused.text
        assert describe(s.url, shared_data)["photo_id"] is None
        assert len(s.app.state.photos) == 0


def test_ask_max_photos_0_keeps_no_photo(serve, shared_data: Path):
    server, _ = serve(ask_max_photos=0)
    assert describe(server.url, shared_data)["photo_id"] is None
    assert ask(server.url, secrets.token_urlsafe(24), "is there a dog?").status_code == 503


def test_detailed_reads_all_the_text_and_short_the_first_lines(serve, shared_data: Path):
    server, _ = serve()
    page = ("eurotext.tif", "ocr/pages")
    short = describe(server.url, shared_data, *page, detail="short")
    detailed = describe(server.url, shared_data, *page, detail="detailed")
    default = describe(server.url, shared_data, *page)
    assert "more line" in short["text"], short["text"]
    assert "more line" not in detailed["text"] and len(detailed["text"]) > len(short["text"])
    assert default["text"] == short["text"]
    photo = (ONE, (shared_data / PHOTOS / ONE).read_bytes(), "image/jpeg")
    refused = httpx.post(f"{server.url}/api/describe", files={"photo": photo}, data={"detail": "everything"})
    assert refused.status_code == 422 and "short or detailed" in refused.json()["detail"]


def test_a_shared_photo_waits_in_memory_for_the_page_once(serve, shared_data: Path):
    server, clock = serve()
    data = (shared_data / PHOTOS / ONE).read_bytes()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        shared = c.post("/share", files={"photo": (ONE, data, "image/jpeg")})
        assert shared.status_code == 303
        location = shared.headers["location"]
        assert location.startswith("/#shared=")  # in the fragment: never in a log or a Referer
        photo_id = location.split("=", 1)[1]
        fetched = c.get(f"/api/shared/{photo_id}")
        assert fetched.status_code == 200 and fetched.content == data
        assert fetched.headers["cache-control"] == "no-store"
        assert c.get(f"/api/shared/{photo_id}").status_code == 410  # handed out once
        assert c.get(f"/api/shared/{secrets.token_urlsafe(24)}").status_code == 404

        late = c.post("/share", files={"photo": (ONE, data, "image/jpeg")}).headers["location"].split("=", 1)[1]
        clock.offset = 61
        assert c.get(f"/api/shared/{late}").status_code == 410

        for bad in [{"data": {"text": "no file"}, "files": {"_": (None, b"")}}, {"content": b"not a form"}]:
            refused = c.post("/share", **bad)
            assert refused.status_code == 303 and refused.headers["location"] == "/#shared=failed"
    state = Path(server.app.state.server.settings.state_dir)
    assert [p.name for p in state.rglob("*") if p.is_file()] == []  # the shared photos stayed in memory
