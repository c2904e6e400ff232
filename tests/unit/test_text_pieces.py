"""DBNet in pieces: the windows it runs on and the map windows they keep."""

from __future__ import annotations

import numpy as np
import pytest

from describe_local.see.text.detect import PIECE_MARGIN, PIECE_OVERLAP, pieces


@pytest.mark.parametrize(("width", "height", "max_pixels"), [
    (960, 736, 300_000), (960, 960, 400_000), (544, 960, 250_000), (1920, 96, 60_000), (64, 64, 100),
    (96, 2048, 80_000),
])
def test_pieces_cover_the_picture_within_the_bound(width, height, max_pixels):
    found = pieces(width, height, max_pixels)
    counted = np.zeros((height, width), dtype=int)
    for (x0, y0, x1, y1), (kx0, ky0, kx1, ky1) in found:
        assert 0 <= x0 <= kx0 < kx1 <= x1 <= width and 0 <= y0 <= ky0 < ky1 <= y1 <= height
        if width * height > max_pixels and max_pixels >= 4 * PIECE_OVERLAP ** 2:
            assert (x1 - x0) * (y1 - y0) <= max_pixels
        assert (x1 - x0) % 32 == 0 and (y1 - y0) % 32 == 0
        # Only the margin at an inner edge (seen without context beyond it) is left out.
        assert (kx0 - x0, ky0 - y0) == (PIECE_MARGIN if x0 else 0, PIECE_MARGIN if y0 else 0)
        assert (x1 - kx1, y1 - ky1) == (PIECE_MARGIN if x1 < width else 0, PIECE_MARGIN if y1 < height else 0)
        counted[ky0:ky1, kx0:kx1] += 1
    assert (counted >= 1).all()


def test_a_picture_that_fits_is_one_piece():
    assert pieces(960, 736, 0) == [((0, 0, 960, 736), (0, 0, 960, 736))]
    assert pieces(480, 320, 480 * 320) == [((0, 0, 480, 320), (0, 0, 480, 320))]


@pytest.mark.parametrize(("width", "height", "max_pixels"), [(960, 736, 300_000), (704, 704, 300_000),
                                                          (1920, 1440, 300_000), (960, 544, 400_000)])
def test_the_split_with_fewest_pixels_wins(width, height, max_pixels):
    found = pieces(width, height, max_pixels)
    total = sum((x1 - x0) * (y1 - y0) for (x0, y0, x1, y1), _ in found)
    columns, rows = len({w[0] for w, _ in found}), len({w[1] for w, _ in found})
    assert columns * rows == len(found) > 1
    # Every other grid of pieces that fit costs at least as many pixels (the overlaps DBNet runs twice).
    for nx in range(1, 12):
        for ny in range(1, 12):
            sx = width if nx == 1 else min(width, -(-(width + (nx - 1) * PIECE_OVERLAP) // (nx * 32)) * 32)
            sy = height if ny == 1 else min(height, -(-(height + (ny - 1) * PIECE_OVERLAP) // (ny * 32)) * 32)
            if sx * sy <= max_pixels:
                assert nx * ny * sx * sy >= total, (nx, ny, total)
