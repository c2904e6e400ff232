"""Which lines of text a listener has heard: a line read in a frame is new unless one like it
was spoken and has stayed in view since.

OCR reads the same sign a little differently from frame to frame ("EXlT", "EXIT", "EXIT."),
so lines are compared by a similarity of their normalised letters, not by equality. A line
that leaves the view and comes back after ``forget_s`` is new again: the listener may have
turned to something else and back.
"""

from __future__ import annotations

import difflib
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

# Two readings of one line: at least this similar (difflib's ratio over normalised letters).
SAME_LINE = 0.75
# A reading that is part of a heard line, or a heard line with a little more: the same line,
# when the shorter is at least this share of the longer.
SAME_PART = 0.6
FORGET_S = 15.0  # a heard line not seen this long may be spoken again (OCR misses a line now and then)
MIN_LETTERS = 2  # shorter readings are noise (a stray mark read as "l")

_NOT_LETTERS = re.compile(r"[\W_]+", re.UNICODE)


def normalised(text: str) -> str:
    """``text`` as compared: case-folded, accents and punctuation kept out, spaces removed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _NOT_LETTERS.sub("", "".join(c for c in decomposed if not unicodedata.combining(c)))


def similar(a: str, b: str) -> bool:
    """Whether two normalised readings are the same line read twice."""
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    if shorter in longer and len(shorter) >= SAME_PART * len(longer):
        return True
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= SAME_LINE


@dataclass
class _Heard:
    key: str
    last_seen: float


@dataclass
class LineTracker:
    """The lines spoken so far, each with when it was last in view.

    ``new_lines(texts)`` takes the lines read in one frame and returns those not heard (in the
    order given), remembering them; lines already heard are marked as still in view. ``seen``
    marks heard lines as in view from a part of them (a line cut off by the frame's edge).
    """

    forget_s: float = FORGET_S
    clock: Callable[[], float] = time.monotonic
    _heard: list[_Heard] = field(default_factory=list)

    def seen(self, texts: list[str]) -> None:
        """Mark heard lines like ``texts`` (read in part, e.g. cut at the frame's edge) as still in view."""
        now = self.clock()
        for text in texts:
            key = normalised(text)
            for heard in self._heard:
                if len(key) >= MIN_LETTERS and (similar(key, heard.key) or key in heard.key):
                    heard.last_seen = now

    def new_lines(self, texts: list[str]) -> list[str]:
        now = self.clock()
        self._heard = [h for h in self._heard if now - h.last_seen <= self.forget_s]
        new: list[str] = []
        for text in texts:
            key = normalised(text)
            if len(key) < MIN_LETTERS:
                continue
            match = next((h for h in self._heard if similar(key, h.key)), None)
            if match is not None:
                match.last_seen = now
                continue
            self._heard.append(_Heard(key, now))
            new.append(text.strip())
        return new

    def forget(self) -> None:
        """Forget every line (a new start: everything in view is new again)."""
        self._heard.clear()
