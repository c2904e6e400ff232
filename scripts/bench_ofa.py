#!/usr/bin/env python3
"""Benchmark: OFA captioning by our PyTorch engine, on ONNX Runtime (fp32, int8), and modelscope's reference.

One run, one set of weights for all four: the reference writes a random
OFA-tiny-sized checkpoint (the released shapes and 59457-token vocabulary;
seed 3, weights scaled by 3 so that captions differ per photo), which is then
converted to ONNX (fp32 and int8) and loaded by our engines. CPU, 2 threads,
16 output tokens forced (``</s>`` refused before, forced after); greedy, and
beam 5 with no-repeat 3-grams. Each engine runs in a fresh process and reports:
the time to import it and to load the model (ONNX: from this machine's
optimised copies, which converting writes), the median ms per caption (from the PIL image: resize,
normalise, encode, decode) in wall time and in CPU time (all threads), its peak RSS (VmHWM; the reference's includes
building its random model), whether it imported torch, and then the tokens of
plain greedy and beam 5 on every COCO photo: whether ONNX fp32 gives our
PyTorch engine's tokens, and how often int8 agrees with fp32 (random weights:
only a proxy for a real checkpoint's agreement).

    .venv/bin/python scripts/bench_ofa.py [--runs 10] [--engines torch,onnx-fp32,onnx-int8,reference]

Needs ``.venv-ref`` for the reference (``scripts/reference/setup``); without it
the reference column is left out. On a shared machine the figures move with
the load (printed): compare engines within one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
REFERENCE_SCRIPT = ROOT / "scripts" / "reference" / "ofa_reference.py"
PHOTOS = ROOT.parent / "shared" / "data" / "captions" / "images"
TIMED_PHOTO = "000000000802.jpg"
TOKENS = 16
THREADS = 2
SEED, SCALE = 3, 3.0
ENGINES = ("torch", "onnx-fp32", "onnx-int8", "reference")
log = logging.getLogger("bench_ofa")


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(engine_name: str, folder: Path, photos: Path, runs: int) -> dict:
    """Load one of our engines in this (fresh) process, time it, and decode every photo."""
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    if engine_name == "torch":
        import torch

        from describe_local.see.caption.ofa import OFA

        imported = time.perf_counter()
        torch.set_num_threads(THREADS)
        engine = OFA.load(folder, device="cpu")
        prompt = engine.task.prompt
    else:
        from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA

        imported = time.perf_counter()
        engine = OnnxOFA.load(folder, device="cpu", threads=THREADS, precision=engine_name.split("-")[1])
        prompt = engine.prompt
    from describe_local.see.caption.ofa.options import SearchOptions

    report: dict = {"import_s": imported - start, "load_s": time.perf_counter() - imported}
    paths = sorted(photos.glob("*.jpg"))
    timed = Image.open(photos / TIMED_PHOTO)
    timed.load()
    forced = {
        "greedy": SearchOptions(beam=1, min_tokens=TOKENS, max_tokens=TOKENS, no_repeat_ngram=0),
        "beam5": SearchOptions(beam=5, min_tokens=TOKENS, max_tokens=TOKENS, no_repeat_ngram=3),
    }
    for mode, options in forced.items():
        ids = engine.generate_ids([timed], [prompt], options)  # warm-up
        assert len(ids[0]) == TOKENS, ids
        times, cpu = [], []
        for _ in range(runs):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            engine.generate_ids([timed], [prompt], options)
            times.append(time.perf_counter() - begin)
            cpu.append(time.process_time() - begin_cpu)
        report[mode] = statistics.median(times)
        report[f"{mode}_cpu"] = statistics.median(cpu)
    report["max_rss_mb"] = peak_rss_mb()  # the captioner's, before the other photos are decoded
    images = [Image.open(p).convert("RGB") for p in paths]
    plain = {"greedy": SearchOptions.plain_greedy(TOKENS), "beam5": SearchOptions(beam=5, max_tokens=TOKENS)}
    report["ids"] = {mode: [engine.generate_ids([im], [prompt], o)[0] for im in images] for mode, o in plain.items()}
    report["torch_imported"] = "torch" in sys.modules
    return report


def reference(folder: Path, photos: Path, runs: int) -> dict:
    """Write the checkpoint into ``folder`` with modelscope's OFA, and time it there (in .venv-ref)."""
    wrapper = (
        "import atexit, runpy, sys\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'): print('VMHWM', int(line.split()[1]) / 1024, file=sys.stderr)\n"
        "atexit.register(hwm)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    args = [str(REFERENCE_SCRIPT), str(folder), str(photos / TIMED_PHOTO), "--size", "ofa-tiny", "--full-vocab",
            "--seed", str(SEED), "--scales", str(SCALE), "--bench", str(runs), "--threads", str(THREADS),
            "--max-tokens", str(TOKENS)]
    done = subprocess.run([str(REFERENCE_PYTHON), "-c", wrapper, *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["max_rss_mb"] = next(float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("VMHWM"))
    report["torch_imported"] = True
    return report


def agreement(a: list[list[int]], b: list[list[int]]) -> tuple[int, float]:
    """(photos with identical tokens, share of token positions that agree)."""
    same = sum(x == y for x, y in zip(a, b, strict=True))
    positions = sum(max(len(x), len(y)) for x, y in zip(a, b, strict=True)) or 1
    agree = sum(sum(p == q for p, q in zip(x, y, strict=False)) for x, y in zip(a, b, strict=True))
    return same, agree / positions


def run_all(engines: list[str], photos: Path, runs: int) -> dict[str, dict]:
    """Every engine's report, on one checkpoint written (by the reference when it runs) into a scratch folder."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_tiny_models

    from describe_local.see.caption.ofa_onnx.convert import convert

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ofa-tiny"
        if "reference" in engines:
            results["reference"] = reference(folder, photos, runs)
        else:
            make_tiny_models.write_ofa(folder, "ofa-tiny", seed=SEED, scale=SCALE, full_vocab=True)
        if any(e.startswith("onnx") for e in engines):
            begin = time.perf_counter()
            convert(folder, int8="onnx-int8" in engines)
            log.info("converted in %.1f s", time.perf_counter() - begin)
        for name in engines:
            if name == "reference":
                continue
            done = subprocess.run([sys.executable, __file__, "--worker", name, str(folder), "--photos", str(photos),
                                   "--runs", str(runs)], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"bench_ofa: the {name} worker failed:\n{done.stderr}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def report(results: dict[str, dict], runs: int, load: tuple[float, float]) -> None:
    names = [n for n in ENGINES if n in results]
    print(f"OFA-tiny-sized random weights (seed {SEED}, scale {SCALE:g}), CPU {THREADS} threads, {TOKENS} tokens "
          f"forced, median of {runs}; load average {load[0]:.2f} before, {load[1]:.2f} after")
    print(f"{'':24}" + "".join(f"{name:>12}" for name in names))

    def row(label: str, cell) -> None:
        print(f"{label:24}" + "".join(f"{cell(results[n]):>12}" for n in names))

    row("greedy ms", lambda r: f"{r['greedy'] * 1000:.0f}")
    row("beam-5 ms", lambda r: f"{r['beam5'] * 1000:.0f}")
    row("greedy CPU ms", lambda r: f"{r['greedy_cpu'] * 1000:.0f}" if "greedy_cpu" in r else "-")
    row("beam-5 CPU ms", lambda r: f"{r['beam5_cpu'] * 1000:.0f}" if "beam5_cpu" in r else "-")
    row("import s", lambda r: f"{r['import_s']:.2f}" if "import_s" in r else "-")
    row("model load s", lambda r: f"{r['load_s']:.2f}" if "load_s" in r else "-")
    row("peak RSS MB", lambda r: f"{r['max_rss_mb']:.0f}")
    row("imports torch", lambda r: str(r["torch_imported"]))
    if "reference" in results:
        ref = results["reference"]
        row("speed-up greedy", lambda r: f"{ref['greedy'] / r['greedy']:.1f}x")
        row("speed-up beam 5", lambda r: f"{ref['beam5'] / r['beam5']:.1f}x")
    tokens = {n: r["ids"] for n, r in results.items() if "ids" in r}
    for mode in ("greedy", "beam5"):
        if "torch" in tokens and "onnx-fp32" in tokens:
            same, _ = agreement(tokens["torch"][mode], tokens["onnx-fp32"][mode])
            distinct = len({tuple(ids) for ids in tokens["torch"][mode]})
            photos = len(tokens["torch"][mode])
            print(f"{mode}: ONNX fp32 = torch on {same}/{photos} photos ({distinct} distinct captions)")
        if "onnx-fp32" in tokens and "onnx-int8" in tokens:
            same, share = agreement(tokens["onnx-fp32"][mode], tokens["onnx-int8"][mode])
            photos = len(tokens["onnx-fp32"][mode])
            print(f"{mode}: int8 = fp32 on {same}/{photos} photos, {share:.0%} of tokens "
                  "(random weights: only a proxy for a real checkpoint's agreement)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"some of {', '.join(ENGINES)}")
    parser.add_argument("--json", type=Path, help="also write the results (tokens included) to this file")
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), args.photos, args.runs)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    if not (args.photos / TIMED_PHOTO).is_file():
        print(f"bench_ofa: the COCO photos are not in {args.photos} (use --photos)", file=sys.stderr)
        return 1
    if "reference" in engines and not REFERENCE_PYTHON.exists():
        log.warning("bench_ofa: .venv-ref is missing (scripts/reference/setup builds it): no reference column")
        engines.remove("reference")
    before = os.getloadavg()[0]
    results = run_all(engines, args.photos, args.runs)
    report(results, args.runs, (before, os.getloadavg()[0]))
    if args.json:
        args.json.write_text(json.dumps(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
