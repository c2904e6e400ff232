"""Reading order: pieces of text read anywhere in a photo into lines, blocks, and an order to say them in.

In: :class:`Piece` s, each a run of text with its corners in the text's own
frame (top left, top right, bottom right, bottom left as the letters stand),
in the photo's pixels. Out: :class:`Arranged` lines in reading order, each
with its block index, and the photo's dominant text direction.

Each piece reads in one of four directions (right, down, left, up: a
sideways or upside-down photo, or a receipt's line printed up its edge).
Pieces of one direction are arranged in that direction's own frame, where
the text reads left to right and top to bottom:

1. pieces side by side on one row with a word's gap between them are one line
   (the detector splits a line at wide spaces and at marks like '|');
2. lines become blocks: lines stacked close under one another at a similar
   size (a sign's two lines, a paragraph), or on one row at a similar size
   (a receipt's item and its price);
3. blocks are ordered by recursive XY-cut: split at the widest band of empty
   rows, else of empty columns; what cannot be split goes top to bottom;
4. within a block, rows top to bottom, lines on a row left to right.

The dominant direction's blocks come first, then the others' (a receipt
before the line printed up its edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Unit reading direction and "down the letters" direction of the four directions,
# in image coordinates (y down): 0 reads right, 1 reads down, 2 reads left (upside down), 3 reads up.
DIRECTIONS = [
    ((1.0, 0.0), (0.0, 1.0)), ((0.0, 1.0), (-1.0, 0.0)), ((-1.0, 0.0), (0.0, -1.0)), ((0.0, -1.0), (1.0, 0.0)),
]

SAME_ROW = 0.6  # vertical overlap, as a share of the lower line's height, for two pieces to share a row
WORD_GAP = 1.2  # pieces closer than this many heights on a row are one line
LINE_GAP = 1.0  # lines closer than this many heights above one another share a block
SIZE_RATIO = 1.7  # lines whose heights differ by more are in different blocks (a title over its text)
ROW_SIZE_RATIO = 1.4


@dataclass
class Piece:
    """A run of text read in one go: ``quad`` as the letters stand, in the photo's pixels."""

    text: str
    quad: np.ndarray
    confidence: float


@dataclass
class Arranged:
    """A line in reading order: its text, the pieces it joins (indices), its box in the photo, its block."""

    text: str
    members: list[int]
    box: list[int]
    confidence: float
    block: int
    row: int  # rows within the block: lines on one row (an item and its price) share it


@dataclass
class _Line:
    members: list[int]
    u0: float
    v0: float
    u1: float
    v1: float
    thick: float  # the letters' height: the piece's own, not its box's (a tilted piece's box is taller)

    @property
    def height(self) -> float:
        return max(1.0, self.v1 - self.v0)


def direction_of(quad: np.ndarray) -> int:
    """Which of the four directions the piece reads in: 0 right, 1 down, 2 left, 3 up."""
    dx, dy = quad[1] - quad[0]
    return round(float(np.degrees(np.arctan2(dy, dx))) / 90) % 4


def arrange(pieces: list[Piece], width: int, height: int) -> tuple[list[Arranged], int]:
    """The pieces as lines in reading order, and the dominant direction in degrees clockwise (0, 90, 180, 270)."""
    if not pieces:
        return [], 0
    groups: dict[int, list[int]] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(direction_of(piece.quad), []).append(i)
    weight = {k: sum(len(pieces[i].text) for i in members) for k, members in groups.items()}
    ranked = sorted(groups, key=lambda k: (-weight[k], k))
    arranged: list[Arranged] = []
    block = 0
    for k in ranked:
        blocks = _arrange_direction(pieces, groups[k], k)
        for rows in blocks:
            for row_index, row in enumerate(rows):
                for line in row:
                    members = line.members
                    points = np.concatenate([pieces[i].quad for i in members])
                    x0, y0 = np.clip(points.min(axis=0), 0, [width, height])
                    x1, y1 = np.clip(points.max(axis=0), 0, [width, height])
                    chars = [max(1, len(pieces[i].text)) for i in members]
                    confidence = float(np.average([pieces[i].confidence for i in members], weights=chars))
                    arranged.append(Arranged(
                        text=" ".join(pieces[i].text for i in members),
                        members=members,
                        box=[int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1))],
                        confidence=confidence, block=block, row=row_index,
                    ))
            block += 1
    return arranged, ranked[0] * 90


def join_text(lines: list[Arranged]) -> str:
    """The lines as text: lines on one row of a block joined by a space, rows and blocks on new lines."""
    out: list[str] = []
    last: tuple[int, int] | None = None
    for line in lines:
        key = (line.block, line.row)
        if key == last:
            out[-1] += " " + line.text
        else:
            out.append(line.text)
        last = key
    return "\n".join(out)


