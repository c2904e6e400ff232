#!/usr/bin/env python3
"""Measure the text stage on the shared data: pages against their ground truth,
signs, and photos without text, with the time each read takes.

For each page: word recall and precision (bags of lower-case words, so that
reading order does not count) and the character error rate (edit distance over
the whitespace-normalised ground truth), the language found, the mode and the
time. tests/test_text.py uses the same measures.

    .venv/bin/python scripts/measure_ocr.py [--data ../shared/data] [--omp]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'"})


def normalise(text: str) -> str:
    """NFC, ASCII quotes, words split at a line-end hyphen joined, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text).translate(QUOTES)
    text = re.sub(r"(\w)-\s*\n\s*(?=[a-z])", r"\1", text)
    return " ".join(text.split())


def words_of(text: str) -> Counter[str]:
    """Lower-case words without the punctuation around them.

    Words with a '~' are left out: the UNLV ground truth marks characters its
    transcribers could not read with it.
    """
    found = (w.strip("\"'()[]{}<>.,;:!?-*&#$%") for w in normalise(text).lower().split())
    return Counter(w for w in found if w and "~" not in w)


def word_recall(found: str, truth: str) -> float:
    """Share of the ground truth's words that were read (each occurrence counts once)."""
    want = words_of(truth)
    return sum((words_of(found) & want).values()) / max(1, sum(want.values()))


def word_precision(found: str, truth: str) -> float:
    """Share of the words read that are in the ground truth."""
    got = words_of(found)
    return sum((got & words_of(truth)).values()) / max(1, sum(got.values()))


def char_error_rate(found: str, truth: str) -> float:
    """Levenshtein distance between the normalised texts over the ground truth's length."""
    a, b = normalise(found), normalise(truth)
    if not b:
        return float(bool(a))
    row = np.arange(len(b) + 1, dtype=np.int32)
    codes = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1, dtype=np.int32)
    for i, ch in enumerate(a, start=1):
        cost = (codes != ord(ch)).astype(np.int32)
        candidate = np.empty_like(row)
        candidate[0] = i
        candidate[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)  # deletion, substitution
        # insertion: new[j] = min over k <= j of candidate[k] + (j - k)
        row = np.minimum.accumulate(candidate - steps) + steps
    return float(row[-1]) / len(b)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_omp(page: Path, runs: int = 3) -> None:
    """Tesseract on one page with its OpenMP threads capped at 1 and uncapped: wall and CPU."""
    import io
    import subprocess

    from PIL import Image

    from describe_local.text import prepare

    data = io.BytesIO()
    prepare(Image.open(page).convert("RGB")).save(data, format="PPM")
    for limit in ("1", None, "1", None):
        env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
        if limit:
            env["OMP_THREAD_LIMIT"] = limit
        walls, cpu = [], _children_cpu_s()
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                ["tesseract", "stdin", "stdout", "-l", "eng", "--psm", "3", "tsv"],
                input=data.getvalue(), capture_output=True, env=env, check=True,
            )
            walls.append(time.perf_counter() - start)
        print(
            f"  OMP_THREAD_LIMIT={limit or 'unset'}: wall best {min(walls) * 1000:.0f} ms, "
            f"CPU {(_children_cpu_s() - cpu) / runs * 1000:.0f} ms per run"
        )


def main() -> int:
    from describe_local.images import load_photo
    from describe_local.settings import Settings
    from describe_local.text import TextReader

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--omp", action="store_true", help="also time Tesseract with and without OMP_THREAD_LIMIT=1")
    args = parser.parse_args()
    ocr = args.data / "ocr"
    if not ocr.is_dir():
        print(f"no shared data at {args.data}", file=sys.stderr)
        return 1

    settings = Settings.load()
    reader = TextReader.load(settings)

    def read(path: Path):
        photo = load_photo(path, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        return timed(photo)

    def timed(photo):
        """The reading, and the wall and Tesseract CPU milliseconds it took."""
        start, cpu = time.perf_counter(), _children_cpu_s()
        reading = reader.read(photo)
        return reading, ((time.perf_counter() - start) * 1000, (_children_cpu_s() - cpu) * 1000)

    print("pages: recall precision CER language mode, wall ms / Tesseract CPU ms")
    manifest = json.loads((ocr / "pages.manifest.json").read_text())
    for item in manifest["items"]:
        name = Path(item["file"]).name
        truth = (ocr / "pages" / Path(item["ground_truth_file"]).name).read_text()
        reading, ms = read(ocr / "pages" / name)
        print(
            f"  {name:18} {word_recall(reading.text, truth):.3f} {word_precision(reading.text, truth):.3f} "
            f"{char_error_rate(reading.text, truth):.3f} {reading.language}({reading.language_confidence:.2f}) "
            f"[{item['languages']}] {reading.mode} {ms[0]:.0f}/{ms[1]:.0f}"
        )
    print("signs:")
    for path in sorted((ocr / "signs").iterdir()):
        reading, ms = read(path)
        print(
            f"  {path.name:18} {reading.language}({reading.language_confidence:.2f}) {reading.mode} "
            f"{ms[0]:.0f}/{ms[1]:.0f} ms: {reading.text!r}"
        )
    print("photos without text (the faces, skimage's astronaut, chelsea, coffee):")
    photos = sorted((args.data / "faces" / "photos").iterdir())
    times, cpus, spoke = [], [], []
    for path in photos:
        reading, (ms, cpu) = read(path)
        times.append(ms)
        cpus.append(cpu)
        if reading.text:
            spoke.append(f"{path.name}: {reading.text!r}")
    try:
        from PIL import Image
        from skimage import data as skdata

        from describe_local.images import Photo

        for name in ("astronaut", "chelsea", "coffee"):
            reading, (ms, cpu) = timed(Photo(Image.fromarray(getattr(skdata, name)()), source=name))
            times.append(ms)
            cpus.append(cpu)
            if reading.text:
                spoke.append(f"{name}: {reading.text!r}")
    except ImportError:
        print("  (scikit-image not installed: astronaut, chelsea, coffee skipped)")
    print(
        f"  {len(times)} photos: wall median {np.median(times):.0f} ms, max {max(times):.0f} ms; "
        f"Tesseract CPU median {np.median(cpus):.0f} ms, max {max(cpus):.0f} ms; text found in:"
    )
    for line in spoke:
        print(f"    {line}")
    if args.omp:
        print(f"OpenMP threads, {os.cpu_count()} cores, page 8071_093.3B (layout pass, English):")
        measure_omp(ocr / "pages" / "8071_093.3B.tif")
    return 0


if __name__ == "__main__":
    sys.exit(main())
