"""Odd forms on every body route, with a stand-in describer: a clear 4xx with a real limit, never a 500."""

from __future__ import annotations

import pytest

from .test_server_preamble import FORM_ROUTES, StandIn, _token, server  # noqa: F401 - the fixture

LONG = "b" * 300


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_a_boundary_too_long_is_400_not_500(server, path: str):  # noqa: F811 - the fixture
    body = f"--{LONG}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--{LONG}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={LONG}", **_token(server, path)}
    answer = server.client.post(path, content=body, headers=headers)
    assert answer.status_code == 400 and "boundary" in answer.json()["detail"]


@pytest.mark.parametrize("value", ["²", "١٢٠", "12.5", "-5"])
def test_max_chars_takes_ascii_whole_numbers_only(server, value: str):  # noqa: F811
    answer = server.client.post("/api/alt-text", files={"photo": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")},
                                data={"max_chars": value}, headers=_token(server, "/api/alt-text"))
    assert answer.status_code == 422 and "whole number" in answer.json()["detail"]


def test_an_upload_over_a_small_limit_says_the_limit_in_words(server):  # noqa: F811
    answer = server.client.post("/api/ask", files={"photo_id": ("x", b"x" * 70_000)}, data={"question": "why?"},
                                headers=_token(server, "/api/ask"))
    assert answer.status_code == 413 and "65.5 KB" in answer.json()["detail"], answer.text


def test_a_file_that_is_not_a_photo_names_the_formats_once(server):  # noqa: F811
    from describe_local.images import SEND_A_PHOTO
    from describe_local.pipeline import Describer

    server.state.describer = Describer(server.state.settings)  # no stages: the photo is only decoded
    answer = server.client.post("/api/describe", files={"photo": ("x.pdf", b"%PDF-1.4 hello", "application/pdf")},
                                headers=_token(server, "/api/describe"))
    detail = answer.json()["detail"]
    assert answer.status_code == 415 and detail.count("send a photo") == 1 and detail.endswith(SEND_A_PHOTO)


def test_a_streamed_error_names_no_server_folder(server):  # noqa: F811
    from describe_local.errors import GalleryError
    from describe_local.results import Said

    folder = server.state.settings.known_faces

    class FailingLater(StandIn):
        """Says its first part, then fails as a gallery turned into a file would."""

        def tell(self, photo: bytes, options):
            def parts():
                yield Said("I see one person.", "en")
                raise GalleryError(f"the gallery {folder} is not a folder; point --gallery at a folder")
            return parts()

    server.state.describer = FailingLater()
    answer = server.client.post("/api/describe", files={"photo": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")},
                                data={"stream": "true"}, headers=_token(server, "/api/describe"))
    assert answer.status_code == 200 and answer.json()["stream"] is True
    events = server.client.get(answer.json()["events_url"]).text
    assert "event: sentence" in events and "event: error" in events and "is not a folder" in events
    assert str(folder) not in events and str(folder.parent) not in events
