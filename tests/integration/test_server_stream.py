"""Streamed descriptions on a real server: the first words before the last, the same speech."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from describe_local.audio import decode_audio

PHOTOS = "faces/photos"
GROUP = "knn_test__kit_with_rose.jpg"  # a face, and the text of the backdrop behind her: two parts at least


@pytest.fixture(scope="module")
def client(make_server) -> Iterator[httpx.Client]:
    server, _token = make_server()
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def _post(client: httpx.Client, shared_data: Path, name: str, **data: str) -> httpx.Response:
    photo = (name, (shared_data / PHOTOS / name).read_bytes(), "image/jpeg")
    return client.post("/api/describe", files={"photo": photo}, data=data)


def _events(client: httpx.Client, url: str) -> list[tuple[str, dict, float]]:
    """Every (event, data, seconds since asked) of an SSE stream, until it ends."""
    events, started = [], time.perf_counter()
    with client.stream("GET", url) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: ")), time.perf_counter() - started))
    return events


def test_a_streamed_description_tells_each_part_then_the_whole(client: httpx.Client, shared_data: Path):
    _post(client, shared_data, GROUP)  # the first of the server's life says what is off in full
    plain = _post(client, shared_data, GROUP).json()

    started = time.perf_counter()
    answer = _post(client, shared_data, GROUP, stream="true")
    answered = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    urls = answer.json()
    assert urls["stream"] is True and "sig=" in urls["audio_url"] and "sig=" in urls["events_url"]

    audio: dict[str, object] = {}

    def listen() -> None:  # as a player would, from the moment the answer came
        t0 = time.perf_counter()
        with client.stream("GET", urls["audio_url"]) as response:
            audio["type"] = response.headers["content-type"]
            chunks = []
            for chunk in response.iter_bytes():
                audio.setdefault("first_s", time.perf_counter() - t0)
                chunks.append(chunk)
            audio["bytes"] = b"".join(chunks)

    player = threading.Thread(target=listen)
    player.start()
    events = _events(client, urls["events_url"])
    player.join(60)

    names = [name for name, _, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"sentence"} and len(names) >= 3, names
    done = events[-1][1]
    sentences = [data["text"] for name, data, _ in events if name == "sentence"]
    # In speaking order: the people, then the text; together, the whole description.
    assert " ".join(sentences) == done["text"] == plain["text"]
    assert sentences[0].startswith("I see") and "It reads:" in sentences[-1], sentences
    assert {key for key in plain if key not in ("timings_ms", "audio_url", "audio_expires")} <= set(done)
    assert done["stages"]["caption"]["status"] == "off" and done["unknown_faces"] == plain["unknown_faces"]
    assert answered < events[-1][2] + answered  # the answer came before the description was done

    assert audio["type"] == "audio/mpeg" and audio["first_s"] < events[-1][2]
    streamed, rate = decode_audio(audio["bytes"])
    whole, whole_rate = decode_audio(client.get(done["audio_url"]).content)
    plain_audio, _ = decode_audio(client.get(plain["audio_url"]).content)
    assert rate == whole_rate
    # The same speech as this description's whole MP3 (the same PCM, one encoder; the stream has no
    # header to trim the encoder's padding, hence the tolerance of a frame or two) ...
    assert abs(_speech(streamed) - _speech(whole)) / _speech(whole) < 0.01, (_speech(streamed), _speech(whole))
    # ... and as a plain POST's, spoken anew: Piper draws its durations at random (about 2% apart
    # from one run to the next on the same text), so this bound is looser.
    assert abs(_speech(streamed) - _speech(plain_audio)) / _speech(plain_audio) < 0.04


def _speech(samples) -> int:
    """Samples from the first sound to the last (the padding an encoder adds is silence)."""
    loud = (abs(samples) > 1e-3).nonzero()[0]
    return int(loud[-1] - loud[0] + 1) if len(loud) else 0


def test_a_streamed_photo_that_cannot_be_decoded_is_refused_at_once(client: httpx.Client):
    response = client.post("/api/describe", files={"photo": ("x.jpg", b"not a photo", "image/jpeg")},
                           data={"stream": "true"})
    assert response.status_code == 415 and "audio_url" not in response.text


def test_a_changed_live_url_is_refused(client: httpx.Client, shared_data: Path):
    urls = _post(client, shared_data, "knn_test__obama1.jpg", stream="1").json()
    assert client.get(urls["audio_url"].replace("sig=", "sig=0")).status_code == 403
    _events(client, urls["events_url"])  # let it finish

