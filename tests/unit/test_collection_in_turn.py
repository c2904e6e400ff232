"""A collection worker with one core runs each photo's stages one after another (their peaks
do not add up), where its task takes that option; with more cores, or a task without it,
nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

from describe_local.collection import TaskSpec, run_collection
from describe_local.collection.local import cpu_count
from describe_local.collection.spec import IN_TURN
from describe_local.settings import Settings

FACTORY = f"{__name__}:standin"


def standin(settings: Settings, *, sequential: bool = False, other: str = ""):
    """A task that says which options and threads its worker was built with."""

    def task(path: Path) -> dict:
        return {"sequential": sequential, "other": other, "ocr_threads": settings.ocr_threads}

    return task


def test_a_one_core_worker_runs_the_stages_in_turn_where_the_task_takes_it():
    settings = Settings.load(environ={}, ocr_threads=4)
    spec = TaskSpec(FACTORY, settings, {IN_TURN: False, "other": "kept"})
    one = spec.with_threads(1)
    assert one.options == {IN_TURN: True, "other": "kept"} and one.settings.ocr_threads == 1
    assert spec.options[IN_TURN] is False  # the driver's own spec is left as it was
    assert spec.with_threads(2).options == {IN_TURN: False, "other": "kept"}
    bare = TaskSpec(FACTORY, settings, {"other": "kept"})  # a task without the option is not given it
    assert bare.with_threads(1).options == {"other": "kept"}


def test_worker_processes_are_built_with_it(tmp_path: Path):
    photos = []
    for name in ("a.jpg", "b.jpg"):
        photos.append(tmp_path / name)
        photos[-1].write_bytes(b"x")
    spec = TaskSpec(FACTORY, Settings.load(environ={}), {IN_TURN: False})
    records = list(run_collection(photos, spec, jobs=2))
    one_core_each = max(1, cpu_count() // 2) == 1
    assert [r["sequential"] for r in records] == [one_core_each, one_core_each], json.dumps(records)
    # one process (no workers): the photo's stages stay side by side, as asked
    assert [r["sequential"] for r in run_collection(photos, spec)] == [False, False]
