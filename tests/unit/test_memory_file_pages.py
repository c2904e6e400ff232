"""memory.drop_file_pages: a mapped file's clean pages leave the resident set and read back the
same; a mapping with a page written (a private copy the file does not hold) is left alone."""

from __future__ import annotations

import mmap
import sys
from pathlib import Path

import pytest

from describe_local.memory import drop_file_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and madvise: Linux only")

SIZE = 8 * 1024 * 1024


def rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


def touch(view: mmap.mmap) -> int:
    return sum(view[i] for i in range(0, len(view), mmap.PAGESIZE))  # one read per page: all resident


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "weights.data"
    path.write_bytes(bytes(range(256)) * (SIZE // 256))
    return path


def test_clean_pages_are_dropped_and_read_back_the_same(weights: Path):
    with weights.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        total = touch(view)
        before = rss_file_kb()
        dropped = drop_file_pages(weights)
        assert dropped >= SIZE * 0.9, dropped  # (a page or two may not have been resident)
        assert rss_file_kb() <= before - SIZE // 1024 * 0.9
        assert touch(view) == total and view[SIZE - 1] == 255  # read back from the file, unchanged
        assert drop_file_pages(weights.with_name("other.data")) == 0  # a file not mapped: nothing


def test_a_mapping_with_a_written_page_is_left_alone(weights: Path):
    with weights.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY) as view:
        touch(view)
        view[0] = 7  # a private copy of that page: dropping it would bring back the file's byte
        assert drop_file_pages(weights) == 0
        assert view[0] == 7


def test_mapped_weights_files_are_dropped_and_other_files_kept(weights: Path):
    from describe_local.memory import drop_mapped_weights

    other = weights.with_name("table.bin")
    other.write_bytes(weights.read_bytes())
    with weights.open("rb") as a, other.open("rb") as b, \
            mmap.mmap(a.fileno(), 0, access=mmap.ACCESS_READ) as view, \
            mmap.mmap(b.fileno(), 0, access=mmap.ACCESS_READ) as kept:
        touch(view), touch(kept)
        before = rss_file_kb()
        assert drop_mapped_weights() >= SIZE * 0.9  # weights.data (and any other *.data this process maps)
        assert before - rss_file_kb() < SIZE // 1024 * 1.5  # table.bin stayed
        assert drop_file_pages(other) >= SIZE * 0.9  # it was still resident
