"""Where the text is: DBNet's probability map turned into line regions, at a resolution that suits the photo.

In: the photo as a BGR array and a function that runs DBNet on a picture.
Out: :class:`Region` objects in the photo's pixels, each either a rotated
rectangle (``quad``) or, for text printed along a curve (a round plaque's
rim, a poster on a pillar), a centre line to sample a straightened strip from.

Resolution: the first pass sees the photo with its long side at ``det_side``
(small photos are enlarged, at most ``MAX_UPSCALE`` times). Lettering that
comes out only a few pixels high there is found again, where it pays, on
tiles at up to twice that scale (never above the photo's own): only over
what the first pass saw as small or faint text, or on a large photo (first
pass at half size or less) as any line, at most ``max_tiles`` tiles. A
4000 px photo with street signs 1000 px high in a corner: the first pass
reads three of its five signs, the tiles all five; of the 22 face photos, 3 run one
tile (over a false line) and the rest none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)

# DBNet post-processing, PaddleOCR's values: pixels above BIN_THRESH are text,
# a region is kept when its mean probability reaches BOX_THRESH, and grows by
# UNCLIP (the network predicts text kernels shrunk by about that much).
BIN_THRESH = 0.3
BOX_THRESH = 0.5
UNCLIP = 1.6
MAX_REGIONS = 300  # more is a texture, not text; it bounds the recognizer's work

MAX_UPSCALE = 2.0  # a 348 px receipt needs 2x for its 12 px lettering; more only costs time
# First-pass lines under this many map pixels high (or components too faint to
# keep) mark a tile for a closer look.
SMALL_PX = 14.0
FAINT_MIN = 0.15
TILE_ZOOM = 2.0
# On a photo whose first pass found fewer lines than MANY_LINES, a tile keeps only this many of
# its own pixels round the hints it looks at (DBNet sees a line's surroundings; a line cut by
# the tile's edge is taken from the first pass).
TILE_MARGIN = 96
MANY_LINES = 8
LARGE_SCALE = 0.5  # a first pass at this scale or less is a large photo: every line found gets a closer look
BLOB_ASPECT = 1.3  # regions less elongated than this are blobs (a face, a button), not lines to look closer at

# A strip whose centre line strays from straight by more than this share of its
# thickness is read as a curve.
CURVE_MIN_BEND = 0.35

# DBNet over a large picture runs in pieces sharing this many pixels with their neighbours. Its
# squeeze-excitation blocks see a whole piece, so a line cut by a seam reads differently in each
# piece: where both count, the higher probability wins. A piece's last PIECE_MARGIN pixels at an
# inner edge, seen without context beyond, do not count. (64 with a hard cut in the middle lost
# 'CHO' of the Korean receipt's title turned sideways.)
PIECE_OVERLAP = 96
PIECE_MARGIN = 16

# A probability map for a picture: returns the map and the x, y factors from map to picture pixels.
ProbabilityMap = Callable[[np.ndarray, float], tuple[np.ndarray, float, float]]


@dataclass
class Region:
    """A line of text in the photo's pixels.

    ``quad``: four corners clockwise from the top left (for a curved line,
    the rectangle around it). ``centre``: for a curved line only, points along
    its middle from one end to the other, and ``height`` the strip's height.
    """

    quad: np.ndarray
    score: float
    centre: np.ndarray | None = None
    height: float = 0.0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y0 = self.quad.min(axis=0)
        x1, y1 = self.quad.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def thickness(self) -> float:
        """The short side of the region, in the photo's pixels."""
        if self.centre is not None:
            return self.height
        return float(min(np.linalg.norm(self.quad[0] - self.quad[1]), np.linalg.norm(self.quad[0] - self.quad[3])))


def first_scale(width: int, height: int, det_side: int) -> float:
    """The first pass's scale: long side to ``det_side``, enlarging at most ``MAX_UPSCALE`` times."""
    return min(MAX_UPSCALE, det_side / max(width, height))


@dataclass
class FirstPass:
    """The first look at a photo: its regions, the hints for a closer look, and the scale it ran at."""

    regions: list[Region]
    hints: list[tuple[float, float, float, float]]
    scale: float


def first_pass(bgr: np.ndarray, run: ProbabilityMap, det_side: int) -> FirstPass:
    """DBNet over the whole photo at ``det_side`` (``run``: DBNet on a picture at a scale)."""
    h, w = bgr.shape[:2]
    scale = first_scale(w, h, det_side)
    pred, fx, fy = run(bgr, scale)
    regions, hints = regions_from_map(pred, fx, fy, every_line=scale <= LARGE_SCALE)
    return FirstPass(regions, hints, scale)


