"""Run the analysis stages on one photo: concurrently in threads, each within a time budget.

A stage that raises is caught and reported as a one-line error; a stage that
runs past the budget is abandoned (a thread cannot be killed: it finishes in
the background and its result is dropped) so that the description goes on.
The stages overlap for real: torch releases the GIL, Tesseract runs as a child
process, and dlib runs in a child process of its own.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from describe_local.errors import first_line
from describe_local.images import Photo
from describe_local.results import StageState

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One stage's result on one photo: its value (``None`` unless it ran) and its state."""

    value: Any
    state: StageState


class StageRunner:
    """A thread pool for up to ``stages`` stages at once."""

    def __init__(self, stages: int) -> None:
        # Twice the stages: a stage that ran past its budget still holds its thread
        # until it ends, and must not make the next photo's stages wait for it.
        self._pool = cf.ThreadPoolExecutor(max_workers=2 * stages, thread_name_prefix="stage")

    def run(self, functions: dict[str, Callable[[Photo], Any]], photo: Photo, budget_s: float,
            *, sequential: bool = False) -> dict[str, Outcome]:
        """Each function's :class:`Outcome` on ``photo``, by name; concurrently unless ``sequential``.

        Concurrent stages share one deadline, ``budget_s`` from now; sequential
        ones get ``budget_s`` each.
        """
        if sequential:
            return {name: self._wait(self._pool.submit(_timed, name, fn, photo), name, budget_s, budget_s)
                    for name, fn in functions.items()}
        futures = {name: self._pool.submit(_timed, name, fn, photo) for name, fn in functions.items()}
        deadline = time.perf_counter() + budget_s
        return {name: self._wait(future, name, max(0.0, deadline - time.perf_counter()), budget_s)
                for name, future in futures.items()}

    def close(self) -> None:
        """Stop taking work; stages still running finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _wait(future: cf.Future, name: str, timeout: float, budget_s: float) -> Outcome:
        try:
            return future.result(timeout=timeout)
        except cf.TimeoutError:
            log.warning("%s stage exceeded its %.0f s budget", name, budget_s)
            return Outcome(None, StageState.timed_out(budget_s))


def _timed(name: str, fn: Callable[[Photo], Any], photo: Photo) -> Outcome:
    """Run one stage; catch its failure so that the others still count."""
    t0 = time.perf_counter()
    try:
        value = fn(photo)
    except Exception as exc:  # a failing stage must not sink the description
        # One line for the user; the traceback only when debugging (-vv).
        log.warning("the %s stage failed: %s", name, first_line(exc))
        log.debug("the %s stage failed", name, exc_info=True)
        return Outcome(None, StageState.failed(f"{type(exc).__name__}: {first_line(exc)}", _ms_since(t0)))
    return Outcome(value, StageState.ok(_ms_since(t0)))


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
