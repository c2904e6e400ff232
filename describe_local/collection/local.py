"""``--jobs N``: N worker processes on this machine, each with its own models, fed from one queue.

The driver keeps the queue and hands each idle worker the next photo, so it always knows
which photo each worker holds. A worker that dies (killed, out of memory, stuck past
``collection_photo_timeout_s``) is replaced and its photo goes back to the front of the
queue; a photo that stops workers ``collection_attempts`` times becomes an error record.
Results come back in the order they finish; ``run_collection`` puts them in input order.
Each worker is a :class:`~describe_local.child.Child` running
:func:`describe_local.collection.worker.build_task`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from describe_local.child import Answer, Child, Failed, Gone, close_all, wait_for_any
from describe_local.collection.records import WORKER, failure_record, sha256_file
from describe_local.collection.spec import TaskSpec
from describe_local.collection.worker import FACTORY
from describe_local.errors import DescribeLocalError, WorkerError

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often a wait for results wakes up
STOP_GRACE_S = 10.0  # idle workers get this long to close their models before they are killed


@dataclass
class _Worker:
    child: Child
    index: int | None = None  # the photo it is describing
    path: str = ""


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
                if worker.child.ready and worker.index is None and queue and may_start(queue[0][0]):
                    worker.index, worker.path = queue.popleft()
                    # Past the timeout the child is killed: its death is handled below as any.
                    worker.child.send((worker.index, worker.path), settings.collection_photo_timeout_s)
            for child in wait_for_any([w.child for w in workers], POLL_S):
                worker = next(w for w in workers if w.child is child)
                reply = child.receive()
                if isinstance(reply, Answer):
                    worker.index = None
                    yield reply.value
                elif isinstance(reply, Failed) and worker.index is None:
                    error = reply.error
                    raise error if isinstance(error, DescribeLocalError) else WorkerError(
                        f"a worker could not load the models: {error}")
                elif isinstance(reply, Failed):  # the task raised past do_photo: the photo fails, not the run
                    index, worker.index = worker.index, None
                    yield index, failure_record(worker.path, sha256_file(Path(worker.path)), reply.error)
                elif isinstance(reply, Gone):  # the worker died
                    workers.remove(worker)
                    code = reply.status
                    if worker.index is None:
                        load_deaths += 1
                        if load_deaths > jobs + 2:
                            raise WorkerError(
                                f"the worker processes keep stopping while they load the models (exit status "
                                f"{code}); run with --jobs 1 to see why")
                    else:
                        index, path = worker.index, worker.path
                        attempts[index] += 1
                        if reply.timed_out:
                            log.warning("%s took over %.0f s: its worker was stopped", path,
                                        settings.collection_photo_timeout_s)
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
            if queue and not workers:
                workers.append(_start(spec, share))
    finally:
        # Idle workers are asked to stop (they close their models), busy ones are killed.
        close_all([w.child for w in workers], STOP_GRACE_S)


def _start(spec: TaskSpec, share: int) -> _Worker:
    threads = os.environ.get("OMP_NUM_THREADS", str(share))
    return _Worker(Child.start(FACTORY, spec, name="a collection worker", env={"OMP_NUM_THREADS": threads}))
