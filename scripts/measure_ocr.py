#!/usr/bin/env python3
"""Measure the text stage on the shared data, for each engine setting.

For each of ``tesseract`` (the stage before PP-OCR), ``pp-ocr`` (PP-OCR
alone) and ``auto`` (the default: PP-OCR, with Tesseract for pages and
accents), in a child process of its own so that its memory figure is its own:

- ocr/scenes: phrase recall, the manifest's metric (a phrase counts when,
  spaces removed and case folded, it is in the text read);
- ocr/pages: word recall and precision (bags of lower-case words, so that
  reading order does not count) and the character error rate against the
  ground truth (edit distance over the whitespace-normalised truth);
- ocr/signs: the text read;
- faces/photos: how many of the 22 have any text read (one, a red-carpet
  backdrop, really has some);
- time per photo (wall, and CPU of this process and Tesseract's), the best of
  ``--repeat`` reads (default 2: the machine may be shared), median and worst
  over the 30 photos (scenes, signs, faces) and over the 4 pages; and the
  resident memory the stage added (after loading and reading everything, and
  at peak), the language model (4 MB from its compact copy, loaded by every engine) included.

    .venv/bin/python scripts/measure_ocr.py [--data ../shared/data] [--engines auto,pp-ocr]
        [--threads 2] [--repeat 2] [--omp]

tests/integration/test_text.py and test_text_scenes.py use the same measures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENGINES = ("tesseract", "pp-ocr", "auto")

# The measures live in the package (``describe-local eval`` reports them too); the tests import them from here.
from describe_local.evaluation.text import (  # noqa: E402
    QUOTES,
    char_error_rate,
    normalise,
    phrases_read,
    squash,
    word_precision,
    word_recall,
    words_of,
)

__all__ = ["QUOTES", "char_error_rate", "normalise", "phrases_read", "squash", "word_precision", "word_recall",
           "words_of"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_engine(data: Path, engine: str, threads: int, repeat: int) -> dict:
    """Every figure for one engine setting (run in a child process of its own)."""
    from describe_local.images import load_photo
    from describe_local.settings import Settings

    settings = Settings.load(ocr_engine=engine, ocr_threads=threads)
    ocr = data / "ocr"

    def load(path: Path):
        return load_photo(path, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)

    load(ocr / "scenes" / "mall_sign.jpg")  # Pillow's decoders loaded before the baseline
    rss0, peak0 = _rss_mb(), _peak_mb()
    from describe_local.see.text import TextReader

    reader = TextReader.load(settings)
    reader.read(load(ocr / "signs" / "example3.png"))  # first run: ONNX Runtime's one-off set-up

    def timed(path: Path):
        """The reading, and the best wall and CPU (this process and Tesseract's) ms of ``repeat`` reads."""
        photo = load(path)
        walls, cpus = [], []
        for _ in range(repeat):
            start, cpu, child = time.perf_counter(), time.process_time(), _children_cpu_s()
            reading = reader.read(photo)
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - cpu + _children_cpu_s() - child) * 1000)
        return reading, min(walls), min(cpus)

    out: dict = {"engine": engine, "threads": threads, "repeat": repeat}
    out.update(scenes=[], pages=[], signs=[], faces=[])
    photo_ms, photo_cpu, page_ms = [], [], []
    manifest = json.loads((ocr / "scenes" / "manifest.json").read_text())
    for item in manifest["items"]:
        reading, ms, cpu = timed(ocr / "scenes" / item["file"])
        hits = phrases_read(reading.text, item["phrases"])
        missed = [p for p, hit in zip(item["phrases"], hits, strict=True) if not hit]
        out["scenes"].append({"file": item["file"], "read": sum(hits), "of": len(hits), "missed": missed, "ms": ms})
        photo_ms.append(ms)
        photo_cpu.append(cpu)
    for item in json.loads((ocr / "pages.manifest.json").read_text())["items"]:
        name = Path(item["file"]).name
        truth = (ocr / "pages" / Path(item["ground_truth_file"]).name).read_text()
        reading, ms, _ = timed(ocr / "pages" / name)
        out["pages"].append({
            "file": name, "recall": word_recall(reading.text, truth), "precision": word_precision(reading.text, truth),
            "cer": char_error_rate(reading.text, truth), "language": reading.language, "mode": reading.mode, "ms": ms,
        })
        page_ms.append(ms)
    for path in sorted((ocr / "signs").iterdir()):
        reading, ms, cpu = timed(path)
        out["signs"].append({"file": path.name, "text": reading.text, "language": reading.language, "ms": ms})
        photo_ms.append(ms)
        photo_cpu.append(cpu)
    for path in sorted((data / "faces" / "photos").iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        reading, ms, cpu = timed(path)
        out["faces"].append({"file": path.name, "text": reading.text, "ms": ms})
        photo_ms.append(ms)
        photo_cpu.append(cpu)
    out["photo_ms"] = photo_ms
    out["photo_cpu_ms"] = photo_cpu
    out["page_ms"] = page_ms
    out["rss_added_mb"] = _rss_mb() - rss0
    out["peak_added_mb"] = _peak_mb() - peak0
    out["load_avg"] = os.getloadavg()[0]
    return out


def report(result: dict) -> None:
    """Print one engine's figures."""
    scenes = result["scenes"]
    read, total = sum(s["read"] for s in scenes), sum(s["of"] for s in scenes)
    print(f"== engine {result['engine']} (ONNX Runtime threads {result['threads']}, "
          f"best of {result['repeat']} reads) ==")
    print(f"scenes: phrase recall {read}/{total} = {read / total:.1%}")
    for s in scenes:
        print(f"  {s['file']:30} {s['read']:2}/{s['of']:2} {s['ms']:6.0f} ms  missed {s['missed']}")
    print("pages: word recall, precision, CER, language, mode, ms")
    for p in result["pages"]:
        figures = f"{p['recall']:.3f} {p['precision']:.3f} {p['cer']:.3f}"
        print(f"  {p['file']:18} {figures} {p['language']} {p['mode']} {p['ms']:.0f}")
    print("signs:")
    for s in result["signs"]:
        print(f"  {s['file']:14} {s['language']} {s['ms']:.0f} ms: {s['text']!r}")
    spoke = [f for f in result["faces"] if f["text"]]
    print(f"faces/photos: {len(spoke)} of {len(result['faces'])} with text read")
    for f in spoke:
        print(f"    {f['file']}: {f['text']!r}")
    ms, cpu, pages = result["photo_ms"], result["photo_cpu_ms"], result["page_ms"]
    print(
        f"time per photo ({len(ms)} photos): median {np.median(ms):.0f} ms, worst {max(ms):.0f} ms "
        f"(CPU median {np.median(cpu):.0f} ms, worst {max(cpu):.0f} ms); pages: median {np.median(pages):.0f} ms, "
        f"worst {max(pages):.0f} ms"
    )
    print(
        f"resident memory added: {result['rss_added_mb']:.0f} MB after all reads, peak {result['peak_added_mb']:.0f} MB"
        f" (load average during the run {result['load_avg']:.1f} on {os.cpu_count()} cores)"
    )


# Word recall Tesseract reached on the pages before PP-OCR: the auto engine must not read them worse.
BASELINE_PAGES = {"phototest.tif": 1.000, "eurotext.tif": 0.923, "8071_093.3B.tif": 0.989, "8087_054.3B.tif": 0.945}


def summary(results: dict[str, dict]) -> None:
    """One line per engine with the figures the targets are about; PP-OCR's memory beside Tesseract's."""
    print("== summary (targets: phrase recall >= 85%, page recall no worse than Tesseract's, <= 2 of 22 faces, "
          "median <= 350 ms and worst <= 1500 ms per photo, added memory <= 150 MB) ==")
    base = results.get("tesseract", {}).get("rss_added_mb")
    for engine, r in results.items():
        read, total = sum(s["read"] for s in r["scenes"]), sum(s["of"] for s in r["scenes"])
        pages = " ".join(f"{p['recall']:.3f}" for p in r["pages"])
        worse = [p["file"] for p in r["pages"] if round(p["recall"], 3) < BASELINE_PAGES.get(p["file"], 0)]
        faces = sum(bool(f["text"]) for f in r["faces"])
        extra = f" ({r['rss_added_mb'] - base:+.0f} MB over the tesseract engine)" if base is not None else ""
        pages += f" (worse: {', '.join(worse)})" if worse else ""
        print(
            f"  {engine:9} phrases {read / total:.1%}; pages {pages}; "
            f"faces with text {faces}/{len(r['faces'])}; photo median {np.median(r['photo_ms']):.0f} ms, "
            f"worst {max(r['photo_ms']):.0f} ms; pages worst {max(r['page_ms']):.0f} ms; "
            f"memory +{r['rss_added_mb']:.0f} MB{extra}, peak +{r['peak_added_mb']:.0f} MB"
        )


def measure_omp(page: Path, runs: int = 3) -> None:
    """Tesseract on one page with its OpenMP threads capped at 1 and uncapped: wall and CPU."""
    import io

    from PIL import Image

    from describe_local.see.text import prepare

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: tesseract, pp-ocr, auto")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the setting's)")
    parser.add_argument("--repeat", type=int, default=2, help="reads per photo; the best time counts (default 2)")
    parser.add_argument("--omp", action="store_true", help="also time Tesseract with and without OMP_THREAD_LIMIT=1")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one engine, figures as JSON on stdout
    args = parser.parse_args()
    if not (args.data / "ocr").is_dir():
        print(f"no shared data at {args.data}", file=sys.stderr)
        return 1
    if args.child:
        print(json.dumps(measure_engine(args.data, args.child, args.threads, args.repeat)))
        return 0
    from describe_local.settings import Settings

    threads = args.threads or Settings.load().ocr_threads
    results = {}
    for engine in args.engines.split(","):
        command = [sys.executable, __file__, "--data", str(args.data), "--child", engine, "--threads", str(threads),
                   "--repeat", str(args.repeat)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"== engine {engine}: failed ==\n{done.stderr[-3000:]}")
            continue
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        report(results[engine])
    summary(results)
    if args.omp:
        print(f"OpenMP threads, {os.cpu_count()} cores, page 8071_093.3B (layout pass, English):")
        measure_omp(args.data / "ocr" / "pages" / "8071_093.3B.tif")
    return 0


if __name__ == "__main__":
    sys.exit(main())
