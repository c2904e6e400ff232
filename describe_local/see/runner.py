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

from describe_local.errors import StageTimedOut, first_line
from describe_local.images import Photo
from describe_local.results import Seen, StageState, Status
from describe_local.see import quality
from describe_local.timing import Stopwatch

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
        return {name: wait() for name, wait in self.start(functions, photo, budget_s).items()}

    def start(self, functions: dict[str, Callable[[Photo], Any]], photo: Photo,
              budget_s: float) -> dict[str, Callable[[], Outcome]]:
        """Start every function on ``photo`` at once; returns, by name, a call that waits for that
        one's :class:`Outcome` (all within one deadline, ``budget_s`` from now), so that a caller can
        take each as soon as it is done, in the order it chooses."""
        futures = {name: self._pool.submit(_timed, name, fn, photo) for name, fn in functions.items()}
        deadline = time.perf_counter() + budget_s

        def waiter(name: str, future: cf.Future) -> Callable[[], Outcome]:
            return lambda: self._wait(future, name, max(0.0, deadline - time.perf_counter()), budget_s)

        return {name: waiter(name, future) for name, future in futures.items()}

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


def record(seen: Seen, stage: str, outcome: Outcome, clock: Stopwatch) -> None:
    """Put what ``stage`` found on the photo into ``seen``, with its state and time (and the
    advice its findings give: text turned sideways)."""
    clock.ms[stage] = outcome.state.ms or 0.0
    seen.stages[stage] = outcome.state
    value = outcome.value
    if value is None:
        return
    if stage == "caption":
        seen.caption = value
    elif stage == "faces":
        seen.people, seen.unknown_faces = list(value.people), int(value.unknown)
    else:
        seen.reading = value
        if value.text and (turned := quality.orientation_advice(value.rotation)):
            seen.guidance.append(turned)


def _timed(name: str, fn: Callable[[Photo], Any], photo: Photo) -> Outcome:
    """Run one stage; catch its failure so that the others still count."""
    t0 = time.perf_counter()
    try:
        value = fn(photo)
    except StageTimedOut as exc:  # its helper was stopped at the budget: out of time, as below
        log.warning("the %s stage ran out of time: %s", name, first_line(exc))
        return Outcome(None, StageState(Status.TIMED_OUT, f"timed out: {first_line(exc)}", _ms_since(t0)))
    except Exception as exc:  # a failing stage must not sink the description
        # One line for the user; the traceback only when debugging (-vv).
        log.warning("the %s stage failed: %s", name, first_line(exc))
        log.debug("the %s stage failed", name, exc_info=True)
        return Outcome(None, StageState.failed(f"{type(exc).__name__}: {first_line(exc)}", _ms_since(t0)))
    return Outcome(value, StageState.ok(_ms_since(t0)))


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
