#!/usr/bin/env python3
"""Benchmark ``describe-local alt-text`` over the 55 COCO photos: images per minute.

    .venv/bin/python scripts/bench_alt_text.py [--photos DIR] [--repeat N] [--no-caption-only]

Runs the command as a user does (a fresh process, an empty gallery, JSON lines to a pipe),
first without a caption model (faces and text only: the alt text is partial), then with a
tiny random OFA model of OFA-tiny's size (``scripts/make_tiny_models.py OUT --only ofa-tiny
--full-vocab``: the real model's shapes and cost, random weights). For each it prints the
steady rate (from the first image to the last, as the command reports it) and the rate with
the models' loading counted in. The target is 100 images a minute without a caption model.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGET_PER_MIN = 100.0
_RATE = re.compile(r"(\d+) of (\d+) images given alt text, (\d+) images per minute")


def run_alt_text(photos: Path, scratch: Path, caption_model: Path | None) -> tuple[float, float, int]:
    """One run of the command: (steady images per minute, images per minute with loading, images)."""
    (scratch / "models").mkdir(exist_ok=True)
    (scratch / "gallery").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(scratch / "models"), DESCRIBE_LOCAL_KNOWN_FACES=str(scratch / "gallery"))
    command = [sys.executable, "-m", "describe_local", "alt-text", str(photos)]
    if caption_model is not None:
        command += ["--caption-model", str(caption_model)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"alt-text failed ({done.returncode}):\n{done.stderr}")
    match = _RATE.search(done.stderr)
    if match is None:
        raise SystemExit(f"no rate in the command's output:\n{done.stderr}")
    images = len(done.stdout.splitlines())
    return float(match.group(3)), images / seconds * 60, images


def tiny_ofa(folder: Path) -> Path:
    """A random OFA model of OFA-tiny's size in ``folder`` (made once)."""
    model = folder / "ofa-tiny"
    if not model.is_dir():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tiny_models.py"), str(folder),
                        "--only", "ofa-tiny", "--full-vocab"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=DATA / "captions" / "images",
                        help="a folder of photos (default: the 55 COCO photos in ../shared/data/captions)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median is printed")
    parser.add_argument("--no-caption-only", action="store_true", help="skip the run with a caption model")
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"no photos at {args.photos} (the real test data lives in ../shared/data)", file=sys.stderr)
        return 2
    print(f"alt-text over {args.photos} on {os.cpu_count()} CPU cores, {args.repeat} run(s) per case")
    with tempfile.TemporaryDirectory(prefix="bench-alt-text-") as scratch:
        cases: list[tuple[str, Path | None]] = [("no caption model (faces + text)", None)]
        if not args.no_caption_only:
            cases.append(("tiny random OFA, OFA-tiny's size", tiny_ofa(Path(scratch) / "tiny")))
        below = False
        for label, model in cases:
            runs = [run_alt_text(args.photos, Path(scratch), model) for _ in range(args.repeat)]
            steady = statistics.median(r[0] for r in runs)
            overall = statistics.median(r[1] for r in runs)
            print(f"{label:36s} {steady:6.0f} images/min steady, {overall:6.0f} images/min with loading "
                  f"({runs[0][2]} images)")
            below |= model is None and steady < TARGET_PER_MIN
        verdict = "below" if below else "meets"
        print(f"without a caption model: {verdict} the target of {TARGET_PER_MIN:.0f} images/min")
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(main())
