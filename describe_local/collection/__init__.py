"""Describing a collection: many photos, one record each, in input order.

The work for one photo is a *task*: a function that a worker process (or a Ray actor)
builds once, with its models loaded, and then calls for each photo. A task is named by
:class:`TaskSpec` (an importable factory plus settings and options), so that it can be
sent to another process or machine and built there.

``run_collection`` yields one JSON-ready record per photo, in input order:
``{"path": str, "sha256": str, ...what the task returned...}``, or for a photo that
failed ``{"path": ..., "sha256": ..., "errors": {"describe": "what went wrong"}}``
(``decode`` for a photo that cannot be read, ``worker`` for one whose worker kept dying).

The modules: ``spec.py`` (the task), ``work.py`` (one photo, in any worker),
``records.py`` (hashes and the JSON-lines file), ``local.py`` + ``worker.py`` (``--jobs``),
``ray_pool.py`` (``--ray``), ``progress.py`` (the bar), ``tasks.py`` (describe, read, alt text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from describe_local.collection.progress import ProgressBar, wanted
from describe_local.collection.records import RecordFile, failed, sha256_file
from describe_local.collection.spec import FILES, PhotoTask, TaskSpec
from describe_local.collection.work import close_task, do_photo
from describe_local.errors import ConfigError, DescribeLocalError, WorkerError

__all__ = ["FILES", "PhotoTask", "TaskSpec", "failed", "run_collection"]

# Photos a worker may run ahead of the first one not yet back (per job): bounds the records
# held for reordering when one photo is slow.
WINDOW_PER_JOB = 32

# ``save_file(index, photo path, field, data)``: writes a file a task returned (an MP3) and
# returns where it went; raises a DescribeLocalError (e.g. OutputError) when it cannot.
SaveFile = Callable[[int, Path, str, bytes], str]


def run_collection(
    paths: Sequence[Path],
    task: TaskSpec,
    *,
    jobs: int = 1,
    ray: str | None = None,
    output: Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    save_file: SaveFile | None = None,
    include_done: bool = True,
) -> Iterator[dict[str, Any]]:
    """One record per photo of ``paths``, in input order (see the module docstring).

    ``jobs``: local worker processes; ``ray``: a Ray cluster's address (or ``"auto"``)
    instead; ``output``: a JSON-lines file the records are appended to as they come;
    ``resume``: skip the photos already in ``output``; ``progress``: a progress bar on
    stderr (``None``: only when stderr is a terminal). ``save_file`` writes the files a
    task returns under :data:`FILES` (without it they are dropped); ``include_done=False``
    leaves out the records a resumed run found in ``output``. A photo listed twice is
    described once. Raises :class:`ConfigError` for ``resume`` without ``output``, and
    :class:`WorkerError` (or a Ray error) when the workers cannot load their models.
    """
    if resume and output is None:
        raise ConfigError("--resume needs the output file to resume: give --jsonl FILE too")
    if not 1 <= jobs <= 256:
        raise ConfigError(f"jobs {jobs} is out of range: give 1 to 256")
    items = [str(p) for p in paths]
    book = RecordFile.open(output, resume=resume) if output is not None else None
    try:
        yield from _run(items, task, jobs, ray, book, progress, save_file, include_done)
    finally:
        if book is not None:
            book.close()


def _run(items: list[str], spec: TaskSpec, jobs: int, ray: str | None, book: RecordFile | None,
         progress: bool | None, save_file: SaveFile | None, include_done: bool) -> Iterator[dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}  # records of an earlier run (resume)
    first_of: dict[int, int] = {}  # a photo listed again -> where it was first listed
    seen: dict[str, int] = {}
    kept = book.paths_done() if book is not None else set()
    for index, path in enumerate(items):
        if path in seen:
            first_of[index] = seen[path]
            continue
        seen[path] = index
        if path in kept and book is not None:
            record = book.done(path, sha256_file(Path(path)))
            if record is not None:
                done[index] = record
    todo = [(i, p) for i, p in enumerate(items) if i not in done and i not in first_of]
    resumed = len(done) + sum(first in done for first in first_of.values())
    bar = ProgressBar(len(items), resumed=resumed, enabled=wanted(progress))
    bar.draw()
    repeats: dict[int, int] = {}
    for first in first_of.values():
        repeats[first] = repeats.get(first, 0) + 1
    resumed_set = set(done)
    finished: dict[int, dict[str, Any]] = {}
    finished_sources: set[int] = set()
    kept_for_repeats: dict[int, dict[str, Any]] = {i: r for i, r in done.items() if i in repeats}
    next_emit = 0
    window = WINDOW_PER_JOB * max(jobs, 1)

    def emittable() -> Iterator[dict[str, Any]]:
        nonlocal next_emit
        while next_emit < len(items):
            index = next_emit
            if index in done:
                record, was_done = done.pop(index), True
            elif index in first_of:
                source = first_of[index]
                if source not in kept_for_repeats:
                    return
                record, was_done = dict(kept_for_repeats[source]), source in resumed_set
            elif index in finished:
                record, was_done = finished.pop(index), False
            else:
                return
            next_emit += 1
            if include_done or not was_done:
                yield record

    try:
        yield from _shown(emittable(), bar)
        for index, record in _results(todo, spec, jobs, ray, may_start=lambda i: i < next_emit + window):
            if index in finished_sources:  # Ray ran it twice (a retried task): keep the first
                continue
            record = _save_files(index, items[index], record, save_file)
            if book is not None:
                book.append(record)
            finished_sources.add(index)
            finished[index] = record
            if index in repeats:
                kept_for_repeats[index] = record
            bar.advance(1 + repeats.get(index, 0))
            yield from _shown(emittable(), bar)
        if next_emit < len(items):
            raise WorkerError(f"{len(items) - next_emit} photos came back from no worker; run again with "
                              "--resume to finish them")
    finally:
        bar.close()


def _shown(records: Iterator[dict[str, Any]], bar: ProgressBar) -> Iterator[dict[str, Any]]:
    """``records``, with the bar taken off the screen while the caller prints each one."""
    for record in records:
        bar.clear()
        yield record
        bar.draw()


def _results(todo: list[tuple[int, str]], spec: TaskSpec, jobs: int, ray: str | None,
             may_start: Callable[[int], bool]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, record)`` for each photo of ``todo`` as it finishes, from the chosen workers."""
    if not todo:
        return
    if ray is not None:
        from describe_local.collection.ray_pool import run_ray

        yield from run_ray(todo, spec, ray)
    elif jobs > 1:
        from describe_local.collection.local import run_local

        yield from run_local(todo, spec, jobs, may_start=may_start)
    else:
        task = spec.build()
        try:
            for index, path in todo:
                yield index, do_photo(task, path)
        finally:
            close_task(task)


def _save_files(index: int, path: str, record: dict[str, Any], save_file: SaveFile | None) -> dict[str, Any]:
    """``record`` with the files it carries written by ``save_file`` and replaced by where they went."""
    files = record.pop(FILES, None) or {}
    for field, data in files.items():
        record[field] = None
        if save_file is None:
            continue
        try:
            record[field] = save_file(index, Path(path), field, data)
        except DescribeLocalError as exc:  # e.g. a full disk: said in the record, the run goes on
            errors = record.setdefault("errors", {})
            errors["output"] = str(exc)
    return record
