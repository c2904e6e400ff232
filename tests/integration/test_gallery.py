"""The known-faces gallery and the ``faces`` CLI, with the real face models and real photos.

Small photos keep this quick: dlib's 150x150 "johns" chips (one face each),
``obama_small.jpg`` (320x240), a 360x480 Pascal VOC photo with two faces, and
photos with no face at all (``dogs.jpg``, skimage's coffee).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from describe_local.cli import main
from describe_local.errors import GalleryError
from describe_local.see.faces.detect import FaceModels
from describe_local.see.faces.gallery import CACHE_NAME, Gallery, check_name
from describe_local.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def face_models() -> FaceModels:
    return FaceModels.load()


@pytest.fixture(scope="module")
def plain_settings() -> Settings:
    return Settings.load(environ={})


@pytest.fixture(scope="module")
def chips(shared_data: Path) -> dict[str, list[Path]]:
    """dlib's aligned face chips, one folder per person."""
    folder = shared_data / "faces/johns"
    return {p.name: sorted(p.glob("*.jpg")) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def two_faces(shared_data: Path) -> Path:
    return shared_data / "faces/groups/2008_001009.jpg"


@pytest.fixture(scope="module")
def no_face(shared_data: Path) -> Path:
    return shared_data / "faces/groups/dogs.jpg"


@pytest.fixture
def gallery(tmp_path: Path, plain_settings: Settings, face_models: FaceModels) -> Gallery:
    return Gallery.open(tmp_path / "known_faces", plain_settings, face_models)


def reopen(gallery: Gallery) -> Gallery:
    """A fresh Gallery on the same folder with no face models loaded yet."""
    return Gallery.open(gallery.folder, gallery.settings)


def files_under(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("Jack", "Jack"),
        ("Zoë Saldaña", "Zoë Saldaña"),
        ("Zoe\u0308 Saldan\u0303a", "Zoë Saldaña"),  # decomposed (as macOS writes it): stored composed
        ("  Ayman  ", "Ayman"),
        ("Mary-Kate O'Neil Jr.", "Mary-Kate O'Neil Jr."),
        ("李小龙", "李小龙"),
        ("Анна", "Анна"),
        ("R2", "R2"),
    ],
)
def test_good_names(name: str, stored: str):
    assert check_name(name) == stored


@pytest.mark.parametrize(
    "name",
    ["", "   ", ".", "..", "../x", "..\\x", "/", "/etc", "a/b", "a\\b", ".hidden", "a\x00b", "a\nb", "tab\there",
     "bell\x07", "x\u202ey", "---", "a:b", "a*b", "a?b", "a|b", "x" * 101],
)  # fmt: skip
def test_bad_names_are_refused(name: str, gallery: Gallery, chips):
    with pytest.raises(GalleryError) as info:
        check_name(name)
    assert "\n" not in str(info.value)
    with pytest.raises(GalleryError):
        gallery.add(name, chips["John_Simm"][:1])
    assert not gallery.folder.exists() or list(gallery.folder.iterdir()) == []
    with pytest.raises(GalleryError):
        gallery.remove(name)


# -- add, refuse, remove --------------------------------------------------------


def test_add_copies_photos_and_caches_their_encodings(gallery: Gallery, chips):
    photos = chips["John_Simm"][:3]
    added = gallery.add("John Simm", photos)
    assert [p.name for p in added] == [p.name for p in photos]
    assert all(p.parent == gallery.folder / "John Simm" for p in added)
    assert [p.read_bytes() for p in added] == [p.read_bytes() for p in photos]
    assert gallery.people() == ["John Simm"]

    cache = json.loads((gallery.folder / CACHE_NAME).read_text())
    assert sorted(cache["photos"]) == sorted(f"John Simm/{p.name}" for p in photos)
    assert all(len(entry["encoding"]) == 128 for entry in cache["photos"].values())

    # A fresh gallery reads the cache: the face models are never loaded.
    fresh = reopen(gallery)
    names, encodings = fresh.known_encodings()
    assert names == ["John Simm"] * 3 and encodings.shape == (3, 128)
    assert fresh._models is None


