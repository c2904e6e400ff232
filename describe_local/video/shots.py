"""Shot changes: hard cuts and fades through black, from small grey frames, one frame at a time.

In: (time, grey picture) pairs in order (:mod:`describe_local.video.frames`). Out: cut times
(:class:`CutDetector`) and :class:`Shot` objects with their sharpest frame (:func:`iter_shots`).

* A hard cut is a jump in the mean absolute difference of consecutive frames, well above both a
  fixed floor and the recent motion (so that a pan is not a cut), with the grey-level histogram
  changing too (a flash of light changes brightness, not the histogram's shape as much).
* A fade is a run of dark frames between two pictures: the cut is placed about two thirds of the way into
  the dark run, so that the next shot's narration may start in the black before it appears.
  Cuts into or out of black are part of the fade, not shots of their own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from describe_local.video.frames import SmallFrame

DARK_MEAN = 4.0  # grey level (0..255) under which a frame is black
CUT_FLOOR = 25.0  # mean absolute difference that can be a hard cut at all
CUT_OVER_MOTION = 6.0  # ... and how many times the recent median difference it must be
HIST_CHANGE = 0.15  # half the L1 distance of the 32-bin histograms, 0..1
FADE_POSITION = 0.65  # where in a dark run the cut goes (0: where it starts, 1: where it ends)
MIN_SHOT_S = 0.5  # shots shorter than this are merged into the one before
CANDIDATE_EVERY_S = 0.25  # how often a frame is tried as the shot's picture
SETTLE_S = 0.2  # after a cut: frames still mid-transition are not tried


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute grey difference (0..255) and histogram change (0..1) between two same-size frames."""
    diff = float(np.abs(a - b).mean())
    ha = np.histogram(a, 32, (0, 256))[0]
    hb = np.histogram(b, 32, (0, 256))[0]
    return diff, float(np.abs(ha - hb).sum()) / (2 * a.size)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: higher is sharper (blur and motion lower it)."""
    lap = -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    return float(lap.var()) if lap.size else 0.0


class CutDetector:
    """Feed it frames in order; it answers the cut times it has become sure of.

    A fade's cut is known only when the picture comes back, so a cut may lie before the frame that
    revealed it. Cuts are at least :data:`MIN_SHOT_S` apart and never at the very start.
    """

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._recent: deque[float] = deque(maxlen=15)
        self._dark_since: float | None = None
        self._seen_light = False
        self._last_cut = 0.0

    def feed(self, time: float, grey: np.ndarray) -> list[float]:
        """The cuts that ``grey`` at ``time`` reveals (usually none)."""
        cuts: list[float] = []
        dark = float(grey.mean()) < DARK_MEAN
        if dark:
            if self._dark_since is None:
                self._dark_since = time
        else:
            if self._dark_since is not None and self._seen_light:
                cuts.append(self._dark_since + FADE_POSITION * (time - self._dark_since))
            elif self._previous is not None and self._dark_since is None:
                cuts += self._hard_cut(time, grey)
            self._dark_since = None
            self._seen_light = True
        if self._previous is None or self._previous.shape != grey.shape:
            self._recent.clear()
        self._previous = grey
        kept = [c for c in cuts if c - self._last_cut >= MIN_SHOT_S]
        if kept:
            self._last_cut = kept[-1]
        return kept

    def _hard_cut(self, time: float, grey: np.ndarray) -> list[float]:
        assert self._previous is not None
        if self._previous.shape != grey.shape:
            return []
        diff, hist = difference(self._previous, grey)
        motion = float(np.median(self._recent)) if self._recent else 0.0
        self._recent.append(diff)
        if diff >= CUT_FLOOR and diff >= CUT_OVER_MOTION * motion and hist >= HIST_CHANGE:
            self._recent.clear()  # the new shot's own motion starts afresh
            return [time]
        return []


@dataclass
class Shot:
    """One shot: where it starts and ends (seconds) and its sharpest frame (``None``: all black)."""

    start: float
    end: float
    picture: Image.Image | None = field(default=None, repr=False)
    picture_time: float | None = None


class _Best:
    """The sharpest frame seen so far in the current shot (a reference, converted once at the end)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.frame: SmallFrame | None = None
        self.score = -1.0
        self.next_try = start + SETTLE_S

    def offer(self, frame: SmallFrame) -> None:
        if frame.time < self.next_try or float(frame.grey.mean()) < DARK_MEAN:
            return
        self.next_try = frame.time + CANDIDATE_EVERY_S
        score = sharpness(frame.grey)
        if score > self.score:
            self.frame, self.score = frame, score

    def shot(self, end: float) -> Shot:
        if self.frame is None:
            return Shot(self.start, end)
        return Shot(self.start, end, self.frame.picture(), self.frame.time)


def iter_shots(frames: Iterable[SmallFrame], duration: float = 0.0) -> Iterator[Shot]:
    """The shots of a stream of frames, each yielded as soon as its end is known.

    Holds one decoded frame per open shot (the sharpest so far), never the video.
    """
    detector = CutDetector()
    best = _Best(0.0)
    last_time = 0.0
    for frame in frames:
        last_time = frame.time
        for cut in detector.feed(frame.time, frame.grey):
            yield best.shot(cut)
            best = _Best(cut)
        best.offer(frame)
    yield best.shot(max(duration, last_time))


def cut_times(frames: Iterable[tuple[float, np.ndarray]]) -> list[float]:
    """All the cut times in ``(time, grey)`` pairs (for tests and the benchmark)."""
    detector = CutDetector()
    return [cut for time, grey in frames for cut in detector.feed(time, grey)]
