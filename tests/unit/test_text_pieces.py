"""DBNet in pieces: the windows it runs on and the map windows they keep."""

from __future__ import annotations

import numpy as np
import pytest

from describe_local.see.text.detect import PIECE_OVERLAP, pieces


@pytest.mark.parametrize(("width", "height", "max_pixels"), [
    (960, 736, 300_000), (960, 960, 400_000), (544, 960, 250_000), (1920, 96, 60_000), (64, 64, 100), (96, 2048, 80_000),
])
def test_pieces_cover_the_picture_once_within_the_bound(width, height, max_pixels):
    found = pieces(width, height, max_pixels)
    kept = np.zeros((height, width), dtype=int)
    for (x0, y0, x1, y1), (kx0, ky0, kx1, ky1) in found:
        assert 0 <= x0 <= kx0 < kx1 <= x1 <= width and 0 <= y0 <= ky0 < ky1 <= y1 <= height
        if width * height > max_pixels and max_pixels >= 4 * PIECE_OVERLAP ** 2:
            assert (x1 - x0) * (y1 - y0) <= max_pixels
        assert (x1 - x0) % 32 == 0 and (y1 - y0) % 32 == 0
        # Where a neighbour takes over, this piece saw at least half the overlap beyond its kept window.
        for inner, outer in ((kx0 - x0, kx0), (x1 - kx1, width - kx1), (ky0 - y0, ky0), (y1 - ky1, height - ky1)):
            assert outer == 0 or inner >= min(outer, PIECE_OVERLAP // 2)
        kept[ky0:ky1, kx0:kx1] += 1
    assert (kept == 1).all()


def test_a_picture_that_fits_is_one_piece():
    assert pieces(960, 736, 0) == [((0, 0, 960, 736), (0, 0, 960, 736))]
    assert pieces(480, 320, 480 * 320) == [((0, 0, 480, 320), (0, 0, 480, 320))]


def test_the_split_with_fewest_pixels_wins():
    # 960 x 736 in 300 000 px pieces: three strips across (960 x 288) cost less than 2 x 2 squares.
    found = pieces(960, 736, 300_000)
    assert len(found) == 3 and all(x1 - x0 == 960 for (x0, _, x1, _), _ in found)
