#!/usr/bin/env python3
"""Do the faces and text stages really run side by side in Python threads?

The pipeline runs caption, faces and text in a thread pool. That only helps
if each call lets go of the GIL while it works. Two measurements:

1. **Ticker.** A pure-Python thread counts as fast as it can. While the main
   thread sits inside a call that releases the GIL, the ticker keeps its solo
   rate (given a free core); inside a call that holds the GIL it stops dead.
   A pure-Python busy loop is the control for "holds the GIL" (the two
   threads then share one GIL: about half the rate), ``time.sleep`` the
   control for "releases it".
2. **Wall time.** Faces and text on the same photo, each alone, then both at
   once in two threads: with real overlap the pair takes about as long as the
   slower one, not the sum.

Usage (from the project root)::

    .venv/bin/python scripts/measure_overlap.py [PHOTO] [--seconds 1.0] [--repeat 3] [--no-wall]

The default photo is ``../shared/data/faces/groups/bald_guys.jpg`` (24
faces: a long detection and encoding run). Run it on a quiet machine: other
load on the cores skews both measurements.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PHOTO = ROOT.parent / "shared" / "data" / "faces" / "groups" / "bald_guys.jpg"


class Ticker(threading.Thread):
    """Counts in pure Python, holding the GIL whenever it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.count = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.count += 1


def ticker_rate(ticker: Ticker, work: Callable[[], object], min_seconds: float) -> tuple[float, int]:
    """Ticks per second while ``work`` runs in this thread (repeated for at least ``min_seconds``)."""
    calls = 0
    start_count, start = ticker.count, time.perf_counter()
    while True:
        work()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return (ticker.count - start_count) / elapsed, calls


def busy_python(seconds: float = 0.25) -> Callable[[], None]:
    def work() -> None:
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1

    return work


def python_work(seconds: float) -> Callable[[], None]:
    """A fixed amount of pure-Python work that takes about ``seconds`` alone."""
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 0.2:
        n += 1
    count = int(n * seconds / 0.2)

    def work() -> None:
        end = time.perf_counter  # same loop body as the calibration
        i = 0
        while i < count:
            end()
            i += 1

    return work


def torch_decoder_like(seconds: float) -> Callable[[], None] | None:
    """Many small torch ops with Python between them, like a caption decoder's steps.

    Each op releases the GIL while it computes but needs it to be dispatched,
    so this is the work a GIL-holding call next to it hurts most.
    """
    try:
        import torch
    except ImportError:
        return None
    x0 = torch.randn(1, 256)
    w = torch.randn(256, 256) / 16

    def steps(n: int) -> None:
        x = x0
        for _ in range(n):
            x = torch.tanh(x @ w)

    start = time.perf_counter()
    steps(2000)
    count = int(2000 * seconds / (time.perf_counter() - start))
    return lambda: steps(count)


