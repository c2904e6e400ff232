"""Not a photo? Screenshots of real documentation pages rendered in Chromium (the HTML manuals
Debian packages install under /usr/share/doc: several projects, none written here) and blank
pictures are told from photos; every photo in ../shared/data is still a photo, but for a few.
A described screenshot is read, not given a scene; a blank picture is said blank."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from describe_local.images import decode_photo
from describe_local.results import DescribeOptions, Picture
from describe_local.see import picture

DOCS = Path("/usr/share/doc")
PAGES_WANTED = 40
PHOTO_SETS = ("faces", "captions", "ocr/scenes", "ocr/signs")
VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})


def kind_of(data: bytes) -> Picture:
    return picture.judge(picture.measure(decode_photo(data, max_bytes=1 << 30, max_pixels=1 << 30)))


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="module")
def doc_pages() -> list[Path]:
    """Up to PAGES_WANTED HTML pages, a few from each project, the same choice on every run."""
    by_project: dict[str, list[Path]] = {}
    for page in sorted(DOCS.rglob("*.html")) if DOCS.is_dir() else []:
        by_project.setdefault(page.relative_to(DOCS).parts[0], []).append(page)
    if sum(map(len, by_project.values())) < 30 or len(by_project) < 3:
        pytest.skip(f"fewer than 30 HTML pages from 3 projects under {DOCS} to render")
    chooser = random.Random(7)
    chosen: list[Path] = []
    for pages in by_project.values():
        chosen += chooser.sample(pages, min(len(pages), 6))
    return chosen[:PAGES_WANTED] if len(chosen) >= 30 else chosen


@pytest.fixture(scope="module")
def screenshots(browser: Any, doc_pages: list[Path]) -> list[bytes]:
    shots = []
    for number, page_file in enumerate(doc_pages):
        page = browser.new_page(viewport=VIEWPORTS[number % 2])
        try:
            page.goto(page_file.as_uri())
            shots.append(page.screenshot())
        finally:
            page.close()
    return shots


def blanks() -> list[bytes]:
    """30 blank pictures: even colours, and the same with a camera's noise (a lens cap, a wall)."""
    rng = np.random.default_rng(3)
    made = []
    for colour in [(0, 0, 0), (45, 45, 45), (128, 128, 128), (250, 250, 250), (190, 30, 30),
                   (20, 60, 160), (30, 140, 60), (235, 215, 40), (100, 70, 40), (255, 255, 255)]:
        even = np.full((480, 640, 3), colour, dtype=np.float32)
        made.append(png(Image.fromarray(even.astype(np.uint8))))
        made.append(jpeg(Image.fromarray(np.clip(even + rng.normal(0, 3, even.shape), 0, 255).astype(np.uint8))))
        dark = np.clip(even * 0.1 + rng.normal(0, 2, even.shape), 0, 255).astype(np.uint8)
        made.append(jpeg(Image.fromarray(dark), 90))
    return made


def test_screenshots_and_blank_pictures_are_not_photos(screenshots: list[bytes]):
    assert len(screenshots) >= 30
    kinds = [kind_of(shot) for shot in screenshots]
    not_photos = sum(kind is not Picture.PHOTO for kind in kinds)
    assert not_photos >= 0.9 * len(kinds), f"{not_photos} of {len(kinds)} screenshots told from photos"
    blank_kinds = [kind_of(blank) for blank in blanks()]
    assert blank_kinds.count(Picture.BLANK) >= 0.9 * len(blank_kinds), blank_kinds


def test_the_shared_photos_stay_photos(shared_data: Path):
    photos = [p for folder in PHOTO_SETS for p in sorted((shared_data / folder).rglob("*"))
              if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    assert len(photos) > 100
    wrong = [p.name for p in photos if kind_of(p.read_bytes()) is not Picture.PHOTO]
    assert len(wrong) <= 0.02 * len(photos), wrong


def test_a_described_screenshot_is_read_and_a_blank_one_said_blank(describer, screenshots: list[bytes],
                                                                    shared_data: Path):
    result = describer.describe(screenshots[0], DescribeOptions(audio=False))
    assert result.picture in (Picture.SCREENSHOT, Picture.PAGE)
    assert result.text.startswith(("This looks like a screenshot.", "This looks like a page of text."))
    assert "caption" not in result.stages and result.text_found  # read in order, no scene made up
    assert "no caption model" not in result.text
    blank = describer.describe(blanks()[3], DescribeOptions(audio=False))
    assert blank.picture is Picture.BLANK and blank.text == "The picture is blank (all dark grey)."
    photo = describer.describe(shared_data / "faces/groups/dogs.jpg", DescribeOptions(audio=False))
    assert photo.picture is Picture.PHOTO and "caption" in photo.stages


def test_the_check_can_be_turned_off(page_settings, screenshots: list[bytes]):
    from describe_local.pipeline import Describer
    from describe_local.settings import Settings

    settings = Settings.load(environ={}, **{**page_settings.as_dict(), "check_picture_kind": False})
    with Describer.load(settings) as describer:
        result = describer.describe(screenshots[0], DescribeOptions(audio=False))
    assert result.picture is Picture.PHOTO and "caption" in result.stages