def test_add_refuses_a_photo_without_a_face(gallery: Gallery, no_face: Path, tmp_path: Path):
    data = pytest.importorskip("skimage.data")
    coffee = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(coffee)
    for photo in (no_face, coffee):
        with pytest.raises(GalleryError, match=rf"{photo.name}: no face found"):
            gallery.add("Jack", [photo])
    assert not (gallery.folder / "Jack").exists()


def test_add_refuses_a_photo_with_several_faces(gallery: Gallery, two_faces: Path):
    with pytest.raises(GalleryError, match=rf"{two_faces.name}: 2 faces found") as info:
        gallery.add("Jack", [two_faces])
    assert "Jack" in str(info.value) and "\n" not in str(info.value)
    assert files_under(gallery.folder) == {}


def test_one_refused_photo_means_nothing_is_added(gallery: Gallery, chips, two_faces: Path, no_face: Path):
    gallery.add("Jack", chips["John_Savage"][:1])
    before = files_under(gallery.folder)
    with pytest.raises(GalleryError) as info:
        gallery.add("Jack", [chips["John_Savage"][1], two_faces, chips["John_Savage"][2], no_face])
    message = str(info.value)
    assert "refused 2 of 4 photos" in message and "nothing was added" in message
    assert "2 faces found" in message and "no face found" in message
    assert files_under(gallery.folder) == before
    with pytest.raises(GalleryError, match="refused 2 of 2"):
        gallery.add("Someone New", [two_faces, no_face])
    assert gallery.people() == ["Jack"]


