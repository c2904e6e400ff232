"""The order of the server routes' shared preamble (server/deps.py), with a stand-in describer:
the token first, then a ready describer, then room in the work queue, and only then the form.

A body that is not a multipart form answers 400 once it is read, so a refusal with any other
status shows that the body was never read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from tests.conftest import isolated_settings

NOT_A_FORM = b"x" * 1000
FORM_ROUTES = ("/api/describe", "/api/alt-text", "/api/ask", "/api/gallery/people")
PHOTO = b"\xff\xd8\xff\xe0 not really a photo"


class StandIn:
    """Just enough of a describer for the preamble: what is loaded, which languages."""

    def __init__(self, faces: bool = True) -> None:
        self.faces = faces

    def status(self) -> dict[str, SimpleNamespace]:
        return {"caption": SimpleNamespace(loaded=False), "faces": SimpleNamespace(loaded=self.faces)}

    def languages(self) -> list:
        return []

    def describe(self, *_args):  # pragma: no cover - the preamble refuses before any work
        raise AssertionError("the preamble let a refused request through")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """An app that needs a token to describe, with a stand-in describer; its tokens."""
    from describe_local.server import create_app
    from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore

    settings = isolated_settings(tmp_path, require_token_for_describe=True, max_queue=1)
    store = TokenStore.open(settings.state_dir)
    tokens = {DESCRIBE: store.reset(DESCRIBE), ADMIN: store.reset(ADMIN)}
    with TestClient(create_app(settings, StandIn())) as client:  # type: ignore[arg-type]
        yield SimpleNamespace(client=client, state=client.app.state.server, tokens=tokens)


def _token(server: SimpleNamespace, path: str, right: bool = True) -> dict[str, str]:
    role = "admin" if path.startswith("/api/gallery") else "describe"
    return {"Authorization": f"Bearer {server.tokens[role] if right else 'wrong'}"}


def _post(server: SimpleNamespace, path: str, right_token: bool = True):
    """POST a body that is not a form, with the route's token (or a wrong one)."""
    headers = {"Content-Type": "text/plain", **_token(server, path, right_token)}
    return server.client.post(path, content=NOT_A_FORM, headers=headers)


def _fill_queue(server: SimpleNamespace) -> None:
    server.state.jobs._pending = server.state.jobs.max_pending


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_a_wrong_token_is_refused_first(server, path: str):
    server.state.describer = None  # loading
    _fill_queue(server)
    answer = _post(server, path, right_token=False)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_a_describer_still_loading_is_said_before_the_queue_is_looked_at(server, path: str):
    server.state.describer = None
    _fill_queue(server)
    answer = _post(server, path)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "still loading" in answer.json()["detail"]


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_models_that_failed_to_load_are_said_without_retry_after(server, path: str):
    server.state.describer, server.state.load_error = None, "no such model"
    answer = _post(server, path)
    assert answer.status_code == 503 and "Retry-After" not in answer.headers
    assert "could not load its models" in answer.json()["detail"]


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_a_full_queue_answers_503_before_the_form_is_read(server, path: str):
    _fill_queue(server)
    answer = _post(server, path)
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1
    assert "busy" in answer.json()["detail"]


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_with_room_in_the_queue_the_form_is_read(server, path: str):
    answer = _post(server, path)
    assert answer.status_code == 400 and "multipart/form-data" in answer.json()["detail"]


def test_adding_to_the_gallery_needs_faces_before_room_in_the_queue(server):
    server.state.describer = StandIn(faces=False)
    _fill_queue(server)
    path = "/api/gallery/people"
    answer = _post(server, path)
    assert answer.status_code == 503 and "face recognition is not loaded" in answer.json()["detail"]


def test_removing_from_the_gallery_needs_the_admin_token_then_a_ready_describer(server):
    server.state.describer = None
    path = "/api/gallery/people/Ada"
    assert server.client.delete(path, headers=_token(server, path, False)).status_code == 401
    describe_token = {"Authorization": f"Bearer {server.tokens['describe']}"}
    assert server.client.delete(path, headers=describe_token).status_code == 401
    answer = server.client.delete(path, headers=_token(server, path))
    assert answer.status_code == 503 and "still loading" in answer.json()["detail"]


def test_listing_the_gallery_needs_only_the_admin_token(server):
    server.state.describer = None
    _fill_queue(server)
    path = "/api/gallery/people"
    assert server.client.get(path).status_code == 401
    assert server.client.get(path, headers=_token(server, path)).json() == {"people": []}


def test_sharing_needs_no_describer_and_no_room_in_the_queue_but_the_describe_token(server):
    server.state.describer = None
    _fill_queue(server)
    photo = {"photo": ("p.jpg", PHOTO, "image/jpeg")}
    # Describing needs a token on this server, so sharing does too; refused before the body is read.
    refused = server.client.post("/share", files=photo, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/#shared=needs-token"
    shared = server.client.post("/share", files=photo, headers=_token(server, "/api/describe"),
                                follow_redirects=False)
    assert shared.status_code == 303 and shared.headers["location"].startswith("/#shared=")
    photo_id = shared.headers["location"].removeprefix("/#shared=")
    assert photo_id != "failed" and server.client.get(f"/api/shared/{photo_id}").content == PHOTO
    plain = {"Content-Type": "text/plain"}
    refused = server.client.post("/share", content=NOT_A_FORM, headers={**plain, **_token(server, "/api/describe")},
                                 follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/#shared=failed"


def test_the_form_fields_stay_documented(server):
    paths = server.client.get("/openapi.json").json()["paths"]
    expected = {
        ("/api/describe", "post"): {"photo", "lang", "voice", "detail", "stream"},
        ("/api/alt-text", "post"): {"photo", "max_chars", "names"},
        ("/api/ask", "post"): {"photo_id", "question"},
        ("/api/gallery/people", "post"): {"name", "photos"},
    }
    for (path, method), fields in expected.items():
        operation = paths[path][method]
        schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert set(schema["properties"]) == fields, path
        # The preamble's own inputs are not form fields nor documented parameters.
        assert not [p for p in operation.get("parameters", []) if p["name"].lower() == "authorization"], path
