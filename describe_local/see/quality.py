"""Photo quality guidance: is the photo very dark or blurry, is its text turned, in sentences to speak.

A blind photographer cannot see that a photo came out dark, shaken or sideways;
this says so, so that the next photo is better. Everything is measured on a
grey copy of the photo shrunk to at most :data:`JUDGED_SIDE` pixels (numpy
only, a few milliseconds):

- brightness: the mean luma (0-255) and the fraction of pixels clipped to black;
- blur: the variance of the 4-neighbour Laplacian, which sharp edges make large;
- text orientation: the text stage's :attr:`TextReading.rotation`
  (:func:`orientation_advice`).

The thresholds were measured on the 156 real photos in ``../shared/data``
(faces, groups, COCO captions, OCR pages, scenes and signs): none of them is
called dark or blurry, while copies darkened with ``ImageEnhance.Brightness(0.1)``
all are, and copies blurred with ``GaussianBlur(4)`` at the judged size all are
(``tests/unit/test_quality.py``). Blurred at full size, 153 of 156 are: the three
that are not are over 1900 px, where that blur is under 2 px at the judged size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from describe_local.images import Photo

# Photos are judged at this long side: a phone photo's shake of 10 px at 4000 px is still
# 2-3 px here, and a blur of a pixel or two at full size (which no stage minds) is not flagged.
JUDGED_SIDE = 1024
# Very dark: mean luma below this (0-255). The darkest real photo measured 38.5 (a face
# on a black background); the darkened copies measured 3.6-23.7.
DARK_MEAN_LUMA = 30.0
# ... or more than this fraction of the pixels at black (luma <= BLACK_LUMA): a dark room
# with one lamp in it. Real photos: at most 0.54 (the same face on black).
DARK_CLIPPED_FRACTION = 0.7
BLACK_LUMA = 8
# Blurry: Laplacian variance below this. Real photos: 13.1 at the lowest (a soft portrait),
# 23 for the 150 px face chips, median 513; copies blurred at the judged size: 4.2 at most.
BLUR_LAPLACIAN_VAR = 10.0
# Below this standard deviation of luma the photo shows almost nothing (a wall, a blank
# page, the lens covered): no edges to judge blur by. Real photos: 22.9 at the lowest,
# blurred copies 14.4.
FEATURELESS_STD = 6.0

DARK = "The photo is very dark."
BLURRY = "The photo is blurry; hold the phone still."
UPSIDE_DOWN = "The text is upside down."
SIDEWAYS = "The text is sideways; turn the page a quarter turn to the {way}."


def measure(photo: Photo) -> dict[str, float]:
    """What :func:`assess` judges ``photo`` by: ``mean_luma`` (0-255), ``black_fraction`` (0-1),
    ``luma_std`` and ``laplacian_var``, all on the grey copy at :data:`JUDGED_SIDE`."""
    grey = _grey(photo.image)
    return {
        "mean_luma": float(grey.mean()),
        "black_fraction": float(np.count_nonzero(grey <= BLACK_LUMA) / grey.size),
        "luma_std": float(grey.std()),
        "laplacian_var": laplacian_variance(grey),
    }


def assess(photo: Photo) -> list[str]:
    """Guidance sentences for ``photo`` (a decoded :class:`~describe_local.images.Photo`), most
    important first; ``[]`` when it looks fine. Text orientation is :func:`orientation_advice`'s."""
    return advice_for(measure(photo))


def advice_for(measured: dict[str, float]) -> list[str]:
    """The guidance sentences for the measurements :func:`measure` gives."""
    if measured["mean_luma"] < DARK_MEAN_LUMA or measured["black_fraction"] > DARK_CLIPPED_FRACTION:
        # Darkness flattens every edge too: a dark photo is not also called blurry.
        return [DARK]
    if measured["luma_std"] >= FEATURELESS_STD and measured["laplacian_var"] < BLUR_LAPLACIAN_VAR:
        return [BLURRY]
    return []


def orientation_advice(rotation: int) -> str | None:
    """What to say about text turned ``rotation`` degrees clockwise from upright (the text
    stage's ``TextReading.rotation``); ``None`` when it is upright. Other angles are taken
    to the nearest quarter turn."""
    quarter = round(rotation / 90) % 4
    if quarter == 0:
        return None
    if quarter == 2:
        return UPSIDE_DOWN
    # Text turned clockwise is righted by turning the page back, to the left.
    return SIDEWAYS.format(way="left" if quarter == 1 else "right")


def laplacian_variance(grey: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of a 2-D float array (0 for one under 3 x 3)."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    centre = grey[1:-1, 1:-1]
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * centre
    return float(lap.var())


def _grey(image: Image.Image) -> np.ndarray:
    """``image`` as float32 luma, shrunk (box filter) so that its long side is at most :data:`JUDGED_SIDE`."""
    width, height = image.size
    scale = min(1.0, JUDGED_SIDE / max(width, height))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BOX, reducing_gap=3.0)
    return np.asarray(image.convert("L"), dtype=np.float32)
