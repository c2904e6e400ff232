"""Photo quality guidance (see/quality.py): its thresholds on synthetic pictures, and on the real
photos in ../shared/data, which must be guidance-free while their darkened and blurred copies are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from describe_local.images import Photo, image_limits, is_image_path, load_photo
from describe_local.see import quality
from describe_local.see.quality import BLURRY, DARK, assess, orientation_advice
from describe_local.settings import Settings

# -- text orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rotation", "advice"),
    [
        (0, None),
        (360, None),
        (90, "The text is sideways; turn the page a quarter turn to the left."),
        (270, "The text is sideways; turn the page a quarter turn to the right."),
        (-90, "The text is sideways; turn the page a quarter turn to the right."),
        (180, "The text is upside down."),
        (100, "The text is sideways; turn the page a quarter turn to the left."),  # nearest quarter turn
    ],
)
def test_orientation_advice(rotation: int, advice: str | None):
    assert orientation_advice(rotation) == advice


# -- brightness and blur on pictures made here ------------------------------------------------------


def _photo(array: np.ndarray) -> Photo:
    return Photo(Image.fromarray(array.astype(np.uint8)).convert("RGB"))


def _checkerboard(size: int = 400, square: int = 8) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return np.where((x // square + y // square) % 2, 220, 30)


def test_a_sharp_well_lit_picture_needs_no_guidance():
    assert assess(_photo(_checkerboard())) == []


def test_a_dark_picture_is_called_dark_and_not_also_blurry():
    assert assess(_photo(_checkerboard() * 0.1)) == [DARK]
    # Mostly black with a bright lamp: the mean is not low, but most pixels are clipped.
    lamp = np.zeros((400, 400))
    lamp[:100, :] = 255
    assert assess(_photo(lamp)) == [DARK]


def test_a_blurred_picture_is_called_blurry():
    blurred = _photo(_checkerboard()).image.filter(ImageFilter.GaussianBlur(4))
    assert assess(Photo(blurred)) == [BLURRY]


def test_a_featureless_picture_is_not_called_blurry():
    """A blank wall or page has no edges: there is nothing to say about its sharpness."""
    assert assess(_photo(np.full((300, 400), 180))) == []


def test_large_photos_are_judged_shrunk_and_tiny_ones_do_not_fail():
    big = Image.fromarray(np.tile(_checkerboard(512, 16).astype(np.uint8), (6, 8))).convert("RGB")
    assert max(big.size) > quality.JUDGED_SIDE
    assert assess(Photo(big)) == []
    assert quality.laplacian_variance(np.zeros((2, 2), np.float32)) == 0.0
    assert assess(_photo(np.zeros((1, 1)))) == [DARK]


# -- the real photos --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_photos(shared_data: Path) -> list[Photo]:
    """Every photo in ../shared/data, decoded as the describer decodes them (156 at the time of writing)."""
    limits = image_limits(Settings.load(environ={}))
    paths = sorted(p for p in shared_data.rglob("*") if p.is_file() and is_image_path(p))
    assert len(paths) > 100
    return [load_photo(p, **limits) for p in paths]


def test_real_photos_need_no_guidance(real_photos: list[Photo]):
    alarms = {photo.source: assess(photo) for photo in real_photos}
    assert {source: advice for source, advice in alarms.items() if advice} == {}


def test_darkened_real_photos_are_called_dark(real_photos: list[Photo]):
    for photo in real_photos:
        dark = Photo(ImageEnhance.Brightness(photo.image).enhance(0.1))
        assert assess(dark) == [DARK], photo.source


def test_blurred_real_photos_are_called_blurry(real_photos: list[Photo]):
    """Blurred at the size they are judged at: a 4 px blur of a 3300 px page scan is a fraction of
    a pixel there, and no stage minds it (3 of the 156 photos are that large)."""
    for photo in real_photos:
        small, _ = photo.fit_within(quality.JUDGED_SIDE)
        blurred = Photo(small.filter(ImageFilter.GaussianBlur(4)))
        assert assess(blurred) == [BLURRY], photo.source