def closer_look(bgr: np.ndarray, run: ProbabilityMap, first: FirstPass, det_side: int, max_tiles: int) -> list[Region]:
    """The first pass's regions, with tiles at twice its scale run over its hints (at most ``max_tiles``)."""
    h, w = bgr.shape[:2]
    # Tiles never enlarge the photo: a small photo's first pass was enlarged already.
    zoom = min(TILE_ZOOM * first.scale, 1.0)
    regions = first.regions
    if max_tiles <= 0 or not first.hints or zoom < first.scale * 1.5:
        return regions
    # A photo with a few lines: the tiles look for the hinted words alone. Among many lines, a
    # whole tile reads the lines round them better too (11 of the Safeway receipt's 51 phrases).
    margin = TILE_MARGIN / zoom if len(first.regions) < MANY_LINES else None
    for x0, y0, x1, y1 in tiles_to_look_at(first.hints, w, h, zoom, det_side, max_tiles, margin):
        tile_pred, tfx, tfy = run(bgr[y0:y1, x0:x1], zoom)
        found, _ = regions_from_map(tile_pred, tfx, tfy, offset=(x0, y0))
        # A region cut by the tile's edge is whole in the first pass or in a neighbour.
        inner = [r for r in found if _inside_tile(r, (x0, y0, x1, y1), w, h)]
        regions = merge_regions(regions, inner, (x0, y0, x1, y1))
    return regions


def find_regions(bgr: np.ndarray, run: ProbabilityMap, det_side: int, max_tiles: int) -> list[Region]:
    """Text regions in ``bgr`` (photo pixels): the first pass and the closer look."""
    return closer_look(bgr, run, first_pass(bgr, run, det_side), det_side, max_tiles)


def regions_from_map(
    pred: np.ndarray, fx: float, fy: float, offset: tuple[int, int] = (0, 0), every_line: bool = False
) -> tuple[list[Region], list[tuple[float, float, float, float]]]:
    """Regions from a probability map, and hints for a closer look (boxes in photo pixels): text too
    small or faint to keep, and with ``every_line`` every region longer than high (on a photo shrunk
    much, the lines of a sign run together into one thick region)."""
    mask = cv2.dilate((pred > BIN_THRESH).astype(np.uint8), np.ones((2, 2), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    regions: list[Region] = []
    hints: list[tuple[float, float, float, float]] = []
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:MAX_REGIONS] + 1  # the largest first
    for label in order:
        x, y, bw, bh, area = stats[label]
        if area < 4:
            continue
        patch = labels[y:y + bh, x:x + bw] == label
        ys, xs = np.nonzero(patch)
        points = np.stack([xs + x, ys + y], axis=1).astype(np.float32)
        score = float(pred[y:y + bh, x:x + bw][patch].mean())
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(points)
        short = min(rw, rh)
        box = (x * fx + offset[0], y * fy + offset[1], (x + bw) * fx + offset[0], (y + bh) * fy + offset[1])
        if short < 2 or score < BOX_THRESH:
            if score >= FAINT_MIN and area >= 6:
                hints.append(box)
            continue
        region = curved_region(points, (cx, cy), (rw, rh), angle, area, score)
        if region is None:
            grow = rw * rh * UNCLIP / (2 * (rw + rh))  # PaddleOCR's offset: area * ratio / perimeter
            rw, rh = rw + 2 * grow, rh + 2 * grow
            if min(rw, rh) < 5:
                continue
            quad = cv2.boxPoints(((cx, cy), (rw, rh), angle))
            region = Region(order_quad(quad), score)
        if region.thickness < SMALL_PX or (every_line and max(rw, rh) >= BLOB_ASPECT * min(rw, rh)):
            hints.append(box)
        regions.append(_scaled(region, fx, fy, offset))
    return regions, hints


def curved_region(
    points: np.ndarray, centre: tuple[float, float], size: tuple[float, float], angle: float, area: int, score: float
) -> Region | None:
    """A curved line's centre line, when the component bends; None when a rectangle fits it.

    The component's pixels are measured along the rectangle's long axis: the
    middle of the strip across it, in slices, fitted with a cubic.
    """
    rw, rh = size
    length, thick = max(rw, rh), min(rw, rh)
    if length < 4 * thick:  # short: a rectangle fits whatever bend it has
        return None
    theta = np.deg2rad(angle if rw >= rh else angle + 90)
    axis = np.array([np.cos(theta), np.sin(theta)], dtype=np.float32)
    if axis[0] < 0:
        axis = -axis  # read left to right
    normal = np.array([-axis[1], axis[0]], dtype=np.float32)  # points down the page
    rel = points - np.array(centre, dtype=np.float32)
    u, v = rel @ axis, rel @ normal
    slices = max(4, int(length / max(thick, 1.0)))
    edges = np.linspace(u.min(), u.max() + 1e-3, slices + 1)
    which = np.digitize(u, edges) - 1
    mids, heights, us = [], [], []
    for i in range(slices):
        vs = v[which == i]
        if len(vs) < 2:
            continue
        us.append((edges[i] + edges[i + 1]) / 2)
        mids.append((vs.min() + vs.max()) / 2)
        heights.append(vs.max() - vs.min() + 1)
    if len(us) < 4:
        return None
    fit = np.polyfit(us, mids, 3 if len(us) >= 6 else 2)
    line = np.polyfit(us, mids, 1)
    grid = np.linspace(u.min(), u.max(), 24)
    path = np.stack([grid, np.polyval(fit, grid)], axis=1)
    # Thickness across the curve: the area over the length along it (a slice's
    # extent across the axis overstates it where the curve is steep).
    kernel = min(float(np.median(heights)), area / max(1.0, float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())))
    if np.abs(path[:, 1] - np.polyval(line, grid)).max() < CURVE_MIN_BEND * kernel:
        return None
    grow = kernel * UNCLIP / 2  # PaddleOCR's offset for a long strip: thickness * ratio / 2 on each side
    grid = np.linspace(u.min() - grow, u.max() + grow, 48)
    middle = np.polyval(fit, grid)
    centre_line = np.array(centre, dtype=np.float32) + np.outer(grid, axis) + np.outer(middle, normal)
    height = kernel + 2 * grow
    top, bottom = centre_line - normal * height / 2, centre_line + normal * height / 2
    quad = cv2.boxPoints(cv2.minAreaRect(np.concatenate([top, bottom]).astype(np.float32)))
    return Region(order_quad(quad), score, centre=centre_line.astype(np.float32), height=float(height))


