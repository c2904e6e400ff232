"""The collection engine with a stand-in task: input order, worker processes that die, resume,
photos listed twice, files written by the driver. The models are not the point here: the
integration tests (tests/integration/test_collection_*.py) run the real describe task."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from describe_local.collection import FILES, TaskSpec, run_collection
from describe_local.errors import ConfigError, OutputError
from describe_local.settings import Settings

FACTORY = f"{__name__}:standin"


def standin(settings: Settings, *, calls: str, delays: dict[str, float] | None = None,
            kill_once: str = "", kill_always: str = "", refuse: bool = False):
    """A task that returns the photo's first bytes and size, notes each call in ``calls``, and
    sleeps (``delays``) or kills its own process (``kill_once``, ``kill_always``) on given photos."""
    if refuse:
        raise ConfigError("no models here")

    def task(path: Path) -> dict:
        with open(calls, "a") as log:
            log.write(f"{path.name} {os.getpid()}\n")
        if path.name == kill_always or (path.name == kill_once and not Path(calls + ".killed").exists()):
            Path(calls + ".killed").touch()
            os._exit(9)
        time.sleep((delays or {}).get(path.name, 0.0))
        data = path.read_bytes()
        return {"first": data[:1].decode(), "size": len(data), "pid": os.getpid(), FILES: {"copy": data}}

    return task


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    made = []
    for i, letter in enumerate("abcdefgh"):
        path = folder / f"{letter}.jpg"
        path.write_bytes(letter.encode() * (i + 1))
        made.append(path)
    return made


def spec(tmp_path: Path, **options) -> TaskSpec:
    settings = Settings.load(environ={}, collection_attempts=2)
    return TaskSpec(FACTORY, settings, {"calls": str(tmp_path / "calls.txt"), **options})


def calls(tmp_path: Path) -> list[str]:
    return [line.split()[0] for line in (tmp_path / "calls.txt").read_text().splitlines()]


def test_one_process_gives_records_in_order_with_hashes_and_failures(tmp_path: Path, photos: list[Path]):
    missing = tmp_path / "missing.jpg"
    records = list(run_collection([*photos, missing], spec(tmp_path)))
    assert [r["path"] for r in records] == [str(p) for p in [*photos, missing]]
    assert records[2]["first"] == "c" and records[2]["size"] == 3
    assert records[0]["sha256"] == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"  # sha256("a")
    assert records[-1]["sha256"] is None and set(records[-1]["errors"]) == {"describe"}
    assert "copy" in records[0] and records[0]["copy"] is None  # no save_file: files are dropped


def test_two_workers_keep_input_order_while_finishing_out_of_order(tmp_path: Path, photos: list[Path]):
    # the first photos are the slowest, so the later ones finish first
    delays = {p.name: 0.4 - 0.05 * i for i, p in enumerate(photos)}
    output = tmp_path / "out.jsonl"
    records = list(run_collection(photos, spec(tmp_path, delays=delays), jobs=2, output=output))
    assert [r["path"] for r in records] == [str(p) for p in photos]
    assert [r["first"] for r in records] == list("abcdefgh")
    assert len({r["pid"] for r in records}) == 2  # both workers took photos
    assert sorted(calls(tmp_path)) == sorted(p.name for p in photos)  # each photo once
    on_disk = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["path"] for r in on_disk) == sorted(str(p) for p in photos)
    assert [r["path"] for r in on_disk] != [str(p) for p in photos]  # written as they finished


def test_a_killed_worker_is_replaced_and_its_photo_done_again(tmp_path: Path, photos: list[Path]):
    records = list(run_collection(photos, spec(tmp_path, kill_once="c.jpg"), jobs=2))
    assert [r["first"] for r in records] == list("abcdefgh")
    assert calls(tmp_path).count("c.jpg") == 2
    assert all("errors" not in r for r in records)


def test_a_photo_that_keeps_killing_workers_becomes_an_error_record(tmp_path: Path, photos: list[Path]):
    records = list(run_collection(photos, spec(tmp_path, kill_always="d.jpg"), jobs=2))
    failed = records[3]
    assert failed["path"] == str(photos[3]) and failed["sha256"] and "stopped 2 times" in failed["errors"]["worker"]
    assert [r.get("first") for r in records] == ["a", "b", "c", None, "e", "f", "g", "h"]
    assert calls(tmp_path).count("d.jpg") == 2  # collection_attempts


def test_workers_that_cannot_load_raise_the_error_they_gave(tmp_path: Path, photos: list[Path]):
    with pytest.raises(ConfigError, match="no models here"):
        list(run_collection(photos, spec(tmp_path, refuse=True), jobs=2))


def test_resume_after_an_interrupted_run_does_the_rest_once(tmp_path: Path, photos: list[Path]):
    output = tmp_path / "out.jsonl"
    first = run_collection(photos, spec(tmp_path), jobs=2, output=output)
    got = [next(first) for _ in range(3)]
    first.close()  # as Ctrl-C does: the workers are stopped
    assert [r["first"] for r in got] == ["a", "b", "c"]
    done_before = {json.loads(line)["path"] for line in output.read_text().splitlines()}
    assert len(done_before) >= 3

    (tmp_path / "calls.txt").unlink()
    again = list(run_collection(photos, spec(tmp_path), jobs=2, output=output, resume=True))
    assert [r["first"] for r in again] == list("abcdefgh")  # the whole collection, in order
    assert sorted(calls(tmp_path)) == sorted(p.name for p in photos if str(p) not in done_before)
    on_disk = [json.loads(line)["path"] for line in output.read_text().splitlines()]
    assert sorted(on_disk) == sorted(str(p) for p in photos)  # each exactly once

    (tmp_path / "calls.txt").unlink()
    nothing_new = list(run_collection(photos, spec(tmp_path), output=output, resume=True, include_done=False))
    assert nothing_new == [] and not (tmp_path / "calls.txt").exists()


def test_a_photo_changed_since_is_described_again(tmp_path: Path, photos: list[Path]):
    output = tmp_path / "out.jsonl"
    list(run_collection(photos[:2], spec(tmp_path), output=output))
    photos[1].write_bytes(b"B")
    (tmp_path / "calls.txt").unlink()
    records = list(run_collection(photos[:2], spec(tmp_path), output=output, resume=True))
    assert calls(tmp_path) == ["b.jpg"] and records[1]["first"] == "B"


def test_a_photo_listed_twice_is_described_once(tmp_path: Path, photos: list[Path]):
    output = tmp_path / "out.jsonl"
    records = list(run_collection([photos[0], photos[1], photos[0]], spec(tmp_path), jobs=2, output=output))
    assert [r["first"] for r in records] == ["a", "b", "a"]
    assert sorted(calls(tmp_path)) == ["a.jpg", "b.jpg"]
    assert len(output.read_text().splitlines()) == 2


def test_files_are_written_by_the_driver_and_a_failed_write_is_said(tmp_path: Path, photos: list[Path]):
    written: dict[int, bytes] = {}

    def save(index: int, photo: Path, field: str, data: bytes) -> str:
        if photo.name == "b.jpg":
            raise OutputError("cannot write b.copy: disk full")
        written[index] = data
        return f"out/{photo.stem}.{field}"

    records = list(run_collection(photos[:3], spec(tmp_path), jobs=2, save_file=save))
    assert written == {0: b"a", 2: b"ccc"}
    assert records[0]["copy"] == "out/a.copy" and "errors" not in records[0]
    assert records[1]["copy"] is None and records[1]["errors"] == {"output": "cannot write b.copy: disk full"}


def test_resume_needs_the_output_file(tmp_path: Path, photos: list[Path]):
    with pytest.raises(ConfigError, match="--jsonl"):
        list(run_collection(photos, spec(tmp_path), resume=True))


def test_ray_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    import sys

    from describe_local.collection.ray_pool import import_ray
    from describe_local.errors import RayNotInstalled

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(RayNotInstalled, match=r"pip install 'describe-local\[ray\]'"):
        import_ray()
