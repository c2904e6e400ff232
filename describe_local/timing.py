"""Milliseconds: a stopwatch for the steps of one photo's description."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class Stopwatch:
    """Milliseconds per step, and the total since it was made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + ms_since(t0)  # a step taken twice adds up

    def done(self) -> dict[str, float]:
        """Every step and ``total``, rounded to a tenth of a millisecond."""
        self.ms["total"] = ms_since(self.started)
        return {k: round(v, 1) for k, v in self.ms.items()}


def ms_since(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - t0) * 1000.0