def tiles_to_look_at(
    hints: list[tuple[float, float, float, float]], width: int, height: int, zoom: float, det_side: int, max_tiles: int,
    margin: float | None = None,
) -> list[tuple[int, int, int, int]]:
    """Tiles (photo pixels, ``det_side`` map pixels at ``zoom``) over the hints, the most hinted first.

    The box round all hints is covered by as few tiles as fit it, spread
    evenly (so they overlap rather than leave a sliver); tiles with no hint's
    centre in them are not run.
    """
    side = int(det_side / zoom)
    x0 = max(0.0, min(h[0] for h in hints))
    y0 = max(0.0, min(h[1] for h in hints))
    x1 = min(float(width), max(h[2] for h in hints))
    y1 = min(float(height), max(h[3] for h in hints))

    def starts(low: float, high: float, limit: int) -> list[int]:
        count = max(1, int(np.ceil((high - low) / side)))
        middle = (low + high) / 2
        span = max(side, count * side)
        first = min(max(0.0, middle - span / 2), max(0.0, limit - span))
        return [int(min(first + i * side, max(0, limit - side))) for i in range(count)]

    tiles = [
        (left, top, min(width, left + side), min(height, top + side))
        for top in starts(y0, y1, height) for left in starts(x0, x1, width)
    ]
    centres = [((h[0] + h[2]) / 2, (h[1] + h[3]) / 2) for h in hints]
    counts = [sum(tx0 <= cx < tx1 and ty0 <= cy < ty1 for cx, cy in centres) for tx0, ty0, tx1, ty1 in tiles]
    ranked = sorted((i for i in range(len(tiles)) if counts[i]), key=lambda i: -counts[i])[:max_tiles]
    if margin is None:
        return [tiles[i] for i in sorted(ranked)]
    return [_around_hints(tiles[i], hints, centres, margin) for i in sorted(ranked)]


def _around_hints(tile: tuple[int, int, int, int], hints: list[tuple[float, float, float, float]],
                  centres: list[tuple[float, float]], margin: float) -> tuple[int, int, int, int]:
    """``tile`` cut down to the hints whose centres are in it and ``margin`` pixels round them: a
    word hinted on a face photo had DBNet run over a whole 1000 px square (170 ms) for a 30 x 90 box."""
    tx0, ty0, tx1, ty1 = tile
    inside = [h for h, (cx, cy) in zip(hints, centres, strict=True) if tx0 <= cx < tx1 and ty0 <= cy < ty1]
    return (max(tx0, int(min(h[0] for h in inside) - margin)), max(ty0, int(min(h[1] for h in inside) - margin)),
            min(tx1, int(np.ceil(max(h[2] for h in inside) + margin))),
            min(ty1, int(np.ceil(max(h[3] for h in inside) + margin))))


