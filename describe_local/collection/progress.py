"""A one-line progress bar on stderr: photos done of all, photos per minute, and time left.

Drawn only on a terminal (or when asked), never with ``--quiet``; redrawn at most a few
times a second. Whoever prints other lines calls :meth:`ProgressBar.clear` first, so the
bar never sits in the middle of the output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_S = 0.25  # at most this often
WIDTH = 20  # characters of the bar itself


def wanted(progress: bool | None, stream: TextIO | None = None) -> bool:
    """Whether to draw: ``progress`` when given, else only when ``stream`` is a terminal."""
    if progress is not None:
        return progress
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def render(done: int, total: int, elapsed_s: float, *, resumed: int = 0, width: int = WIDTH) -> str:
    """The bar's text: ``37/77 [#########-----------] 41.2 photos/min, 58 s left``.

    The rate counts the photos done by this run only (``done - resumed``) over ``elapsed_s``;
    until the first one there is no rate to tell.
    """
    filled = int(width * done / total) if total else width
    line = f"{done}/{total} [{'#' * filled}{'-' * (width - filled)}]"
    new = done - resumed
    if new <= 0 or elapsed_s <= 0:
        return line + (" starting" if done < total else "")
    per_min = new / elapsed_s * 60
    line += f" {per_min:.1f} photos/min"
    if done < total:
        line += f", {duration((total - done) / per_min * 60)} left"
    return line


def duration(seconds: float) -> str:
    """``seconds`` as ``42 s``, ``3 min 05 s`` or ``2 h 07 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressBar:
    """The bar for ``total`` photos, of which ``resumed`` were done by an earlier run."""

    def __init__(self, total: int, *, resumed: int = 0, enabled: bool = True, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = resumed
        self.resumed = resumed
        self.enabled = enabled and total > 0
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._shown = False  # the bar is on the screen now

    def advance(self, count: int = 1) -> None:
        self.done += count
        self.draw(force=self.done >= self.total)

    def draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if not force and self._drawn_at is not None and now - self._drawn_at < REDRAW_S:
            return
        self._drawn_at = now
        text = render(self.done, self.total, now - self._started, resumed=self.resumed)
        self._write(f"\r{text}\x1b[K")
        self._shown = True

    def clear(self) -> None:
        """Take the bar off the screen (before other output); the next :meth:`draw` puts it back."""
        if self.enabled and self._shown:
            self._write("\r\x1b[K")
            self._shown = False
            self._drawn_at = None

    def close(self) -> None:
        """Leave the final bar on its own line."""
        if self.enabled:
            self.draw(force=True)
            self._write("\n")
            self.enabled = False

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # stderr gone: the bar is not worth failing the run for
            self.enabled = False
