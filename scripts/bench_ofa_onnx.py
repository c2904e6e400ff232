#!/usr/bin/env python3
"""Benchmark: our OFA engine on PyTorch against ONNX Runtime fp32 and int8.

Random OFA-tiny-sized weights (the released shapes, 59457-token vocabulary;
seed 3, scale 3 so that captions vary per photo), CPU with 2 threads. Each
engine runs in a fresh process (so its peak RSS is the captioner's): load
time, median ms per caption with 16 tokens forced (greedy; beam 5 with
no-repeat 3-grams), then the tokens of plain greedy and beam 5 on every COCO
photo. Prints them side by side, whether ONNX fp32 gives the PyTorch tokens,
and how often int8 agrees with fp32 (random weights: only a proxy for a real
checkpoint's agreement).

    .venv/bin/python scripts/bench_ofa_onnx.py [--runs 10] [--photos DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "captions" / "images"
TOKENS = 16
THREADS = 2
ENGINES = ("torch", "onnx-fp32", "onnx-int8")
log = logging.getLogger("bench_ofa_onnx")


def worker(engine_name: str, folder: Path, photos: Path, runs: int) -> dict:
    """Load one engine in this (fresh) process, time it, and decode every photo."""
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    if engine_name == "torch":
        import torch

        from describe_local.see.caption.ofa import OFA, SearchOptions

        torch.set_num_threads(THREADS)
        engine = OFA.load(folder, device="cpu")
        prompt = engine.task.prompt
    else:
        from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA
        from describe_local.see.caption.ofa_onnx.search import SearchOptions

        engine = OnnxOFA.load(folder, device="cpu", threads=THREADS, precision=engine_name.split("-")[1])
        prompt = engine.prompt
    report: dict = {"load_s": time.perf_counter() - start}
    paths = sorted(photos.glob("*.jpg"))
    images = [Image.open(paths[0]).convert("RGB")]
    forced = {
        "greedy": SearchOptions(beam=1, min_tokens=TOKENS, max_tokens=TOKENS, no_repeat_ngram=0),
        "beam5": SearchOptions(beam=5, min_tokens=TOKENS, max_tokens=TOKENS, no_repeat_ngram=3),
    }
    for mode, options in forced.items():
        engine.generate_ids([images[0]], [prompt], options)  # warm-up
        times = []
        for _ in range(runs):
            begin = time.perf_counter()
            engine.generate_ids([images[0]], [prompt], options)
            times.append(time.perf_counter() - begin)
        report[mode] = statistics.median(times)
    report["max_rss_mb"] = peak_rss_mb()  # the captioner's, before the other photos are decoded
    images += [Image.open(p).convert("RGB") for p in paths[1:]]
    plain = {"greedy": SearchOptions.plain_greedy(TOKENS), "beam5": SearchOptions(beam=5, max_tokens=TOKENS)}
    report["ids"] = {mode: [engine.generate_ids([im], [prompt], o)[0] for im in images] for mode, o in plain.items()}
    report["torch_imported"] = "torch" in sys.modules
    return report


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def agreement(a: list[list[int]], b: list[list[int]]) -> tuple[int, float]:
    """(photos with identical tokens, share of token positions that agree)."""
    same = sum(x == y for x, y in zip(a, b, strict=True))
    positions = sum(max(len(x), len(y)) for x, y in zip(a, b, strict=True)) or 1
    agree = sum(sum(p == q for p, q in zip(x, y, strict=False)) for x, y in zip(a, b, strict=True))
    return same, agree / positions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), args.photos, args.runs)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_tiny_models

    from describe_local.see.caption.ofa_onnx.convert import convert

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny_models.write_ofa(Path(tmp) / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0, full_vocab=True)
        begin = time.perf_counter()
        convert(folder, int8=True)
        log.info("converted in %.1f s", time.perf_counter() - begin)
        for name in ENGINES:
            run = subprocess.run([sys.executable, __file__, "--worker", name, str(folder), "--photos", str(args.photos),
                                  "--runs", str(args.runs)], capture_output=True, text=True, check=True)
            results[name] = json.loads(run.stdout.strip().splitlines()[-1])
    photos = len(results["torch"]["ids"]["greedy"])
    print(f"OFA-tiny-sized random weights, CPU {THREADS} threads, {TOKENS} tokens forced, median of {args.runs}")
    print(f"{'':22}" + "".join(f"{name:>12}" for name in ENGINES))
    rows = (("greedy ms", "greedy", 1000), ("beam-5 ms", "beam5", 1000), ("load s", "load_s", 1),
            ("captioner peak RSS MB", "max_rss_mb", 1))
    for label, key, factor in rows:
        print(f"{label:22}" + "".join(f"{results[n][key] * factor:12.{0 if factor > 1 or key == 'max_rss_mb' else 2}f}"
                                      for n in ENGINES))
    print(f"{'imports torch':22}" + "".join(f"{results[n]['torch_imported']!s:>12}" for n in ENGINES))
    for mode in ("greedy", "beam5"):
        same, _ = agreement(results["torch"]["ids"][mode], results["onnx-fp32"]["ids"][mode])
        int8_same, int8_tokens = agreement(results["onnx-fp32"]["ids"][mode], results["onnx-int8"]["ids"][mode])
        distinct = len({tuple(ids) for ids in results["torch"]["ids"][mode]})
        print(f"{mode}: ONNX fp32 = torch on {same}/{photos} photos ({distinct} distinct captions); "
              f"int8 = fp32 on {int8_same}/{photos} photos, {int8_tokens:.0%} of tokens (random weights: a proxy)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
