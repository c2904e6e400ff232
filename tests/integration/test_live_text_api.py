"""POST /api/live-text and /api/read on a real server with the real text stage: frames from a shared
sign, each line new once per session, guidance for text cut at an edge, frames never kept, one
frame per session at a time, the same token as describing, and bad frames refused in one line."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import pytest
from live_text_clips import cut_left_clip, page_clip, sign_clip
from PIL import Image

SIGN = "ocr/signs/example3.png"
PAGE = "ocr/pages/phototest.tif"


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> dict[str, bytes]:
    sign, page = Image.open(shared_data / SIGN), page_clip(Image.open(shared_data / PAGE))
    return {"whole": jpeg(sign_clip(sign).frames[-1]), "cut-left": jpeg(cut_left_clip(sign).frames[-1]),
            "page entering": jpeg(page.frames[0]), "page whole": jpeg(page.frames[-1])}


@pytest.fixture(scope="module")
def kept_server(make_server, tmp_path_factory: pytest.TempPathFactory):
    """A server that keeps uploads (``keep_uploads``): frames must still never be kept."""
    return make_server(keep_uploads=True, state_dir=tmp_path_factory.mktemp("live-state"))


def post_frame(client: httpx.Client, frame: bytes, session: str, **data: str) -> httpx.Response:
    return client.post("/api/live-text", files={"frame": ("frame.jpg", frame, "image/jpeg")},
                       data={"session": session, **data})


def test_each_line_is_new_once_per_session_and_frames_are_never_kept(kept_server, frames):
    server, _ = kept_server
    with httpx.Client(base_url=server.url, timeout=120) as client:
        first = post_frame(client, frames["whole"], "session-one")
        assert first.status_code == 200, first.text
        answer = first.json()
        said = " ".join(answer["new"]).upper()
        assert "MARKET" in said and "SPEED" in said, answer
        assert [line["text"] for line in answer["lines"]] and all(len(line["box"]) == 4 for line in answer["lines"])
        again = post_frame(client, frames["whole"], "session-one").json()
        assert again["new"] == [] and again["lines"]
        other = post_frame(client, frames["whole"], "session-two").json()
        assert sorted(other["new"]) == sorted(answer["new"])  # another listener hears it all
    uploads = Path(server.app.state.server.settings.state_dir) / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), "a frame was kept on disk"


def test_text_cut_at_the_left_edge_gets_guidance_to_the_left(make_server, frames):
    server, _ = make_server()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        answers = [post_frame(client, frames["cut-left"], "session-cut").json() for _ in range(2)]
    guided = [a for a in answers if a["guidance"]]
    # The first frame says any whole lines (never guidance over them); guidance comes by the second.
    assert guided and guided[0]["aim"] == "left" and guided[0]["guidance"] == "Move the phone left.", answers
    cut_words = {line["text"] for a in answers for line in a["lines"]}
    assert all(word.upper() not in {"BASRURKAR", "MARKET"} for word in cut_words)  # cut lines are not read out


def test_a_page_frame_says_whether_the_page_is_wholly_in_view(make_server, frames):
    server, _ = make_server()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        entering = post_frame(client, frames["page entering"], "session-page", page="true").json()
        whole = post_frame(client, frames["page whole"], "session-page", page="true").json()
        plain = post_frame(client, frames["page whole"], "session-plain").json()
    assert entering["page_ready"] is False and whole["page_ready"] is True and plain["page_ready"] is None


def test_one_frame_of_a_session_at_a_time(make_server, frames):
    server, _ = make_server()
    statuses: list[int] = []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        threads = [threading.Thread(target=lambda: statuses.append(
            post_frame(client, frames["whole"], "session-busy").status_code)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses)[0] == 200 and 429 in statuses, statuses


def test_bad_frames_and_sessions_are_refused_in_one_line(make_server, frames):
    server, _ = make_server()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        not_image = client.post("/api/live-text", files={"frame": ("f.jpg", b"not an image")},
                                data={"session": "session-bad"})
        assert not_image.status_code == 415 and "\n" not in not_image.json()["detail"]
        for session in ("", "short", "bad session id!", "x" * 65):
            refused = post_frame(client, frames["whole"], session)
            assert refused.status_code == 422, (session, refused.text)
        none = client.post("/api/live-text", files={"photo": ("p.jpg", frames["whole"])},
                           data={"session": "session-none"})
        assert none.status_code == 400 and "field 'frame'" in none.json()["detail"]


def test_the_describe_token_is_needed_where_describing_needs_one(make_server, frames):
    server, token = make_server(describe_token=True, require_token_for_describe=True)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        assert post_frame(client, frames["whole"], "session-token").status_code == 401
        ok = client.post("/api/live-text", files={"frame": ("frame.jpg", frames["whole"], "image/jpeg")},
                         data={"session": "session-token"}, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        read = client.post("/api/read", files={"photo": ("p.jpg", frames["whole"], "image/jpeg")})
        assert read.status_code == 401


def test_read_gives_all_the_text_in_reading_order(make_server, shared_data: Path):
    server, _ = make_server()
    page = shared_data / "ocr/pages/phototest.tif"
    with httpx.Client(base_url=server.url, timeout=120) as client:
        answer = client.post("/api/read", files={"photo": (page.name, page.read_bytes())})
    assert answer.status_code == 200, answer.text
    found = answer.json()["text_found"]
    assert found.startswith("This is a lot of 12 point text") and "lazy fox" in found
    assert answer.json()["audio_url"]


def test_speak_says_a_short_text_in_a_server_voice(make_server):
    from describe_local.audio import decode_audio

    server, _ = make_server()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        answer = client.post("/api/speak", files={"text": (None, "SPEED LIMIT. MARKET.")})
        assert answer.status_code == 200, answer.text
        mp3 = client.get(answer.json()["audio_url"])
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        pcm, rate = decode_audio(mp3.content)
        assert len(pcm) / rate > 0.5  # it says something, for more than half a second
        assert client.post("/api/speak", files={"text": (None, " ")}).status_code == 400
        too_long = client.post("/api/speak", files={"text": (None, "x" * 1001)})
        assert too_long.status_code == 400 and "1000" in too_long.json()["detail"]
        assert client.post("/api/speak", files={"text": (None, "hello"), "lang": (None, "xx")}).status_code == 422
