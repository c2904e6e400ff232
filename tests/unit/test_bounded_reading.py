"""Files the tool reads from users and other programs: bounded before reading, JSON nesting
refused in one line, and a collection's JSON-lines file locked by the run writing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from describe_local import reading
from describe_local.collection.records import MAX_RECORD_BYTES, RecordFile
from describe_local.errors import CollectionFileError, EvalDataError
from describe_local.evaluation.captions import load_caption_set
from describe_local.evaluation.faces import load_face_set
from describe_local.evaluation.text import load_text_set

ROOT = Path(__file__).resolve().parents[2]
DEEP = b"[" * 100_000 + b"]" * 100_000


def _sparse(path: Path, size: int) -> Path:
    subprocess.run(["truncate", "-s", str(size), str(path)], check=True)
    return path


def _page_set(folder: Path, truth: str) -> Path:
    Image.new("RGB", (8, 8)).save(folder / "page.png")
    manifest = folder / "pages.manifest.json"
    manifest.write_text(json.dumps({"items": [{"file": "page.png", "ground_truth_file": truth}]}))
    return manifest


def test_a_sparse_ground_truth_of_1_5_gb_is_refused_from_its_size_within_a_memory_cap(tmp_path: Path):
    # In a child whose heap is capped: reading the file whole would fail there, not eat this machine.
    _sparse(tmp_path / "page.txt", 1_500_000_000)
    manifest = _page_set(tmp_path, "page.txt")
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_DATA, (600 << 20, 600 << 20))
        from describe_local.errors import EvalDataError
        from describe_local.evaluation.text import load_text_set
        try:
            load_text_set({str(manifest)!r})
        except EvalDataError as exc:
            print("refused:", exc)
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused:" in done.stdout and "1.5 GB is too big" in done.stdout, done.stdout


def test_a_sparse_manifest_and_an_icdar_file_over_their_limits_are_refused(tmp_path: Path):
    manifest = _sparse(tmp_path / "big.manifest.json", 1_500_000_000)
    for load in (load_text_set, load_caption_set, load_face_set):
        with pytest.raises(EvalDataError, match="too big"):
            load(manifest)
    icdar = tmp_path / "icdar"
    icdar.mkdir()
    Image.new("RGB", (8, 8)).save(icdar / "img_1.jpg")
    _sparse(icdar / "gt_img_1.txt", 100_000_000)
    with pytest.raises(EvalDataError, match="too big"):
        load_text_set(icdar)


def test_deeply_nested_manifests_give_one_line_errors(tmp_path: Path):
    for name, data in {"deep.json": DEEP, "nested.json": b'{"items": ' + b"[" * 200 + b"]" * 200 + b"}"}.items():
        manifest = tmp_path / name
        manifest.write_bytes(data)
        for load in (load_text_set, load_caption_set, load_face_set):
            with pytest.raises(EvalDataError, match="nested more than") as caught:
                load(manifest)
            assert "\n" not in str(caught.value)


def test_a_ground_truth_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path):
    (tmp_path / "page.txt").write_bytes(b"Jos\xe9")
    with pytest.raises(EvalDataError, match="not UTF-8"):
        load_text_set(_page_set(tmp_path, "page.txt"))


def test_parse_json_depth_and_read_bounded_on_odd_files(tmp_path: Path):
    assert reading.json_depth({"a": [1, {"b": []}]}) == 4
    assert reading.parse_json(b'\xef\xbb\xbf{"a": [[1]]}', "x", error=EvalDataError) == {"a": [[1]]}
    with pytest.raises(EvalDataError, match="nested more than 2"):
        reading.parse_json(b"[[[1]]]", "x", error=EvalDataError, max_depth=2)
    with pytest.raises(EvalDataError, match="no such file"):
        reading.read_bounded(tmp_path / "none", 10, error=EvalDataError)
    with pytest.raises(EvalDataError, match="not a regular file"):
        reading.read_bounded(tmp_path, 10, error=EvalDataError)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(EvalDataError, match="not a regular file"):  # refused without blocking on open
        reading.read_bounded(fifo, 10, error=EvalDataError)


# -- a collection's JSON-lines file -------------------------------------------------------------


def test_a_deeply_nested_record_line_is_refused_in_one_line(tmp_path: Path):
    jsonl = tmp_path / "out.jsonl"
    jsonl.write_bytes(b'{"path": "a.jpg", "sha256": "x"}\n' + DEEP + b"\n")
    with pytest.raises(CollectionFileError, match="line 2, is not a record") as caught:
        RecordFile.open(jsonl, resume=True)
    assert "\n" not in str(caught.value)


def test_a_sparse_jsonl_is_refused_without_reading_it_whole(tmp_path: Path):
    jsonl = _sparse(tmp_path / "out.jsonl", 1_500_000_000)
    with pytest.raises(CollectionFileError, match="line 1, is over"):
        RecordFile.open(jsonl, resume=True)
    assert MAX_RECORD_BYTES < 100_000_000


_HOLDER = """
import sys
from pathlib import Path
from describe_local.collection.records import RecordFile
book = RecordFile.open(Path(sys.argv[1]), resume=sys.argv[2] == "resume")
book.append({"path": "held.jpg", "sha256": "h"})
print("holding", flush=True)
sys.stdin.readline()
book.close()
"""


@pytest.mark.parametrize(("first", "second"), [(False, True), (True, False), (True, True)])
def test_a_second_run_on_the_same_jsonl_is_refused_while_the_first_writes(tmp_path: Path, first: bool, second: bool):
    jsonl = tmp_path / "out.jsonl"
    if first:
        jsonl.write_bytes(b'{"path": "a.jpg", "sha256": "x"}\n{"path": "b.jpg", "errors": {"worker": "died"}}\n')
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(jsonl), "resume" if first else "fresh"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(CollectionFileError, match="another run is writing to"):
            RecordFile.open(jsonl, resume=second)
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    # Once the first run is done, the file is free again, with each record once.
    book = RecordFile.open(jsonl, resume=True)
    book.close()
    paths = [json.loads(line)["path"] for line in jsonl.read_text().splitlines()]
    assert paths == (["a.jpg", "held.jpg"] if first else ["held.jpg"])