def test_add_refuses_files_that_are_not_photos(gallery: Gallery, tmp_path: Path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(GalleryError, match="notes.jpg: not an image"):
        gallery.add("Jack", [text])
    with pytest.raises(GalleryError, match="no such file"):
        gallery.add("Jack", [tmp_path / "missing.jpg"])
    with pytest.raises(GalleryError, match="at least one photo"):
        gallery.add("Jack", [])
    assert files_under(gallery.folder) == {}


def test_same_photo_twice_is_stored_once_and_name_clashes_get_new_names(gallery: Gallery, chips, tmp_path: Path):
    first = chips["John_Shimkus"][0]
    (path,) = gallery.add("Ann", [first])
    assert gallery.add("Ann", [first]) == [path]
    # A different photo with the same file name is kept beside it.
    other = tmp_path / first.name
    shutil.copyfile(chips["John_Shimkus"][1], other)
    (renamed,) = gallery.add("Ann", [other])
    assert renamed.name == f"{first.stem}-2{first.suffix}"
    assert len(gallery.photo_paths("Ann")) == 2


def test_a_photo_without_an_image_suffix_gets_one(gallery: Gallery, chips, tmp_path: Path):
    bare = tmp_path / "IMG_0042"
    shutil.copyfile(chips["John_Salley"][0], bare)
    (path,) = gallery.add("Ann", [bare])
    assert path.name == "IMG_0042.jpg"
    assert reopen(gallery).known_encodings()[0] == ["Ann"]


def test_a_name_that_differs_only_in_case_adds_to_the_same_person(gallery: Gallery, chips):
    gallery.add("Zoë Saldaña", chips["John_Salley"][:1])
    gallery.add("ZOË SALDAÑA", chips["John_Salley"][1:2])
    assert gallery.people() == ["Zoë Saldaña"]
    assert len(gallery.photo_paths("Zoë Saldaña")) == 2
    assert gallery.remove("zoë saldaña") == 2
    assert gallery.people() == []


def test_remove_deletes_the_person_and_their_cache_entries(gallery: Gallery, chips):
    gallery.add("Ann", chips["John_Salley"][:2])
    gallery.add("Bob", chips["John_Savage"][:1])
    assert gallery.remove("Ann") == 2
    assert gallery.people() == ["Bob"]
    cache = json.loads((gallery.folder / CACHE_NAME).read_text())
    assert list(cache["photos"]) == [f"Bob/{chips['John_Savage'][0].name}"]
    with pytest.raises(GalleryError, match="no 'Ann' in the gallery"):
        gallery.remove("Ann")


def test_remove_cannot_reach_outside_the_gallery(gallery: Gallery, chips, tmp_path: Path):
    gallery.add("Ann", chips["John_Salley"][:1])
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    for name in ("../precious", str(outside), "..", "."):
        with pytest.raises(GalleryError):
            gallery.remove(name)
    assert (outside / "keep.txt").read_text() == "keep"
    assert gallery.people() == ["Ann"]


def test_a_gallery_that_is_a_file_is_refused(tmp_path: Path, plain_settings: Settings):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(GalleryError, match="not a folder"):
        Gallery.open(file, plain_settings)


def test_a_missing_gallery_is_empty(tmp_path: Path, plain_settings: Settings):
    gallery = Gallery.open(tmp_path / "nowhere", plain_settings)
    names, encodings = gallery.known_encodings()
    assert names == [] and encodings.shape == (0, 128)
    assert not (tmp_path / "nowhere").exists()


# -- changes made by hand ---------------------------------------------------------


def test_photos_added_by_hand_are_noticed(gallery: Gallery, chips):
    gallery.add("Ann", chips["John_Salley"][:1])
    (gallery.folder / "Bob").mkdir()
    shutil.copy(chips["John_Savage"][0], gallery.folder / "Bob" / "by-hand.jpg")
    shutil.copy(chips["John_Salley"][1], gallery.folder / "Ann" / "another.jpg")
    (gallery.folder / "Ann" / "notes.txt").write_text("not a photo: ignored")
    (gallery.folder / ".trash").mkdir()  # hidden: not a person
    shutil.copy(chips["John_Simm"][0], gallery.folder / ".trash" / "old.jpg")

    names, encodings = reopen(gallery).known_encodings()
    assert sorted(names) == ["Ann", "Ann", "Bob"]
    cache = json.loads((gallery.folder / CACHE_NAME).read_text())
    assert sorted(cache["photos"]) == sorted(
        ["Ann/another.jpg", f"Ann/{chips['John_Salley'][0].name}", "Bob/by-hand.jpg"]
    )
    # The cache now holds them: the next load encodes nothing.
    fresh = reopen(gallery)
    assert np.array_equal(fresh.known_encodings()[1], encodings)
    assert fresh._models is None


def test_a_photo_replaced_by_hand_is_encoded_again(gallery: Gallery, chips):
    (path,) = gallery.add("Ann", chips["John_Salley"][:1])
    _, before = reopen(gallery).known_encodings()
    shutil.copyfile(chips["John_Schneider"][0], path)  # same name, another face
    fresh = reopen(gallery)
    _, after = fresh.known_encodings()
    assert fresh._models is not None  # it had to encode again
    assert np.linalg.norm(before[0] - after[0]) > 0.6
    schneider = Gallery.open(gallery.folder.parent / "other", gallery.settings, gallery._models)
    schneider.add("S", chips["John_Schneider"][:1])
    assert np.allclose(schneider.known_encodings()[1][0], after[0])


def test_a_touched_but_unchanged_photo_is_not_encoded_again(gallery: Gallery, chips):
    (path,) = gallery.add("Ann", chips["John_Salley"][:1])
    _, before = reopen(gallery).known_encodings()
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    fresh = reopen(gallery)
    _, after = fresh.known_encodings()
    assert fresh._models is None  # same SHA-256: the cached encoding was kept
    assert np.array_equal(before, after)
    entry = json.loads((gallery.folder / CACHE_NAME).read_text())["photos"][f"Ann/{path.name}"]
    assert entry["mtime_ns"] == path.stat().st_mtime_ns


def test_photos_removed_by_hand_are_forgotten(gallery: Gallery, chips):
    gallery.add("Ann", chips["John_Salley"][:2])
    gallery.add("Bob", chips["John_Savage"][:1])
    gallery.photo_paths("Ann")[0].unlink()
    shutil.rmtree(gallery.folder / "Bob")
    names, encodings = reopen(gallery).known_encodings()
    assert names == ["Ann"] and encodings.shape == (1, 128)
    cache = json.loads((gallery.folder / CACHE_NAME).read_text())
    assert list(cache["photos"]) == [f"Ann/{gallery.photo_paths('Ann')[0].name}"]


def test_bad_photos_put_in_by_hand_are_skipped_with_a_warning(
    gallery: Gallery, chips, two_faces: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    gallery.add("Ann", chips["John_Salley"][:1])
    shutil.copy(two_faces, gallery.folder / "Ann" / "group.jpg")
    (gallery.folder / "Ann" / "broken.jpg").write_bytes(chips["John_Salley"][1].read_bytes()[:500])
    with caplog.at_level(logging.DEBUG, logger="describe_local.see.faces.gallery"):
        names, _ = reopen(gallery).known_encodings()
    assert names == ["Ann"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipped: 2 faces found" in w for w in warnings)
    assert any("skipped: cannot decode the image" in w and "truncated" in w.lower() for w in warnings)
    assert not any("Ann" in w for w in warnings)  # names only at debug level (server logs hold none)
    debug = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert "Ann/group.jpg skipped" in debug and "Ann/broken.jpg skipped" in debug
    problems = {p.path.name: p.problem for p in reopen(gallery).photos() if not p.usable}
    assert problems["group.jpg"] == "2 faces found"
    assert problems["broken.jpg"].startswith("cannot decode the image") and len(problems) == 2


# -- a damaged cache ----------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"\x00\xff garbage",
        b'{"version": 1, "params": ',  # cut short
        b"[1, 2, 3]",
        b'{"version": 99, "photos": {}}',
        "wrong encoding length",
        "not numbers",
        "wrong face count",
    ],
)
def test_a_damaged_cache_is_rebuilt(gallery: Gallery, chips, damage):
    gallery.add("Ann", chips["John_Salley"][:2])
    _, good = reopen(gallery).known_encodings()
    cache_path = gallery.folder / CACHE_NAME
    if isinstance(damage, bytes):
        cache_path.write_bytes(damage)
    else:
        data = json.loads(cache_path.read_text())
        entry = next(iter(data["photos"].values()))
        if damage == "wrong encoding length":
            entry["encoding"] = entry["encoding"][:100]
        elif damage == "not numbers":
            entry["encoding"] = ["x"] * 128
        else:
            entry["faces"] = "one"
        cache_path.write_text(json.dumps(data))
    fresh = reopen(gallery)
    names, encodings = fresh.known_encodings()
    assert names == ["Ann", "Ann"]
    assert np.allclose(encodings, good)
    assert json.loads(cache_path.read_text())["version"] == 1  # written back whole


def test_a_cache_made_with_other_face_settings_is_rebuilt(gallery: Gallery, chips):
    gallery.add("Ann", chips["John_Salley"][:1])
    other = Gallery.open(gallery.folder, Settings.load(environ={}, face_max_side=800))
    other.known_encodings()
    assert other._models is not None  # the cached encodings were not trusted
    assert json.loads((gallery.folder / CACHE_NAME).read_text())["params"]["max_side"] == 800


# -- the faces CLI ------------------------------------------------------------------


def test_cli_add_list_remove(tmp_path: Path, chips, capsys: pytest.CaptureFixture, monkeypatch):
    monkeypatch.delenv("DESCRIBE_LOCAL_KNOWN_FACES", raising=False)
    folder = tmp_path / "kf"
    photos = [str(p) for p in chips["John_Simm"][:2]]
    assert main(["faces", "add", "Zoë Saldaña", *photos, "--gallery", str(folder)]) == 0
    assert "Added 2 photos of Zoë Saldaña (2 in all)" in capsys.readouterr().out
    assert main(["faces", "add", "Jack", str(chips["John_Savage"][0]), "--gallery", str(folder)]) == 0
    capsys.readouterr()

    # The gallery setting also comes from the environment.
    monkeypatch.setenv("DESCRIBE_LOCAL_KNOWN_FACES", str(folder))
    assert main(["faces", "list"]) == 0
    out = capsys.readouterr().out
    assert "2 people in" in out
    assert "Jack" in out and "1 photo" in out
    assert "Zoë Saldaña  2 photos" in out
    assert "Skipped" not in out

    assert main(["faces", "remove", "Jack"]) == 0
    assert "Removed Jack (1 photo)" in capsys.readouterr().out
    assert (folder / "Zoë Saldaña").is_dir() and not (folder / "Jack").exists()


def test_cli_add_takes_a_folder_of_photos(tmp_path: Path, chips, capsys):
    folder = tmp_path / "photos of ann"
    folder.mkdir()
    for chip in chips["John_Shimkus"][:3]:
        shutil.copy(chip, folder)
    (folder / "notes.txt").write_text("not a photo")
    assert main(["faces", "add", "Ann", str(folder), "--gallery", str(tmp_path / "kf")]) == 0
    assert "Added 3 photos of Ann" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["faces", "add", "Ann", str(empty), "--gallery", str(tmp_path / "kf")]) == GalleryError.exit_code
    assert "no photos in this folder" in capsys.readouterr().err