def merge_regions(first: list[Region], closer: list[Region], tile: tuple[int, int, int, int]) -> list[Region]:
    """The first pass's regions, less those the closer look over ``tile`` saw better, plus the closer look's.

    A first-pass region inside the tile with a closer region's centre in it
    was seen again (often as several lines run together); one the closer
    look found nothing in stays.
    """
    if not closer:
        return first
    tx0, ty0, tx1, ty1 = tile
    centres = [((c.bounds[0] + c.bounds[2]) / 2, (c.bounds[1] + c.bounds[3]) / 2) for c in closer]

    def seen_again(r: Region) -> bool:
        x0, y0, x1, y1 = r.bounds
        inside = tx0 <= x0 and ty0 <= y0 and x1 <= tx1 and y1 <= ty1
        return inside and any(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in centres)

    kept = [r for r in first if not seen_again(r)]
    fresh = [c for c in closer if not any(_overlap(c, r) > 0.8 for r in kept)]
    return kept + fresh


Window = tuple[int, int, int, int]  # x0, y0, x1, y1


def pieces(width: int, height: int, max_pixels: int) -> list[tuple[Window, Window]]:
    """How to run DBNet on a ``width`` x ``height`` picture in pieces of at most ``max_pixels`` pixels.

    Each piece: the window DBNet sees and the window of its map that counts
    (all but PIECE_MARGIN at inner edges; together they cover the picture,
    overlapping). Of the splits into columns and rows whose pieces fit, the
    one with the fewest pixels in all (overlaps counted) wins, then the
    fewest pieces. ``max_pixels`` 0 (or a picture that fits): one piece.
    Sides stay multiples of 32 where the picture's are.
    """
    if max_pixels <= 0 or width * height <= max_pixels:
        return [((0, 0, width, height), (0, 0, width, height))]
    nx, ny = width // PIECE_OVERLAP + 1, height // PIECE_OVERLAP + 1  # when none fits: the smallest there are
    best: tuple[int, int] | None = None
    for cx in range(1, nx + 1):
        for cy in range(1, ny + 1):
            area = _piece_side(width, cx) * _piece_side(height, cy)
            if area <= max_pixels:
                cost = (cx * cy * area, cx * cy)
                if best is None or cost < best:
                    best, (nx, ny) = cost, (cx, cy)
                break  # more rows only add overlap
    return [((x0, y0, x1, y1), (kx0, ky0, kx1, ky1))
            for y0, y1, ky0, ky1 in _spans(height, ny) for x0, x1, kx0, kx1 in _spans(width, nx)]


def _piece_side(length: int, count: int) -> int:
    """The side of ``count`` pieces overlapping by PIECE_OVERLAP along ``length`` (a multiple of 32)."""
    if count == 1:
        return length
    return min(length, -(-(length + (count - 1) * PIECE_OVERLAP) // (count * 32)) * 32)


def _spans(length: int, count: int) -> list[tuple[int, int, int, int]]:
    """``count`` pieces along ``length``, evenly spread: (start, end, counted start, counted end) each."""
    side = _piece_side(length, count)
    starts = [round(i * (length - side) / max(1, count - 1)) for i in range(count)]
    return [(start, start + side, start + PIECE_MARGIN if start > 0 else 0,
             start + side - PIECE_MARGIN if start + side < length else length) for start in starts]


def order_quad(quad: np.ndarray) -> np.ndarray:
    """The four corners clockwise (on screen) from the top left, as float32."""
    quad = np.asarray(quad, dtype=np.float32)
    centre = quad.mean(axis=0)
    clockwise = quad[np.argsort(np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0]))]
    return np.roll(clockwise, -int(np.argmin(clockwise.sum(axis=1))), axis=0)


def _scaled(region: Region, fx: float, fy: float, offset: tuple[int, int]) -> Region:
    """``region`` from map pixels into photo pixels."""
    factor = np.array([fx, fy], dtype=np.float32)
    shift = np.array(offset, dtype=np.float32)
    centre = None if region.centre is None else region.centre * factor + shift
    return Region(region.quad * factor + shift, region.score, centre, region.height * float(np.sqrt(fx * fy)))


def _inside_tile(region: Region, tile: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether ``region`` stays clear of the tile's inner edges (edges on the photo's border do not cut)."""
    x0, y0, x1, y1 = region.bounds
    tx0, ty0, tx1, ty1 = tile
    margin = 2
    return (
        (tx0 == 0 or x0 > tx0 + margin) and (ty0 == 0 or y0 > ty0 + margin)
        and (tx1 >= width or x1 < tx1 - margin) and (ty1 >= height or y1 < ty1 - margin)
    )


def _overlap(a: Region, b: Region) -> float:
    """The share of ``a``'s bounding box that ``b``'s covers."""
    ax0, ay0, ax1, ay1 = a.bounds
    bx0, by0, bx1, by1 = b.bounds
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    return iw * ih / max(1e-6, (ax1 - ax0) * (ay1 - ay0))
