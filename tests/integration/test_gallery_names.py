"""A gallery folder whose name is not UTF-8 (a Latin-1 "José" copied from an older system):
listed, removed, recognised and put into JSON with its name escaped (``Jos\\xe9``), never a
traceback; an MP3 named after a photo with such a name is where the JSON says it is."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from describe_local.cli import main
from describe_local.gallery import open_gallery
from describe_local.settings import Settings

LATIN1 = os.fsencode("Jos") + b"\xe9"  # "José" in Latin-1: not UTF-8
SHOWN = "Jos\\xe9"


@pytest.fixture
def known_faces(tmp_path: Path, shared_data: Path) -> Path:
    folder = tmp_path / "known_faces"
    folder.mkdir()
    person = os.path.join(os.fsencode(folder), LATIN1)
    os.mkdir(person)
    chip = sorted((shared_data / "faces/johns").iterdir())[0]
    shutil.copy(sorted(chip.glob("*.jpg"))[0], os.path.join(person, LATIN1 + b".jpg"))
    return folder


def test_the_gallery_gives_the_name_escaped_and_takes_it_back(known_faces: Path):
    gallery = open_gallery(Settings.load(environ={}, known_faces=known_faces))
    assert gallery.people() == [SHOWN]
    assert [p.name for p in gallery.photo_paths(SHOWN)] == [os.fsdecode(LATIN1 + b".jpg")]
    names, encodings = gallery.known_encodings()
    assert names == [SHOWN] and encodings.shape == (1, 128)
    json.dumps(names, ensure_ascii=False).encode("utf-8")  # what a JSON response does
    assert gallery.remove(SHOWN) == 1
    assert os.listdir(os.fsencode(known_faces)) in ([], [b".encodings.json"])


def test_faces_list_and_remove_on_the_command_line(known_faces: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["faces", "list", "--gallery", str(known_faces)]) == 0
    listed = capsys.readouterr().out
    assert SHOWN in listed and "1 photo" in listed
    assert main(["faces", "remove", SHOWN, "--gallery", str(known_faces)]) == 0
    assert f"Removed {SHOWN} (1 photo)" in capsys.readouterr().out
    assert LATIN1 not in os.listdir(os.fsencode(known_faces))


def test_the_web_gallery_lists_recognises_speaks_and_removes_the_name(make_server, base_settings, shared_data: Path):
    import httpx

    from describe_local.audio import decode_audio

    photos = shared_data / "faces/photos"
    person = os.path.join(os.fsencode(base_settings.known_faces), LATIN1)
    os.makedirs(person)
    shutil.copy(photos / "knn_train__obama__obama.jpg", os.path.join(person, LATIN1 + b".jpg"))
    server, token = make_server()
    admin = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        listed = client.get("/api/gallery/people", headers=admin)
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"people": [{"name": SHOWN, "photos": 1}]}
        photo = ("obama.jpg", (photos / "knn_test__obama1.jpg").read_bytes(), "image/jpeg")
        seen = client.post("/api/describe", files={"photo": photo})
        assert seen.status_code == 200, seen.text
        assert seen.json()["people"] == [SHOWN]
        audio = client.get(seen.json()["audio_url"])
        assert audio.status_code == 200 and len(decode_audio(audio.content)[0]) > 0
        removed = client.delete(f"/api/gallery/people/{quote(SHOWN, safe='')}", headers=admin)  # Jos%5Cxe9
        assert removed.status_code == 200, removed.text
        assert removed.json() == {"name": SHOWN, "removed_photos": 1}
        assert client.get("/api/gallery/people", headers=admin).json() == {"people": []}


def test_describe_speaks_the_escaped_name_and_its_json_names_the_real_mp3(
        tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]):
    photos = shared_data / "faces/photos"
    gallery = tmp_path / "known_faces"
    person = os.path.join(os.fsencode(gallery), LATIN1)
    os.makedirs(person)
    shutil.copy(photos / "knn_train__obama__obama.jpg", os.path.join(person, b"a.jpg"))
    photo = os.path.join(os.fsencode(tmp_path), LATIN1 + b".jpg")  # the photo's own name is not UTF-8 either
    shutil.copy(photos / "knn_test__obama1.jpg", photo)
    out = tmp_path / "out"
    assert main(["describe", os.fsdecode(photo), "--gallery", str(gallery), "-o", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["people"] == [SHOWN]
    assert Path(record["audio"]).is_file(), record["audio"]
    assert Path(record["audio"]).name == f"{SHOWN}.mp3"
