"""``--jobs N``: N worker processes on this machine, each with its own models, fed from one queue.

The driver keeps the queue and hands each idle worker the next photo, so it always knows
which photo each worker holds. A worker that dies (killed, out of memory, stuck past
``collection_photo_timeout_s``) is replaced and its photo goes back to the front of the
queue; a photo that stops workers ``collection_attempts`` times becomes an error record.
Results come back in the order they finish; ``run_collection`` puts them in input order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path
from typing import Any

from describe_local.collection.records import WORKER, failure_record, sha256_file
from describe_local.collection.spec import TaskSpec
from describe_local.errors import DescribeLocalError, WorkerError

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often a wait for results wakes to check the clock
STOP_GRACE_S = 10.0  # idle workers get this long to close their models before they are killed
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    ready: bool = False
    index: int | None = None  # the photo it is describing
    path: str = ""
    since: float = 0.0


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run_local(
    todo: Sequence[tuple[int, str]],
    spec: TaskSpec,
    jobs: int,
    *,
    may_start: Callable[[int], bool] = lambda _index: True,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, record)`` for each photo of ``todo`` as it finishes, from ``jobs`` workers.

    ``may_start(index)`` holds a photo back while it is false (the driver's reorder window).
    Raises :class:`WorkerError` when the workers cannot load their models.
    """
    settings = spec.settings
    share = max(1, cpu_count() // jobs)
    spec = spec.with_threads(share)
    queue = deque(todo)
    attempts: Counter[int] = Counter()
    load_deaths = 0
    workers: list[_Worker] = []
    try:
        for _ in range(min(jobs, len(queue))):
            workers.append(_start(spec, share))
        while queue or any(w.index is not None for w in workers):
            for worker in workers:
                if worker.ready and worker.index is None and queue and may_start(queue[0][0]):
                    worker.index, worker.path = queue.popleft()
                    worker.since = time.monotonic()
                    worker.conn.send((worker.index, worker.path))
            for conn in wait([w.conn for w in workers], timeout=POLL_S):
                worker = next(w for w in workers if w.conn is conn)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None and message[0] == "ready":
                    worker.ready = True
                elif message is not None and message[0] == "failed":
                    error = message[1]
                    raise error if isinstance(error, DescribeLocalError) else WorkerError(
                        f"a worker could not load the models: {error}")
                elif message is not None:
                    _, index, record = message
                    worker.index = None
                    yield index, record
                else:  # the worker died
                    workers.remove(worker)
                    code = _reap(worker)
                    if worker.index is None:
                        load_deaths += 1
                        if load_deaths > jobs + 2:
                            raise WorkerError(
                                f"the worker processes keep stopping while they load the models (exit status "
                                f"{code}); run with --jobs 1 to see why")
                    else:
                        index, path = worker.index, worker.path
                        attempts[index] += 1
                        log.warning("a worker stopped (exit status %s) while describing %s", code, path)
                        if attempts[index] >= settings.collection_attempts:
                            yield index, failure_record(
                                path, sha256_file(Path(path)),
                                f"the worker describing this photo stopped {attempts[index]} times (killed, out "
                                "of memory, or past collection_photo_timeout_s); it was skipped", WORKER)
                        else:
                            queue.appendleft((index, path))
                    if queue and len(workers) < jobs:
                        workers.append(_start(spec, share))
            _stop_stuck(workers, settings.collection_photo_timeout_s)
            if queue and not workers:
                workers.append(_start(spec, share))
    finally:
        _stop_all(workers)


def _start(spec: TaskSpec, share: int) -> _Worker:
    ours, theirs = Pipe(duplex=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(share))
    env["DESCRIBE_LOCAL_WORKER_LOG_LEVEL"] = str(logging.getLogger().getEffectiveLevel())
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "describe_local.collection.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
        )
    finally:
        theirs.close()  # the child holds its own copy: its death now shows as the end of ours
    worker = _Worker(process, ours)
    with contextlib.suppress(OSError):  # it died at once: seen as the end of the connection
        ours.send(spec)
    return worker


def _reap(worker: _Worker) -> int | None:
    with contextlib.suppress(OSError):
        worker.conn.close()
    try:
        return worker.process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        return worker.process.wait()


def _stop_stuck(workers: list[_Worker], timeout_s: float) -> None:
    """Kill a worker that has held one photo past ``timeout_s`` (its death is handled as any)."""
    now = time.monotonic()
    for worker in workers:
        if worker.index is not None and now - worker.since > timeout_s and worker.process.poll() is None:
            log.warning("%s took over %.0f s: stopping its worker", worker.path, timeout_s)
            worker.process.kill()


def _stop_all(workers: list[_Worker]) -> None:
    """Stop every worker: idle ones are asked (they close their models), busy ones killed."""
    for worker in workers:
        if worker.index is None and worker.ready:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        else:
            with contextlib.suppress(OSError):
                worker.process.kill()
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.conn.close()
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
