"""A bounded queue of heavy work, run off the event loop.

Describing a photo takes seconds of CPU. The work runs in one worker thread
(the describer already spreads each photo over the cores), so the event loop
keeps answering health checks, pages and audio meanwhile. At most
``max_pending`` jobs are admitted (running plus waiting); one more is refused
at once with a hint of when to retry, instead of piling up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from describe_local.errors import JobTimeout, QueueFull

T = TypeVar("T")


@dataclass
class JobQueue:
    """Runs callables in ``workers`` threads, admitting at most ``max_pending`` at once."""

    max_pending: int
    timeout_s: float
    workers: int = 1
    _executor: cf.ThreadPoolExecutor = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _pending: int = field(default=0, init=False)
    _recent_s: deque[float] = field(default_factory=lambda: deque(maxlen=20), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._executor = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="job")

    @property
    def pending(self) -> int:
        """Jobs admitted and not finished (running or waiting)."""
        return self._pending

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the recent mean job time times the queue ahead."""
        mean = sum(self._recent_s) / len(self._recent_s) if self._recent_s else 5.0
        return max(1, math.ceil(mean * max(1, self._pending) / self.workers))

    def check_room(self) -> None:
        """Raise :class:`QueueFull` now if a job would be refused (before reading an upload)."""
        if self._pending >= self.max_pending:
            raise QueueFull(
                "the server is busy with other photos; try again in a few seconds",
                self.retry_after(),
            )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker and return its result.

        Raises :class:`QueueFull` when ``max_pending`` jobs are already admitted,
        and :class:`JobTimeout` when the job is not done within ``timeout_s``
        (waiting included). A job that already started cannot be stopped: it
        finishes in the background, its result is dropped, and it keeps its
        slot until then so that the bound stays true.
        """
        with self._lock:
            self.check_room()
            self._pending += 1
        future = self._executor.submit(self._timed, fn, *args)
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise JobTimeout(
                f"this took longer than {self.timeout_s:g} s and was given up; try a smaller photo"
            ) from None

    def submit(self, fn: Callable[..., T], *args: Any) -> cf.Future[T]:
        """Start ``fn(*args)`` in a worker without waiting for it (a streamed description reports
        its own progress); admitted, counted and refused (:class:`QueueFull`) as :meth:`run` is."""
        with self._lock:
            self.check_room()
            self._pending += 1
        future = self._executor.submit(self._timed, fn, *args)
        future.add_done_callback(self._release)
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._recent_s.append(time.perf_counter() - t0)

    def _release(self, _future: cf.Future) -> None:
        # Runs in the worker thread, or in the event loop's thread when a
        # waiting job is cancelled: hence the lock.
        with self._lock:
            self._pending -= 1
