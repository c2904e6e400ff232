"""The JSON-lines output of a collection: hashes, flushed lines, resume after a kill, and the progress bar."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from describe_local.collection.progress import ProgressBar, duration, render, wanted
from describe_local.collection.records import (
    RecordFile,
    failed,
    failure_record,
    record_line,
    sha256_file,
)
from describe_local.errors import CollectionFileError, ImageError


def test_sha256_of_a_file_and_of_none(tmp_path: Path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"x" * 3_000_000)  # over one read chunk
    assert sha256_file(photo) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert sha256_file(tmp_path / "missing.jpg") is None


def test_failure_records_say_what_failed():
    decode = failure_record("a.jpg", None, ImageError("a.jpg: not an image"))
    assert decode == {"path": "a.jpg", "sha256": None, "errors": {"decode": "a.jpg: not an image"}}
    bug = failure_record("b.jpg", "ab", ZeroDivisionError("division by zero\nmore"))
    assert bug["errors"] == {"describe": "ZeroDivisionError: division by zero"}
    assert failed(decode) == {"decode"} and failed(bug) == {"describe"}
    # stage errors of a described photo are not failures of the photo
    assert failed({"path": "c.jpg", "text": "hi", "errors": {"caption": "not installed: x"}}) == set()
    assert failed({"path": "c.jpg", "text": "hi", "errors": {"output": "disk full"}}) == {"output"}


def test_each_record_is_on_disk_as_soon_as_it_is_appended(tmp_path: Path):
    out = tmp_path / "sub" / "out.jsonl"
    book = RecordFile.open(out, resume=False)
    book.append({"path": "a.jpg", "sha256": "1", "text": "Olá"})
    # read while the file is still open: the line was flushed, in UTF-8
    assert out.read_bytes() == '{"path": "a.jpg", "sha256": "1", "text": "Olá"}\n'.encode()
    book.close()


def test_a_file_with_records_is_not_written_over_without_resume(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "a.jpg", "sha256": "1"}\n')
    with pytest.raises(CollectionFileError, match="--resume"):
        RecordFile.open(out, resume=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    RecordFile.open(empty, resume=False).close()


def test_resume_finds_records_by_path_and_hash(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "a.jpg", "sha256": "1", "text": "A"}\n{"path": "b.jpg", "sha256": "2", "text": "B"}\n')
    book = RecordFile.open(out, resume=True)
    assert book.done("a.jpg", "1") == {"path": "a.jpg", "sha256": "1", "text": "A"}
    assert book.done("a.jpg", "changed") is None  # the photo changed since: described again
    assert book.done("c.jpg", "3") is None
    book.close()


def test_a_torn_last_line_is_dropped_and_the_file_mended(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    good = '{"path": "a.jpg", "sha256": "1", "text": "A"}\n'
    out.write_text(good + '{"path": "b.jpg", "sha2')  # killed in the middle of a line
    book = RecordFile.open(out, resume=True)
    assert book.paths_done() == {"a.jpg"}
    book.append({"path": "b.jpg", "sha256": "2", "text": "B"})
    book.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in lines] == ["a.jpg", "b.jpg"]


def test_a_complete_last_line_without_its_newline_is_kept(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "a.jpg", "sha256": "1"}')
    book = RecordFile.open(out, resume=True)
    book.append({"path": "b.jpg", "sha256": "2"})
    book.close()
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["a.jpg", "b.jpg"]


def test_machine_failures_are_tried_again_without_leaving_a_duplicate(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    records = [
        {"path": "a.jpg", "sha256": "1", "errors": {"worker": "stopped 3 times"}},
        {"path": "b.jpg", "sha256": "2", "errors": {"decode": "b.jpg: not an image"}},
        {"path": "c.jpg", "sha256": "3", "text": "C", "errors": {"output": "cannot write c.mp3"}},
    ]
    out.write_bytes(b"".join(record_line(r) for r in records))
    book = RecordFile.open(out, resume=True)
    assert book.paths_done() == {"b.jpg"}  # a photo that cannot be decoded stays done
    book.close()
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["b.jpg"]


def test_a_line_in_the_middle_that_is_not_a_record_is_refused(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "a.jpg"}\nnot json\n{"path": "b.jpg"}\n')
    with pytest.raises(CollectionFileError, match="line 2"):
        RecordFile.open(out, resume=True)


def test_a_name_that_is_not_utf8_reads_back_exactly(tmp_path: Path):
    name = "caf\udce9.jpg"  # the byte 0xE9 of a Latin-1 file name, as os.fsdecode gives it
    line = record_line({"path": name, "sha256": "1", "text": "Olá"})
    line.decode("utf-8")  # valid UTF-8 all the same
    assert json.loads(line)["path"] == name
    out = tmp_path / "out.jsonl"
    out.write_bytes(line)
    book = RecordFile.open(out, resume=True)
    assert book.done(name, "1") is not None
    book.close()


# -- the progress bar ----------------------------------------------------------------------------


def test_the_bar_tells_done_rate_and_time_left():
    assert render(0, 77, 3.0) == "0/77 [--------------------] starting"
    # 20 photos in 60 s: 20 a minute, 57 left: 2 min 51 s
    assert render(20, 77, 60.0) == "20/77 [#####---------------] 20.0 photos/min, 2 min 51 s left"
    assert render(77, 77, 120.0).endswith("38.5 photos/min")
    # photos a resumed run found done do not count in its rate
    assert render(50, 77, 60.0, resumed=40) == "50/77 [############--------] 10.0 photos/min, 2 min 42 s left"


def test_durations_read_like_a_person_writes_them():
    assert [duration(s) for s in (0, 42.4, 185, 7620)] == ["0 s", "42 s", "3 min 05 s", "2 h 07 min"]


def test_the_bar_is_silent_when_off_and_clears_itself_before_other_output():
    quiet = io.StringIO()
    bar = ProgressBar(3, enabled=False, stream=quiet)
    bar.advance()
    bar.close()
    assert quiet.getvalue() == ""

    now = [0.0]
    screen = io.StringIO()
    bar = ProgressBar(3, stream=screen, clock=lambda: now[0])
    now[0] = 30.0
    bar.advance()
    assert screen.getvalue().endswith("\r1/3 [######--------------] 2.0 photos/min, 1 min 00 s left\x1b[K")
    bar.clear()
    assert screen.getvalue().endswith("\r\x1b[K")
    bar.advance()
    bar.advance()
    bar.close()
    assert screen.getvalue().endswith("3/3 [####################] 6.0 photos/min\x1b[K\n")


def test_the_bar_is_drawn_only_on_a_terminal_unless_asked():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wanted(None, io.StringIO()) is False
    assert wanted(None, Terminal()) is True
    assert wanted(True, io.StringIO()) is True
    assert wanted(False, Terminal()) is False