def test_cli_list_shows_skipped_photos(tmp_path: Path, chips, two_faces: Path, capsys):
    folder = tmp_path / "kf"
    (folder / "Ann").mkdir(parents=True)
    shutil.copy(two_faces, folder / "Ann" / "party.jpg")
    assert main(["faces", "list", "--gallery", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Ann  0 photos  (not recognised: no usable photo)" in out
    assert "Ann/party.jpg: 2 faces found" in out


def test_cli_list_of_a_missing_or_empty_gallery(tmp_path: Path, capsys):
    assert main(["faces", "list", "--gallery", str(tmp_path / "none")]) == 0
    assert "does not exist yet" in capsys.readouterr().out
    assert main(["faces", "list", "--gallery", str(tmp_path)]) == 0
    assert "is empty" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["faces", "add", "../x", "PHOTO"], "must not contain /"),
        (["faces", "add", "", "PHOTO"], "cannot be empty"),
        (["faces", "add", "Ann", "TWO_FACES"], "2 faces found"),
        (["faces", "add", "Ann", "NO_FACE"], "no face found"),
        (["faces", "remove", "Nobody"], "no 'Nobody' in the gallery"),
        (["faces", "remove", "/"], "must not contain /"),
    ],
)
def test_cli_errors_are_one_line_with_a_nonzero_exit(argv, message, tmp_path: Path, chips, two_faces, no_face, capsys):
    replace = {"PHOTO": str(chips["John_Simm"][0]), "TWO_FACES": str(two_faces), "NO_FACE": str(no_face)}
    argv = [replace.get(a, a) for a in argv] + ["--gallery", str(tmp_path / "kf")]
    assert main(argv) == GalleryError.exit_code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("describe-local: error:") and message in lines[0]
    assert not (tmp_path / "kf").exists() or files_under(tmp_path / "kf") == {}


def test_cli_as_a_separate_process(tmp_path: Path, chips):
    """`python -m describe_local faces ...` end to end, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env["DESCRIBE_LOCAL_KNOWN_FACES"] = str(tmp_path / "kf")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "describe_local", "faces", *args],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
        )  # fmt: skip

    added = run("add", "Ann", str(chips["John_Salley"][0]))
    assert added.returncode == 0, added.stderr
    listed = run("list")
    assert listed.returncode == 0 and "Ann  1 photo" in listed.stdout
    refused = run("add", "../Ann", str(chips["John_Salley"][1]))
    assert refused.returncode == 5
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
