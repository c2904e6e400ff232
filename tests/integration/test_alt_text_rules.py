"""``describe-local alt-text`` on a site made for each rule of the W3C alt decision tree, with the
real face and text models (no caption model here, so described alts are partial): linked images
named by the linked page, captions and spacers given ``alt=""``, placeholders replaced and
listed, the page's language reported, ``--mark``, ``-o`` holding only the changed pages and what
they show (``--copy-all`` the whole site), and ``--audit`` changing nothing."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.test_alt_text import run_cli

PHOTOS = {"people.jpg": "faces/photos/knn_test__obama_and_biden.jpg", "poster.png": "ocr/signs/english.png",
          "signs.png": "ocr/signs/example3.png", "street.jpg": "ocr/signs/french.jpg"}
INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Home</title><link rel="stylesheet" href="site.css"></head>
<body>
<a href="family.html"><img src="img/people.jpg"></a>
<a href="https://example.org/elsewhere"><img src="img/people.jpg"></a>
<figure><img src="img/street.jpg"><figcaption>Street signs in Paris</figcaption></figure>
<img src="img/spacer.gif" width="1" height="1"><hr><img src="img/rule.png">
<img src="img/poster.png" alt="IMG_2041.jpg">
<img src="img/p1.jpg" alt="person image"><img src="img/p2.jpg" alt="person image">
<img src="img/p3.jpg" alt="person image">
</body></html>
"""
FAMILY = """<html lang="en"><head><title>Our family</title></head><body><h1>Family</h1>
<img src="img/signs.png" alt="Road signs: speed limit and market"></body></html>
"""
FRENCH = """<html lang="fr"><head><title>Rue</title></head><body><img src="../img/street.jpg"></body></html>
"""
PAGES = {"index.html": INDEX, "family.html": FAMILY, "fr/rue.html": FRENCH}
TAG = re.compile(rb"<img\b[^>]*>", re.IGNORECASE)


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An empty model store (no caption model) and an empty gallery."""
    root = tmp_path_factory.mktemp("alt-rules")
    (root / "models").mkdir()
    return {"DESCRIBE_LOCAL_MODELS_DIR": str(root / "models"), "DESCRIBE_LOCAL_KNOWN_FACES": str(root / "gallery")}


def make_site(root: Path, shared: Path) -> None:
    (root / "img").mkdir(parents=True)
    for name, source in PHOTOS.items():
        shutil.copyfile(shared / source, root / "img" / name)
    for copy in ("p1.jpg", "p2.jpg", "p3.jpg"):  # three different files, one placeholder alt
        shutil.copyfile(shared / PHOTOS["people.jpg"], root / "img" / copy)
    Image.new("RGB", (1, 1), "white").save(root / "img" / "spacer.gif")
    Image.new("RGB", (800, 12), (90, 90, 90)).save(root / "img" / "rule.png")
    for name, text in PAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "site.css").write_text("body { margin: 0 }\n")
    (root / "notes.txt").write_text("not shown by any page\n")


def alts(data: bytes) -> list[tuple[str | None, str | None]]:
    """(alt, data-alt-generated) of each <img>, read by a separate regular expression."""
    found = []
    for tag in TAG.findall(data):
        alt = re.search(rb'\salt="([^"]*)"', tag)
        mark = re.search(rb'\sdata-alt-generated="([^"]*)"', tag)
        found.append((alt.group(1).decode() if alt else None, mark.group(1).decode() if mark else None))
    return found


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def test_the_decision_tree_placeholders_and_mark_on_a_real_site(tmp_path: Path, cli_env, shared_data: Path):
    site, out = tmp_path / "site", tmp_path / "out"
    make_site(site, shared_data)
    before = digest(site)
    done = run_cli("alt-text", str(site), "-o", str(out), "--mark", "--report", str(tmp_path / "r.json"), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    written = (out / "index.html").read_bytes()
    got = alts(written)
    assert got[0] == ("Our family", "describe-local")  # the linked page's title
    assert got[1] == ("Three people, link", "describe-local partial")  # nothing names it: the picture, as a link
    assert got[2] == ("", "describe-local")  # the caption says it
    assert got[3] == ("", "describe-local") and got[4] == ("", "describe-local")  # the spacer, the rule
    assert "coronavirus" in got[5][0] and got[5][1] == "describe-local partial"  # the file name replaced
    assert got[6:] == [("Three people.", "describe-local partial")] * 3  # the repeated placeholder replaced
    assert TAG.sub(b"<img>", written) == TAG.sub(b"<img>", INDEX.encode())  # nothing else changed
    assert digest(site) == before  # the site itself is untouched

    report = json.loads((tmp_path / "r.json").read_text())
    index = next(p for p in report["pages"] if p["page"].endswith("index.html"))
    assert [i["placeholder"] is not None for i in index["images"]] == [False] * 5 + [True] * 4
    assert [i["old_alt"] for i in index["images"][5:]] == ["IMG_2041.jpg"] + ["person image"] * 3
    assert "4 placeholder alts replaced" in done.stderr and "replaced" in done.stderr and "IMG_2041.jpg" in done.stderr
    assert "different images were given the same alt 'Three people.'" in done.stderr
    assert ("fr/rue.html: the page's language is fr; its alts are written in English (no translation to fr is "
            "installed") in done.stderr

    # -o holds the changed pages and what they show; family.html (its alt is a person's) did not change.
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        ["index.html", "fr/rue.html", "site.css", *(f"img/{n}" for n in
         ("people.jpg", "street.jpg", "spacer.gif", "rule.png", "poster.png", "p1.jpg", "p2.jpg", "p3.jpg"))])
    whole = tmp_path / "whole"
    done = run_cli("alt-text", str(site), "-o", str(whole), "--copy-all", "--mark", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert digest(whole).keys() == before.keys() and (whole / "index.html").read_bytes() == written

    # A second run keeps what the first wrote; --audit finds it and changes nothing.
    again = run_cli("alt-text", str(out), "-o", str(tmp_path / "again"), "--mark", env=cli_env)
    assert again.returncode == 0 and "0 changed" in again.stderr, again.stderr
    marked = digest(out)
    audit = run_cli("alt-text", "--audit", str(out), "-o", str(tmp_path / "audit"), env=cli_env)
    assert audit.returncode == 0, audit.stderr
    assert digest(out) == marked
    body = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert body["totals"]["generated"] == 10 and body["totals"]["missing"] == 0
    assert (tmp_path / "audit" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_placeholders_are_kept_with_keep_placeholders_and_captions_described_when_asked(tmp_path: Path, cli_env,
                                                                                         shared_data: Path):
    site, out = tmp_path / "site", tmp_path / "out"
    make_site(site, shared_data)
    done = run_cli("alt-text", str(site / "index.html"), "-o", str(out), "--keep-placeholders",
                   "--describe-captioned", env=cli_env)
    assert done.returncode == 0, done.stderr
    got = alts((out / "index.html").read_bytes())
    assert "LES ARTS" in got[2][0]  # the captioned street signs, described
    assert got[5:] == [("IMG_2041.jpg", None)] + [("person image", None)] * 3
    assert got[0] == ("Our family", None)  # the linked page is read even when not given


def test_a_page_in_another_language_gets_its_alts_in_it_where_a_translation_is_installed(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """A real (random-weight) Argos package for English to Spanish, made by scripts/make_tiny_argos.py:
    its words are gibberish, but they are what the installed model gives, and not the English."""
    from make_tiny_argos import make_package

    root = tmp_path_factory.mktemp("alt-lang")
    env = {"DESCRIBE_LOCAL_MODELS_DIR": str(root / "models"), "DESCRIBE_LOCAL_KNOWN_FACES": str(root / "gallery")}
    (root / "models").mkdir()
    package = make_package(root / "translate-en_es.argosmodel")
    imported = run_cli("models", "import", str(package), env=env)
    assert imported.returncode == 0, imported.stderr
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    shutil.copyfile(shared_data / PHOTOS["people.jpg"], site / "img" / "people.jpg")
    for lang in ("en", "es", "de"):
        (site / f"{lang}.html").write_text(f'<html lang="{lang}"><body><img src="img/people.jpg"></body></html>\n',
                                           encoding="utf-8")
    done = run_cli("alt-text", str(site), "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json"), env=env)
    assert done.returncode == 0, done.stderr
    written = {lang: alts((tmp_path / "out" / f"{lang}.html").read_bytes())[0][0] for lang in ("en", "es", "de")}
    assert written["en"] and written["es"] and written["es"] != written["en"]
    assert written["de"] == written["en"]  # no German model: English, and the report says why
    report = json.loads((tmp_path / "r.json").read_text())
    notes = {Path(page["page"]).name: page.get("note") or "" for page in report["pages"]}
    assert "translated" in notes["es.html"] and "no translation to de is installed" in notes["de.html"]
