"""Adding a person over HTTP with a batch of photos, some of them refused: the good ones are
added, each refused one is named with its reason, and only a batch with none good is an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

PHOTOS = "faces/photos"
GOOD = ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"]
TWO_FACES = ("faces/groups", "2008_001009.jpg")
NO_FACE = ("faces/groups", "dogs.jpg")
TOO_BIG = (PHOTOS, "tests_obama3.jpg")  # 3.3 MP, over this server's limit
MAX_PIXELS = 3_000_000


@pytest.fixture(scope="module")
def server(make_server):
    return make_server(max_image_pixels=MAX_PIXELS)


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0].url, timeout=180) as c:
        yield c


@pytest.fixture(scope="module")
def admin(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server[1]}"}


def upload(shared_data: Path, folder: str, name: str) -> tuple[str, tuple[str, bytes, str]]:
    return ("photos", (name, (shared_data / folder / name).read_bytes(), "image/jpeg"))


def staged(server) -> list[Path]:
    return list((Path(server[0].app.state.server.settings.state_dir) / "staging").glob("*"))


def test_a_batch_adds_its_good_photos_and_names_each_refused_one(
    client: httpx.Client, server, admin: dict, shared_data: Path
):
    files = [
        upload(shared_data, PHOTOS, GOOD[0]),
        upload(shared_data, *TWO_FACES),
        ("photos", ("notes.jpg", b"this is not a photo", "image/jpeg")),
        upload(shared_data, PHOTOS, GOOD[1]),
        upload(shared_data, *NO_FACE),
        upload(shared_data, *TOO_BIG),
    ]
    try:
        response = client.post("/api/gallery/people", headers=admin, data={"name": "Barack Obama"}, files=files)
        assert response.status_code == 201, response.text
        data = response.json()
        assert (data["name"], data["added"], data["photos"]) == ("Barack Obama", 2, 2)
        reasons = {r["photo"]: r["reason"] for r in data["refused"]}
        assert list(reasons) == [TWO_FACES[1], "notes.jpg", NO_FACE[1], TOO_BIG[1]]  # in the batch's order
        assert reasons[TWO_FACES[1]] == "2 faces found" and reasons[NO_FACE[1]] == "no face found"
        assert reasons["notes.jpg"].startswith("not an image"), reasons
        assert "over the limit of 3 megapixels" in reasons[TOO_BIG[1]], reasons
        assert not any("/" in r for r in reasons.values()), reasons  # no server paths
        assert client.get("/api/gallery/people", headers=admin).json() == {
            "people": [{"name": "Barack Obama", "photos": 2}]
        }
        assert staged(server) == []
        # The describer knows him at once.
        test_photo = {"photo": ("obama.jpg", (shared_data / PHOTOS / "knn_test__obama1.jpg").read_bytes())}
        seen = client.post("/api/describe", files=test_photo).json()
        assert seen["people"] == ["Barack Obama"], seen
    finally:
        client.delete("/api/gallery/people/Barack Obama", headers=admin)


def test_a_batch_with_no_good_photo_is_refused_whole_naming_each(
    client: httpx.Client, server, admin: dict, shared_data: Path
):
    files = [upload(shared_data, *TWO_FACES), upload(shared_data, *NO_FACE)]
    response = client.post("/api/gallery/people", headers=admin, data={"name": "Somebody"}, files=files)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("nothing was added, all 2 photos were refused: "), detail
    assert f"{TWO_FACES[1]}: 2 faces found; {NO_FACE[1]}: no face found" in detail, detail
    assert response.json()["refused"] == [  # the same, as values
        {"photo": TWO_FACES[1], "reason": "2 faces found"}, {"photo": NO_FACE[1], "reason": "no face found"}
    ]
    assert client.get("/api/gallery/people", headers=admin).json() == {"people": []}
    assert staged(server) == []


def test_a_refused_name_is_said_once_not_once_per_photo(client: httpx.Client, admin: dict, shared_data: Path):
    files = [upload(shared_data, PHOTOS, GOOD[0]), upload(shared_data, PHOTOS, GOOD[1])]
    response = client.post("/api/gallery/people", headers=admin, data={"name": "../escape"}, files=files)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.count("cannot be a person's name") == 1, detail
    assert GOOD[0] not in detail  # not a refusal of a photo
    assert client.get("/api/gallery/people", headers=admin).json() == {"people": []}
