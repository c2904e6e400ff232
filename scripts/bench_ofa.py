#!/usr/bin/env python3
"""Benchmark: our OFA engine against modelscope's reference implementation.

Same random OFA-tiny-sized weights (the released shapes, 59457-token
vocabulary), same photo, CPU with 2 threads, 16 output tokens forced (``</s>``
refused before, forced after), greedy and beam 5 (no-repeat 3-grams). Prints
the median seconds per caption of each, the speed-up, and the peak RSS of a
process that loads the captioner and captions once.

    .venv/bin/python scripts/bench_ofa.py [--runs 10] [--photo PATH]

Needs ``.venv-ref`` (``scripts/reference/setup``). Our timing starts from the
PIL image (resize, normalise, encode, decode); the reference's from the
preprocessed tensor, so the comparison favours the reference slightly.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
DEFAULT_PHOTO = ROOT.parent / "shared" / "data" / "captions" / "images" / "000000000802.jpg"
TOKENS = 16
THREADS = 2


def worker(folder: Path, photo: Path, runs: int) -> dict:
    """Time our engine in this process (a fresh one, so that its RSS is the captioner's)."""
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from describe_local.see.caption.ofa import OFA, SearchOptions

    torch.set_num_threads(THREADS)
    engine = OFA.load(folder, device="cpu")
    image = Image.open(photo)
    image.load()
    report: dict = {}
    modes = {
        "greedy": SearchOptions(beam=1, min_tokens=TOKENS, max_tokens=TOKENS, no_repeat_ngram=0),
        "beam5": SearchOptions(beam=5, min_tokens=TOKENS, max_tokens=TOKENS, no_repeat_ngram=3),
    }
    for mode, options in modes.items():
        ids = engine.generate_ids([image], [engine.task.prompt], options)  # warm-up
        assert len(ids[0]) == TOKENS, ids
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            engine.generate_ids([image], [engine.task.prompt], options)
            times.append(time.perf_counter() - start)
        report[mode] = statistics.median(times)
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.photo, args.runs)))
        return 0
    if not REFERENCE_PYTHON.exists():
        print("bench_ofa: .venv-ref is missing; run scripts/reference/setup first", file=sys.stderr)
        return 1
    if not args.photo.is_file():
        print(f"bench_ofa: photo {args.photo} not found (use --photo)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ofa-tiny-random"
        reference = subprocess.run(
            [str(REFERENCE_PYTHON), str(ROOT / "scripts" / "reference" / "ofa_reference.py"), str(folder),
             str(args.photo), "--size", "ofa-tiny", "--full-vocab", "--bench", str(args.runs),
             "--threads", str(THREADS), "--max-tokens", str(TOKENS)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"},
        )
        ref = json.loads(reference.stdout.strip().splitlines()[-1])
        ours_run = subprocess.run(
            [sys.executable, __file__, "--worker", str(folder), "--photo", str(args.photo),
             "--runs", str(args.runs)],
            capture_output=True, text=True, check=True,
        )
        ours = json.loads(ours_run.stdout.strip().splitlines()[-1])
    print(f"OFA-tiny-sized random weights, {args.photo.name}, CPU {THREADS} threads, "
          f"{TOKENS} tokens forced, median of {args.runs}")
    print(f"{'mode':8} {'ours ms':>9} {'reference ms':>13} {'speed-up':>9}")
    for mode in ("greedy", "beam5"):
        print(f"{mode:8} {ours[mode] * 1000:9.1f} {ref[mode] * 1000:13.1f} {ref[mode] / ours[mode]:8.1f}x")
    print(f"captioner peak RSS: ours {ours['max_rss_mb']:.0f} MB, reference {ref['max_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
