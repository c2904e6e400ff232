"""Is a page in view with all four of its edges? For capturing a document: the photo is taken
only when the whole page is in the frame and fills much of it.

A page is lighter than what it lies on (paper on a table, a letter in a hand). The frame is
judged on a small grey copy: split into light and dark by Otsu's threshold, the page's extent
is the rows and columns that are mostly light. An edge of the page is in view where a band of
dark lies between it and the frame's edge. Numpy only; a few milliseconds per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from describe_local.live_text.aiming import Aim

JUDGED_SIDE = 160  # the grey copy's long side
PAGE_SHARE = 0.3  # a row (column) is the page's where at least this share of it is light (ink covers less)
MIN_CONTRAST = 40.0  # light and dark means at least this far apart (0-255), else no page edge is seen
MIN_MARGIN = 2  # rows (columns) of dark between the page and the frame's edge, in the grey copy
MIN_FILL = 0.3  # the page's box must cover this share of the frame to be read well


@dataclass(frozen=True)
class PageView:
    """Whether a page is ready to be captured, and else which way to move the phone."""

    ready: bool
    aim: Aim | None


def _grey(image: Image.Image) -> np.ndarray:
    scale = JUDGED_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.convert("L").resize(size, Image.Resampling.BOX), dtype=np.float32)


def otsu(grey: np.ndarray) -> float:
    """Otsu's threshold of a 0-255 grey array: the level that best splits it in two."""
    counts, _ = np.histogram(grey, bins=256, range=(0, 256))
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(counts).astype(np.float64)
    total = weight[-1]
    mean = np.cumsum(counts * levels)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return float(np.argmax(between))


def _extent(light_share: np.ndarray) -> tuple[int, int] | None:
    """The first and last index where ``light_share`` reaches :data:`PAGE_SHARE`, or None."""
    inside = np.flatnonzero(light_share >= PAGE_SHARE)
    return (int(inside[0]), int(inside[-1])) if inside.size else None


def page_view(image: Image.Image) -> PageView:
    """Whether ``image`` (a camera frame) shows a whole page that fills it well enough to read."""
    grey = _grey(image)
    level = otsu(grey)
    light = grey > level
    if not light.any() or light.all() or grey[light].mean() - grey[~light].mean() < MIN_CONTRAST:
        # One even tone: the page fills the whole frame, or there is no page at all.
        return PageView(False, Aim.FARTHER if grey.mean() > level else Aim.NO_TEXT)
    rows, cols = _extent(light.mean(axis=1)), _extent(light.mean(axis=0))
    if rows is None or cols is None:
        return PageView(False, Aim.CLOSER)
    height, width = grey.shape
    cut = {
        Aim.UP: rows[0] < MIN_MARGIN,
        Aim.DOWN: rows[1] > height - 1 - MIN_MARGIN,
        Aim.LEFT: cols[0] < MIN_MARGIN,
        Aim.RIGHT: cols[1] > width - 1 - MIN_MARGIN,
    }
    if all(cut.values()):
        return PageView(False, Aim.FARTHER)
    for way, is_cut in cut.items():
        if is_cut:
            return PageView(False, way)
    fill = (rows[1] - rows[0] + 1) * (cols[1] - cols[0] + 1) / (height * width)
    if fill < MIN_FILL:
        return PageView(False, Aim.CLOSER)
    return PageView(True, None)