def _arrange_direction(pieces: list[Piece], members: list[int], k: int) -> list[list[list[_Line]]]:
    """Blocks (each a list of rows, each a list of lines) of the pieces reading in direction ``k``."""
    along, down = (np.array(v) for v in DIRECTIONS[k])
    lines = []
    for i in members:
        u, v = pieces[i].quad @ along, pieces[i].quad @ down
        thick = float(np.linalg.norm(pieces[i].quad[3] - pieces[i].quad[0]))
        lines.append(_Line([i], float(u.min()), float(v.min()), float(u.max()), float(v.max()), max(1.0, thick)))
    lines = _join_pieces(lines)
    blocks = _blocks(lines)
    return [_rows(b) for b in _xy_cut(blocks)]


def _same_row(a: _Line, b: _Line) -> bool:
    overlap = min(a.v1, b.v1) - max(a.v0, b.v0)
    return overlap >= SAME_ROW * min(a.height, b.height, a.thick, b.thick)


def _join_pieces(lines: list[_Line]) -> list[_Line]:
    """Pieces on one row with no more than a word's gap between them, as one line (left to right).

    Each piece is compared with the last piece of a line, not the whole line:
    a line along a curling receipt's edge drifts across the frame.
    """
    lines = sorted(lines, key=lambda ln: ln.u0)
    joined: list[tuple[_Line, _Line]] = []  # (the line so far, its last piece)
    for line in lines:
        for index in range(len(joined) - 1, -1, -1):
            whole, last = joined[index]
            gap = line.u0 - last.u1
            size = max(line.thick, last.thick) / min(line.thick, last.thick)
            near = -0.8 * line.thick <= gap <= WORD_GAP * max(line.thick, last.thick)
            if _same_row(line, last) and size <= ROW_SIZE_RATIO and near:
                whole.members.extend(line.members)
                whole.u1, whole.v0, whole.v1 = max(whole.u1, line.u1), min(whole.v0, line.v0), max(whole.v1, line.v1)
                joined[index] = (whole, line)
                break
        else:
            joined.append((_Line(list(line.members), line.u0, line.v0, line.u1, line.v1, line.thick), line))
    return [whole for whole, _ in joined]


def _blocks(lines: list[_Line]) -> list[list[_Line]]:
    """Lines grouped into blocks (union-find over neighbouring pairs)."""
    parent = list(range(len(lines)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            b = lines[j]
            size = max(a.thick, b.thick) / min(a.thick, b.thick)
            if _same_row(a, b):
                linked = size <= ROW_SIZE_RATIO
            else:
                upper, lower = (a, b) if a.v0 <= b.v0 else (b, a)
                gap = lower.v0 - upper.v1
                across = min(a.u1, b.u1) - max(a.u0, b.u0)
                near = -0.3 * lower.thick <= gap <= LINE_GAP * max(a.thick, b.thick)
                linked = size <= SIZE_RATIO and near and across > 0
            if linked:
                parent[find(i)] = find(j)
    groups: dict[int, list[_Line]] = {}
    for i, line in enumerate(lines):
        groups.setdefault(find(i), []).append(line)
    return list(groups.values())


def _extent(block: list[_Line]) -> tuple[float, float, float, float]:
    u0, v0 = min(ln.u0 for ln in block), min(ln.v0 for ln in block)
    return u0, v0, max(ln.u1 for ln in block), max(ln.v1 for ln in block)


def _xy_cut(blocks: list[list[_Line]]) -> list[list[_Line]]:
    """Blocks in reading order: split at the widest empty band across (rows), else down (columns), recursively."""
    if len(blocks) <= 1:
        return blocks
    extents = [_extent(b) for b in blocks]
    for low, high in ((1, 3), (0, 2)):  # across first (top to bottom), then down (left to right)
        order = sorted(range(len(blocks)), key=lambda i: extents[i][low])
        parts, current, reach = [], [order[0]], extents[order[0]][high]
        for i in order[1:]:
            if extents[i][low] >= reach:
                parts.append(current)
                current = []
            current.append(i)
            reach = max(reach, extents[i][high])
        parts.append(current)
        if len(parts) > 1:
            return [b for part in parts for b in _xy_cut([blocks[i] for i in part])]
    return sorted(blocks, key=lambda b: (_extent(b)[1], _extent(b)[0]))


def _rows(block: list[_Line]) -> list[list[_Line]]:
    """The block's lines in rows, top to bottom; each row left to right."""
    rows: list[list[_Line]] = []
    for line in sorted(block, key=lambda ln: (ln.v0 + ln.v1) / 2):
        if rows and any(_same_row(line, other) for other in rows[-1]):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [sorted(row, key=lambda ln: ln.u0) for row in rows]
