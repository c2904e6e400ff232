"""Alt text with the real face and text models (no caption model is installed here, so every alt
text is partial): ``describe-local alt-text`` on images and on a static site, the wording rules on
the real photos, and ``POST /api/alt-text``."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = {
    "people.jpg": "faces/photos/knn_test__obama_and_biden.jpg",
    "poster.png": "ocr/signs/english.png",
    "signs.png": "ocr/signs/example3.png",
    "street.jpg": "ocr/signs/french.jpg",
}
KNOWN = {"Barack Obama": "faces/photos/knn_train__obama__obama.jpg",
         "Joe Biden": "faces/photos/knn_train__biden__biden.jpg"}
LEAD_INS = re.compile(r"\b(?:image|picture|photo) of\b", re.IGNORECASE)
NAMES = re.compile(r"obama|biden|barack", re.IGNORECASE)

INDEX = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Caf\u00e9 \u2014 alt text</title><link rel="stylesheet" href="css/site.css"></head>
<body>
<h1>Caf\u00e9 \u2014 photos \U0001f4f7</h1>
<img src="img/people.jpg" width="300" data-expect="people">
<img src="img/poster.png" alt="" data-expect="decorative">
<img src="img/street.jpg" alt="Paris street signs" data-expect="kept">
<img src="https://example.com/remote.jpg" data-expect="remote">
<img src="//cdn.example.com/protocol-relative.jpg" data-expect="remote">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-expect="data">
<img src="img/signs-small.png"
     srcset="img/signs-small.png 1x, https://example.com/huge.png 4x, img/signs.png 2x" data-expect="srcset">
<picture><source srcset="img/signs.png 1280w" media="(min-width: 800px)"><source srcset="img/signs-small.png 400w">
<img src="img/signs-small.png" data-expect="picture"></picture>
<IMG SRC=img/poster.png?v=2 data-expect=poster />
<img src="../outside.jpg" data-expect="outside">
<img src="img/missing.jpg" data-expect="missing">
<script>document.write('<img src="img/people.jpg">');</script>
</body></html>
"""
LATIN = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
         "<title>\u00c9t\u00e9</title></head>\n<body><p>d\u00e9j\u00e0 vu \u2013 \u201cquoted\u201d</p>\n"
         '<img src="../img/poster.png" data-expect="poster"></body></html>\n')
CRLF = ("<html>\r\n<body>\r\n<p>one</p>\r\n<img\r\n  src='/img/people.jpg'\r\n  data-expect=people>\r\n"
        "</body>\r\n</html>\r\n")
PAGES = {"index.html": INDEX.encode("utf-8"), "sub/latin.html": LATIN.encode("cp1252"),
         "sub/crlf.htm": CRLF.encode("utf-8")}
FILLED = {"people", "srcset", "picture", "poster"}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    return subprocess.run([sys.executable, "-m", "describe_local", *args], capture_output=True, text=True,
                          env={**full_env, **env}, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, str]:
    """An empty model store (no caption model) and a gallery that knows Barack Obama and Joe Biden."""
    root = tmp_path_factory.mktemp("alt-cli")
    (root / "models").mkdir()
    env = {"DESCRIBE_LOCAL_MODELS_DIR": str(root / "models"), "DESCRIBE_LOCAL_KNOWN_FACES": str(root / "gallery")}
    for name, photo in KNOWN.items():
        done = run_cli("faces", "add", name, str(shared_data / photo), env=env)
        assert done.returncode == 0, done.stderr
    return env


