"""The text stage's time on real photos with the real PP-OCR models: what it spends beside the
networks' own work (ONNX Runtime's arena, the language model's load) and that a read stays as good.

``scripts/bench_text.py`` measures the time and memory on the 30 shared phone photos; these tests
pin the mechanisms that make them so, each measured in a way the machine's load does not move
(page faults, resident memory).
"""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest

from describe_local.images import load_photo
from describe_local.see.text import TextReader
from describe_local.see.text.scene import release_memory
from describe_local.settings import Settings


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader.load(Settings.load(environ={}, ocr_engine="pp-ocr"))


def test_dbnet_runs_of_a_photo_reuse_the_arena_and_the_read_gives_it_back(reader, shared_data):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the resident memory")
    photo = load_photo(shared_data / "ocr" / "signs" / "french.jpg", max_bytes=50_000_000, max_pixels=100_000_000)
    bgr = np.ascontiguousarray(photo.array[:, :, ::-1])
    scene = reader.scene
    assert scene is not None
    scene.probability_map(bgr, 0.5)  # ONNX Runtime's one-off set-up for this size
    scene.give_back()
    release_memory()
    before, faults = _rss_mb(), _faults()
    scene.probability_map(bgr, 0.9)  # 608 x 928: two pieces of 400 000 px
    first = _faults() - faults
    grown = _rss_mb() - before
    faults = _faults()
    scene.probability_map(bgr, 0.9)
    second = _faults() - faults
    # The second run finds its blocks in the arena: shrinking it after each run faulted every page
    # in afresh (as many faults as the first run, a third of DBNet's time).
    assert second < first / 4, (first, second)
    scene.give_back()
    release_memory()
    # Once the photo is done the arena goes back: what stays is a small part of what the runs took.
    kept = _rss_mb() - before
    assert grown > 20 and kept < grown / 3, (round(grown), round(kept))
