"""Which way to move the phone, from where the text stage saw text in a frame.

In: the lines read (their boxes in the frame's pixels and confidences) and the frame's size.
Out: an :class:`Aim`, or ``None`` when the text is well in view. The rules, in the order they
are tried:

* a line touching an edge of the frame is cut off there: move the phone that way (the edge
  that cuts the most lines wins);
* lines under :data:`SMALL_LINE` of the frame's height, read with a mean confidence under
  :data:`SURE`, are too small to read well: move closer;
* lines found but read with a mean confidence under :data:`UNSURE` are blurred: hold still.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

EDGE = 0.015  # a box within this share of the frame's side from an edge touches it
SMALL_LINE = 0.035  # of the frame's height: ~17 px in a 480 px frame, the size PP-OCR starts to miss letters
UNSURE = 0.6  # mean line confidence below this: the letters are smeared
SURE = 0.9  # small text read with this mean confidence or more is read well enough: no need to come closer


class Aim(enum.StrEnum):
    """Guidance for aiming the phone at text."""

    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"
    CLOSER = "closer"
    FARTHER = "farther"
    STEADY = "steady"
    NO_TEXT = "no text"


SENTENCES = {
    Aim.LEFT: "Move the phone left.",
    Aim.RIGHT: "Move the phone right.",
    Aim.UP: "Move the phone up.",
    Aim.DOWN: "Move the phone down.",
    Aim.CLOSER: "Move closer.",
    Aim.FARTHER: "Move the phone farther away.",
    Aim.STEADY: "Hold still.",
    Aim.NO_TEXT: "No text.",
}


@dataclass(frozen=True)
class SeenLine:
    """One line the text stage read in a frame: ``box`` is [x0, y0, x1, y1] in the frame's pixels."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float


def cut_edges(box: Sequence[int], width: int, height: int) -> list[Aim]:
    """The edges of the frame that ``box`` touches, as the way to move the phone to see past them."""
    x0, y0, x1, y1 = box
    mx, my = max(2, round(EDGE * width)), max(2, round(EDGE * height))
    edges = []
    if x0 <= mx:
        edges.append(Aim.LEFT)
    if x1 >= width - 1 - mx:
        edges.append(Aim.RIGHT)
    if y0 <= my:
        edges.append(Aim.UP)
    if y1 >= height - 1 - my:
        edges.append(Aim.DOWN)
    return edges


def whole(line: SeenLine, width: int, height: int) -> bool:
    """Whether ``line`` is wholly in the frame (touches no edge)."""
    return not cut_edges(line.box, width, height)


def aim(lines: Sequence[SeenLine], width: int, height: int) -> Aim | None:
    """The guidance for a frame whose text stage read ``lines``; ``None`` when none is needed
    (or when nothing was read: saying "no text" is a matter of time, see :mod:`.session`)."""
    if not lines:
        return None
    counts: dict[Aim, int] = {}
    for line in lines:
        for edge in cut_edges(line.box, width, height):
            counts[edge] = counts.get(edge, 0) + 1
    if counts:
        return max(counts, key=lambda edge: counts[edge])
    confidence = statistics.fmean(line.confidence for line in lines)
    if confidence < SURE and statistics.median(line.box[3] - line.box[1] for line in lines) < SMALL_LINE * height:
        return Aim.CLOSER
    if confidence < UNSURE:
        return Aim.STEADY
    return None