def make_site(root: Path, shared: Path) -> None:
    """A static site in ``root``: three pages (UTF-8, windows-1252, CRLF), its images (copies of the
    real photos), a stylesheet; and a photo beside the site that no page may reach."""
    (root / "img").mkdir(parents=True)
    for name, source in PHOTOS.items():
        shutil.copyfile(shared / source, root / "img" / name)
    with Image.open(root / "img" / "signs.png") as img:  # the same signs, smaller: srcset must pick signs.png
        img.resize((img.width // 2, img.height // 2)).save(root / "img" / "signs-small.png")
    for name, data in PAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "css").mkdir()
    (root / "css" / "site.css").write_text("img { max-width: 100%; }\n")
    shutil.copyfile(shared / PHOTOS["people.jpg"], root.parent / "outside.jpg")


class Images(HTMLParser):
    """An independent reading of a page: (data-expect, alt or None) of each <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str | None, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            values = dict(attrs)
            self.found.append((values.get("data-expect"), values.get("alt") if "alt" in values else None))


def images_of(data: bytes, encoding: str) -> list[tuple[str | None, str | None]]:
    parser = Images()
    parser.feed(data.decode(encoding))
    return parser.found


def without_inserted(page: dict, written: bytes) -> bytes:
    """``written`` with exactly the attributes the report says were inserted taken out again."""
    encoding = page["encoding"]
    filled = sorted((i for i in page["images"] if i["status"] == "filled"), key=lambda i: i["offset"])
    out, shift = bytearray(written), 0
    for item in filled:
        expected = ' alt="' + html.escape(item["alt"], quote=False).replace('"', "&quot;") + '"'
        assert item["attribute"] == expected
        attribute = expected.encode(encoding, "xmlcharrefreplace")
        start = item["offset"] + shift
        assert bytes(out[start:start + len(attribute)]) == attribute
        assert bytes(out[start - 4:start]).lower() == b"<img"
        del out[start:start + len(attribute)]
    return bytes(out)


def test_a_site_gets_alt_text_and_nothing_else_changes(tmp_path: Path, cli_env, shared_data: Path):
    site, out = tmp_path / "site", tmp_path / "out"
    make_site(site, shared_data)
    done = run_cli("alt-text", str(site), "-o", str(out), "--report", str(tmp_path / "report.json"), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    pages = {Path(p["page"]).relative_to(site).as_posix(): p for p in report["pages"]}
    assert set(pages) == set(PAGES)

    for name, original in PAGES.items():
        page = pages[name]
        written = (out / name).read_bytes()
        assert page["changed"] and page["output"] == str(out / name)
        assert without_inserted(page, written) == original, name  # byte for byte, outside the new attributes
        assert (site / name).read_bytes() == original  # the source is left alone
        for expect, alt in images_of(written, page["encoding"]):
            if expect in FILLED:
                assert alt, (name, expect)
                assert not LEAD_INS.search(alt) and len(alt) <= 125 and not NAMES.search(alt)
            elif expect == "decorative":
                assert alt == ""
            elif expect == "kept":
                assert alt == "Paris street signs"
            elif expect is not None:  # remote, data:, outside the site, missing
                assert alt is None, (name, expect)

    index = {(i["line"], i["src"]): i for i in pages["index.html"]["images"]}
    by_src = {src: item for (_, src), item in index.items()}
    assert by_src["img/people.jpg"]["alt"] == "Three people."  # counted, not named, without --names
    assert by_src["img/people.jpg"]["partial"] is True
    assert "Reduce your risk of coronavirus infection" in by_src["img/poster.png?v=2"]["alt"]
    assert by_src["https://example.com/remote.jpg"]["reason"] == "remote image (not fetched)"
    assert by_src["//cdn.example.com/protocol-relative.jpg"]["reason"] == "remote image (not fetched)"
    assert by_src["data:image/gif;base64,R0lGODlhAQABAAAAACw="]["reason"].startswith("data: URL")
    assert by_src["../outside.jpg"]["reason"] == "outside the site folder"
    assert by_src["img/missing.jpg"]["reason"] == "not found"
    srcset, picture = (item for item in pages["index.html"]["images"] if item["src"] == "img/signs-small.png")
    for item in (srcset, picture):  # the largest local candidate was described, the remote 4x ignored
        assert Path(item["image"]).name == "signs.png"
        assert "SPEED LIMIT" in item["alt"]
    assert [i["status"] for i in pages["index.html"]["images"]].count("decorative") == 1
    assert [i["status"] for i in pages["index.html"]["images"]].count("kept") == 1
    latin = (out / "sub/latin.html").read_bytes()
    assert b"d\xe9j\xe0 vu \x96 \x93quoted\x94" in latin and b'<img alt="Text reading' in latin  # windows-1252 kept
    assert b"\r\n  src='/img/people.jpg'" in (out / "sub/crlf.htm").read_bytes()

    assert report["totals"]["filled"] == 6 and report["totals"]["skipped"] == 5
    assert "3 pages, 3 changed: 6 images given alt text (6 partial)" in done.stderr
    assert "no caption model is installed" in done.stderr
    for name in [*PHOTOS, "signs-small.png"]:  # the rest of the site is copied as it is
        assert (out / "img" / name).read_bytes() == (site / "img" / name).read_bytes()
    assert (out / "css/site.css").read_text() == "img { max-width: 100%; }\n"
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.bak"))

    # --in-place gives the same pages, and keeps each original as a .bak.
    in_place = tmp_path / "in-place"
    shutil.copytree(site, in_place)
    done = run_cli("alt-text", str(in_place), "--in-place", env=cli_env)
    assert done.returncode == 0, done.stderr
    for name, original in PAGES.items():
        assert (in_place / name).read_bytes() == (out / name).read_bytes()
        assert (in_place / f"{name}.bak").read_bytes() == original
    assert not (in_place / "css/site.css.bak").exists()


def test_images_print_one_line_each_and_name_people_only_when_asked(tmp_path: Path, cli_env, shared_data: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("people.jpg", "poster.png"):
        shutil.copyfile(shared_data / PHOTOS[name], photos / name)
    (photos / "broken.jpg").write_text("not an image")

    done = run_cli("alt-text", str(photos), "--progress", env=cli_env)
    assert done.returncode == 3, done.stderr  # the broken one
    assert "1/3 " in done.stderr and "3/3 " in done.stderr and "images per minute" in done.stderr
    lines = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(lines) == {"broken.jpg", "people.jpg", "poster.png"}
    for record in lines.values():
        assert set(record) == {"path", "alt", "long_description", "partial", "text_found", "errors"}
    assert lines["people.jpg"]["alt"] == "Three people."
    assert not NAMES.search(lines["people.jpg"]["alt"] + lines["people.jpg"]["long_description"])
    assert "caption" in lines["people.jpg"]["errors"] and lines["people.jpg"]["partial"] is True
    assert "coronavirus" in lines["poster.png"]["text_found"]
    assert "decode" in lines["broken.jpg"]["errors"]

    named = run_cli("alt-text", str(photos / "people.jpg"), "--names", "--csv", "--max-chars", "40", env=cli_env)
    assert named.returncode == 0, named.stderr
    header, row = named.stdout.splitlines()
    assert header == "path,alt,long_description,partial,text_found,errors"
    assert NAMES.search(row) and "other person" in row


def test_pages_and_images_are_not_mixed_and_pages_need_a_destination(tmp_path: Path, cli_env):
    (tmp_path / "a.html").write_text("<img src=x.jpg>")
    (tmp_path / "x.jpg").write_bytes(b"")
    for args in (["a.html"], ["a.html", "x.jpg", "-o", "out"], ["a.html", "-o", "out", "--in-place"],
                 ["x.jpg", "--in-place"], ["x.jpg", "--max-chars", "5"], ["x.jpg", "--audit"], ["x.jpg", "--mark"],
                 ["a.html", "--audit", "--in-place"], ["a.html", "--copy-all", "--in-place"]):
        done = run_cli("alt-text", *(str(tmp_path / a) if a.endswith((".html", ".jpg")) else a for a in args),
                       env=cli_env)
        assert done.returncode == 2 and done.stderr.startswith("describe-local: error:"), (args, done.stderr)
        assert "Traceback" not in done.stderr


# -- the wording rules on the real photos -------------------------------------------------------


@pytest.fixture(scope="module")
def named_describer(tmp_path_factory: pytest.TempPathFactory, make_settings, cli_env):
    """The real face and text models, with the gallery of ``cli_env``; no caption model."""
    from describe_local.pipeline import Describer

    settings = make_settings(tmp_path_factory.mktemp("alt-describer"),
                             known_faces=Path(cli_env["DESCRIBE_LOCAL_KNOWN_FACES"]))
    with Describer.load(settings, speech=False) as describer:
        yield describer


def test_wording_rules_on_the_coco_photos_the_signs_and_known_faces(named_describer, shared_data: Path):
    from describe_local.alt_text.wording import alt_text, salient_text
    from describe_local.results import DescribeOptions

    photos = sorted((shared_data / "captions/images").glob("*.jpg")) + sorted((shared_data / "ocr/signs").iterdir())
    photos += [shared_data / "faces/photos" / n for n in ("knn_test__obama1.jpg", "knn_test__obama_and_biden.jpg")]
    assert len(photos) == 55 + 3 + 2
    said: dict[str, str] = {}
    named_any = False
    for photo in photos:
        found = named_describer.describe(photo, DescribeOptions(audio=False))
        result = alt_text(found)
        assert result.partial is True  # no caption model
        assert not LEAD_INS.search(result.alt) and len(result.alt) <= 125, result.alt
        assert not NAMES.search(result.alt + result.long_description), (photo.name, result)
        assert len(alt_text(found, 40).alt) <= 40
        if found.people or found.unknown_faces or salient_text(found.text_lines):
            assert result.alt
        assert bool(result.long_description) == bool(found.people or found.unknown_faces or found.text_found)
        named = alt_text(found, names=True)
        named_any |= bool(NAMES.search(named.alt))
        said[photo.name] = result.alt
    assert named_any  # the gallery's people are named with names=True, and only then
    assert "SPEED LIMIT" in said["example3.png"]
    assert said["knn_test__obama1.jpg"] == "One person."


# -- POST /api/alt-text ---------------------------------------------------------------------------


def app_with_alt_text(settings, describer):
    """The app, with the alt-text router included when ``create_app`` does not include it yet."""
    from describe_local.server import alt_text_api, create_app

    app = create_app(settings, describer)
    if not any(getattr(route, "path", None) == "/api/alt-text" for route in app.routes):
        app.include_router(alt_text_api.router)
    return app


def test_the_alt_text_api(named_describer, make_settings, tmp_path: Path, shared_data: Path):
    from fastapi.testclient import TestClient

    from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore

    people = (shared_data / PHOTOS["people.jpg"]).read_bytes()
    with TestClient(app_with_alt_text(make_settings(tmp_path / "open"), named_describer)) as client:
        answer = client.post("/api/alt-text", files={"photo": ("p.jpg", people, "image/jpeg")})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"alt", "long_description", "partial", "text_found", "errors", "timings_ms"}
        assert body["alt"] == "Three people." and body["partial"] is True
        assert "[a path on the server]" in body["errors"]["caption"]  # the server's folders stay hidden
        named = client.post("/api/alt-text", files={"photo": ("p.jpg", people, "image/jpeg")},
                            data={"names": "true", "max_chars": "30"}).json()
        assert NAMES.search(named["alt"]) and len(named["alt"]) <= 30
        for data, status in (({"max_chars": "5"}, 422), ({"max_chars": "abc"}, 422), ({"names": "maybe"}, 422)):
            assert client.post("/api/alt-text", files={"photo": ("p.jpg", people)}, data=data).status_code == status
        assert client.post("/api/alt-text", files={"photo": ("x.jpg", b"not an image")}).status_code == 415
        assert client.post("/api/alt-text", data={"names": "true"}).status_code == 400
        # An extension's request (Origin: chrome-extension://...) is answered like any other.
        extension = client.post("/api/alt-text", files={"photo": ("p.jpg", people)},
                                headers={"Origin": "chrome-extension://abcdefghijklmnop"})
        assert extension.status_code == 200
        spec = client.get("/openapi.json").json()["paths"]["/api/alt-text"]["post"]
        assert spec["summary"] == "Alt text for an image"
        assert {"200", "401", "413", "415", "422", "503", "504"} <= set(spec["responses"])
        assert "photo" in spec["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert "AltTextResponse" in json.dumps(spec["responses"]["200"])
        assert client.get("/api/alt-text/token").json() == {"needs_token": False, "admin": False}

    locked = make_settings(tmp_path / "locked", require_token_for_describe=True, max_upload_bytes=100_000)
    token = TokenStore.open(locked.state_dir).reset(DESCRIBE)
    admin = TokenStore.open(locked.state_dir).reset(ADMIN)
    with TestClient(app_with_alt_text(locked, named_describer)) as client:
        small = (shared_data / "faces/photos/knn_test__obama1.jpg").read_bytes()
        assert len(small) < 100_000 < len(people)
        assert client.post("/api/alt-text", files={"photo": ("p.jpg", small)}).status_code == 401
        allowed = client.post("/api/alt-text", files={"photo": ("p.jpg", small)},
                              headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and allowed.json()["alt"] == "One person."
        too_big = client.post("/api/alt-text", files={"photo": ("p.jpg", people)},
                              headers={"Authorization": f"Bearer {token}"})
        assert too_big.status_code == 413
        # The extension's options page checks a token without an image: taken, refused, or the admin's.
        check = "/api/alt-text/token"
        assert client.get(check, headers={"Authorization": f"Bearer {token}"}).json() == {
            "needs_token": True, "admin": False}
        assert client.get(check, headers={"Authorization": f"Bearer {admin}"}).json()["admin"] is True
        assert client.get(check, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(check).status_code == 401
