"""What a worker process of a local collection run does (``local.py`` starts it as a
:class:`~describe_local.child.Child` running :func:`build_task`).

It receives a :class:`~describe_local.collection.spec.TaskSpec`, builds the task once (its
models load), then answers each ``(index, path)`` with ``(index, record)`` until the driver
stops it; the task is closed then.
"""

from __future__ import annotations

from typing import Any

from describe_local.collection.spec import PhotoTask, TaskSpec
from describe_local.collection.work import close_task, do_photo

FACTORY = "describe_local.collection.worker:build_task"  # what the child runs (ps shows it)


class PhotoWorker:
    """A built task, answering one photo at a time."""

    def __init__(self, task: PhotoTask) -> None:
        self.task = task

    def __call__(self, request: tuple[int, str]) -> tuple[int, dict[str, Any]]:
        """``(index, path)`` -> ``(index, record)``; a photo that fails is a failure record."""
        index, path = request
        return index, do_photo(self.task, path)

    def close(self) -> None:
        close_task(self.task)


def build_task(spec: TaskSpec) -> PhotoWorker:
    """In the worker process: build the task of ``spec`` (its models load now)."""
    return PhotoWorker(spec.build())