def longest_stall(work: Callable[[], object]) -> tuple[float, float]:
    """The longest gap (s) between two steps of a light Python thread while ``work`` runs, and its time.

    Little affected by other load on the machine: a busy core delays a thread
    by milliseconds, a call that holds the GIL by its whole duration.
    """
    gaps = [0.0]
    running = True

    def steps() -> None:
        last = time.perf_counter()
        while running:
            time.sleep(0.001)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last)
            last = now

    thread = threading.Thread(target=steps)
    thread.start()
    time.sleep(0.05)
    start = time.perf_counter()
    work()
    took = time.perf_counter() - start
    running = False
    thread.join()
    return gaps[0], took


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def in_threads(*fns: Callable[[], object]) -> list[float]:
    """Run all ``fns`` at once, one thread each; when each finished, in seconds from the start."""
    errors: list[BaseException] = []
    finished = [0.0] * len(fns)

    def guard(i: int, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finished[i] = time.perf_counter() - start

    threads = [threading.Thread(target=guard, args=(i, fn)) for i, fn in enumerate(fns)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", nargs="?", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each ticker window")
    parser.add_argument("--repeat", type=int, default=3, help="runs per wall-time figure (median)")
    parser.add_argument("--no-wall", action="store_true", help="skip the wall-time pairs (the slow part)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured, even when piped
    if not args.photo.is_file():
        print(f"no photo at {args.photo} (shared data absent? pass a photo)", file=sys.stderr)
        return 2

    import numpy as np
    import pytesseract

    from describe_local.images import image_limits, load_photo
    from describe_local.see.faces.detect import FaceModels, detect_faces, downscale, encode_faces, find_faces
    from describe_local.see.faces.worker import FaceWorker
    from describe_local.settings import Settings

    settings = Settings.load()
    photo = load_photo(args.photo, **image_limits(settings))
    models = FaceModels.load()
    worker = FaceWorker()
    image, _scale = downscale(photo, settings.face_max_side)
    boxes = detect_faces(models, image, settings.face_upsample)

    reader = None
    try:
        from describe_local.see.text import TextReader

        reader = TextReader.load(settings)
    except Exception as exc:  # the text stage is optional here
        print(f"(describe_local.see.text unavailable: {exc}; measuring pytesseract only)")

    # pytesseract as a user would call it; Tesseract may use OpenMP threads of
    # its own, so pin it to one like the text stage does, for a fair overlap test.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")

    def ocr_pytesseract() -> None:
        pytesseract.image_to_data(photo.image, lang="eng")

    work: dict[str, Callable[[], object]] = {
        "sleep (releases the GIL)": lambda: time.sleep(0.25),
        "pure Python (holds the GIL)": busy_python(),
        "dlib HOG detection": lambda: detect_faces(models, image, settings.face_upsample),
        f"dlib encoding ({len(boxes)} faces)": lambda: encode_faces(models, image, boxes),
        "FaceWorker (child process)": lambda: worker.find_faces(image, settings.face_upsample),
        "pytesseract.image_to_data": ocr_pytesseract,
    }
    if reader is not None:
        work["TextReader.read (text stage)"] = lambda: reader.read(photo)

    print(f"photo: {args.photo} {photo.size[0]}x{photo.size[1]}, {len(boxes)} faces; cores: {os.cpu_count()}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2+ on 2 cores makes every figure below pessimistic)")
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, OMP_THREAD_LIMIT={os.environ['OMP_THREAD_LIMIT']}")
    print()
    print("1. Ticker rate while the main thread runs each call (1.00 = GIL free all along)")
    ticker = Ticker()
    ticker.start()
    try:
        baselines = []
        rows = []
        for label, fn in work.items():
            # Solo rate measured right before each call, to follow any change in machine load.
            solo, _ = ticker_rate(ticker, lambda: time.sleep(0.05), args.seconds)
            rate, calls = ticker_rate(ticker, fn, args.seconds)
            baselines.append(solo)
            rows.append((label, rate / solo, rate, calls))
        for label, ratio, rate, calls in rows:
            # A call that keeps the GIL starves the ticker outright (about 0); pure Python
            # shares it at each switch interval (about 0.5); a call that lets go of it
            # leaves the ticker its own core (about 1, less when other work fills the cores).
            if label.startswith("pure"):
                verdict = "control: shares the GIL"
            elif ratio < 0.2:
                verdict = "HOLDS the GIL throughout"
            else:
                verdict = "releases the GIL"
            print(f"   {label:<34} {ratio:5.2f}  ({rate / 1e6:5.2f} M ticks/s, {calls} calls)  {verdict}")
        print(f"   solo ticker rate: {statistics.median(baselines) / 1e6:.2f} M ticks/s")
    finally:
        ticker.running = False
        ticker.join()

    def faces_here() -> None:
        find_faces(models, photo, settings.face_max_side, settings.face_upsample)

    def faces_worker() -> None:
        worker.find_faces(downscale(photo, settings.face_max_side)[0], settings.face_upsample)

    print()
    print("2. Longest stall of another Python thread (1 ms steps) while the faces stage runs")
    for label, fn in (("faces in-process", faces_here), ("faces in worker", faces_worker)):
        stalls = [longest_stall(fn) for _ in range(args.repeat)]
        gap = statistics.median(g for g, _ in stalls)
        took = statistics.median(t for _, t in stalls)
        print(f"   {label:<16} longest stall {gap * 1000:7.1f} ms during {took:5.2f} s")

    if args.no_wall:
        worker.close()
        return 0
    print()
    print(f"3. Wall time, median of {args.repeat}: each alone, then both at once in two threads")
    # The other stage's work is sized to last as long as the faces stage, so
    # that it overlaps the encoding phase and not only detection.
    faces_alone = statistics.median(timed(faces_here) for _ in range(2))
    others: list[tuple[str, Callable[[], object]]] = [("pytesseract", ocr_pytesseract)]
    if reader is not None:
        others.append(("text stage", lambda: reader.read(photo)))
    others.append(("pure Python", python_work(faces_alone)))
    torch_work = torch_decoder_like(faces_alone)
    if torch_work is not None:
        others.append(("torch steps", torch_work))
    pairs = [
        (name_a, a, name_b, b)
        for name_b, b in others
        for name_a, a in (("faces in-process", faces_here), ("faces in worker", faces_worker))
    ]
    print("   (B done: when the other stage finished in parallel, against its time alone)")
    for name_a, a, name_b, b in pairs:
        alone_a, alone_b, both, b_done = [], [], [], []
        for _ in range(args.repeat):  # interleaved, so that a change in machine load hits all figures alike
            alone_a.append(timed(a))
            alone_b.append(timed(b))
            finished = in_threads(a, b)
            both.append(max(finished))
            b_done.append(finished[1])
        ta, tb, tp, td = (statistics.median(x) for x in (alone_a, alone_b, both, b_done))
        print(
            f"   {name_a:<16} {ta:5.2f} s + {name_b:<11} {tb:5.2f} s = {ta + tb:5.2f} s;"
            f" in parallel {tp:5.2f} s (x{(ta + tb) / tp:.2f}; ideal {max(ta, tb):5.2f} s);"
            f" B done at {td:5.2f} s (alone {tb:5.2f} s)"
        )
    worker.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
