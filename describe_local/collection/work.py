"""What a worker does with one photo, the same in-process, in a worker process and in a Ray actor.

The photo is hashed, the task is called, and whatever goes wrong becomes a failure
record: a photo never stops the run.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from describe_local.collection.records import failure_record, sha256_bytes, sha256_file
from describe_local.collection.spec import PhotoTask
from describe_local.errors import DescribeLocalError

log = logging.getLogger(__name__)


def do_photo(task: PhotoTask, path: str, data: bytes | None = None, sha256: str | None = None) -> dict[str, Any]:
    """The record of the photo at ``path``: ``path``, ``sha256`` and the task's fields, or a
    failure record. ``data`` (with its ``sha256``) are the photo's bytes where they travelled
    from the machine that holds the file."""
    if data is None:
        sha256 = sha256_file(Path(path))
    try:
        fields = _call(task, path, data)
    except DescribeLocalError as exc:
        return failure_record(path, sha256, exc)
    except Exception as exc:  # a bug in a stage: the photo fails, the run goes on
        log.exception("describing %s failed", path)
        return failure_record(path, sha256, exc)
    record: dict[str, Any] = {"path": path, "sha256": sha256}
    record.update((k, v) for k, v in fields.items() if k not in record)
    return record


def _call(task: PhotoTask, path: str, data: bytes | None) -> dict[str, Any]:
    if data is None:
        return task(Path(path))
    from_bytes = getattr(task, "from_bytes", None)
    if from_bytes is not None:
        return from_bytes(Path(path), data)
    # A plain task reads a path: give it a copy of the photo under the same name.
    with tempfile.TemporaryDirectory(prefix="describe-local-") as folder:
        copy = Path(folder) / (Path(path).name or "photo")
        copy.write_bytes(data)
        fields = task(copy)
    return fields


def close_task(task: PhotoTask) -> None:
    """Let a task release what it holds (its models' helper processes), if it can."""
    close = getattr(task, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


def read_photo(path: str, max_bytes: int) -> tuple[bytes | None, str | None, dict[str, Any] | None]:
    """``(data, sha256, None)`` for a photo whose bytes must travel, or ``(None, sha, failure)``
    for one that cannot be read or is over ``max_bytes`` (so it is never read whole)."""
    from describe_local.errors import ImageError, ImageTooLarge

    file = Path(path)
    try:
        size = file.stat().st_size
        if not file.is_file():
            return None, None, failure_record(path, None, ImageError(f"{path}: not a file"))
        if size > max_bytes:
            too_big = ImageTooLarge(f"{path}: {size} bytes is over the {max_bytes} byte limit "
                                    "(set DESCRIBE_LOCAL_MAX_IMAGE_BYTES to raise it)")
            return None, None, failure_record(path, sha256_file(file), too_big)
        data = file.read_bytes()
    except FileNotFoundError:
        return None, None, failure_record(path, None, ImageError(f"{path}: no such file"))
    except OSError as exc:
        return None, None, failure_record(path, None, ImageError(f"{path}: cannot read: {exc.strerror}"))
    return data, sha256_bytes(data), None
