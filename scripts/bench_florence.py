#!/usr/bin/env python3
"""Florence-2 on ONNX Runtime against ``transformers`` on torch, in the same run, on the same photos.

    python scripts/bench_florence.py [--size florence-2-base] [--photos 3] [--threads 2] [--work DIR]

Writes a random checkpoint of Florence-2-base's sizes (``make_tiny_models.py``,
``</s>`` left unlikely so that every caption runs to the length limit) into
``--work`` once, converts it (fp32 and int8), then runs each engine in its
own child process, one after the other, so that load time and peak RSS are each
engine's own: ONNX fp32, ONNX int8, and ``transformers``' Florence-2 on torch.
Each captions the same COCO photos (``../shared/data/captions``) greedy and with
beam 3, ``max_new_tokens=20`` (the slowest case: 20 tokens each).
Prints ms per caption, load time, peak RSS (the child's ``VmHWM``), whether
the ONNX tokens equal torch's, and the load average, which moves the figures.
Prints CPU time (both threads) beside wall time: on a shared machine the wall
time moves with the load, the CPU time much less.
This random model's text side does not look at the photo: every photo gets the
same caption, one token (309) every other step and near-tied runners-up between
(measured on three photos, also with the text layers' residual branches scaled
down, the cross-attention scaled down or the output embeddings scaled up), and
ONNX Runtime's log-probabilities differ from torch's by up to 6e-4 (teacher-forced,
measured): beam search can then order the tied tokens differently, so beam 3
equals torch on 1 photo of 3 while greedy equals it on all.
``tests/integration/test_florence_onnx.py`` checks equality on a checkpoint whose
captions do not tie so; int8 graphs are not expected to be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "captions" / "images"
NEW_TOKENS = 20


def child(engine: str, folder: Path, photos: list[Path], threads: int) -> dict:
    """Load ``engine`` and caption ``photos`` greedy and beam 3; the figures as a dict."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in photos]
    started = time.perf_counter()
    if engine == "torch":
        import torch
        import transformers

        torch.set_num_threads(threads)
        model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
        processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)

        def run(image, beams: int) -> list[int]:
            inputs = processor(text=["<CAPTION>"], images=[image], return_tensors="pt")
            with torch.inference_mode():
                return model.generate(**inputs, max_new_tokens=NEW_TOKENS, num_beams=beams,
                                      do_sample=False)[0].tolist()
    else:
        sys.path.insert(0, str(ROOT))
        from describe_local.see.caption.florence_onnx.runtime import OnnxFlorence

        onnx = OnnxFlorence.load(folder, threads=threads, precision="int8" if engine == "onnx-int8" else "fp32")

        def run(image, beams: int) -> list[int]:
            return onnx.generate([image], "<CAPTION>", onnx.rules(beams, NEW_TOKENS))[0].tokens
    load = time.perf_counter() - started
    figures: dict = {"engine": engine, "load_s": round(load, 2)}
    for beams in (1, 3):
        times, cpu, tokens = [], [], []
        for image in images:
            began, began_cpu = time.perf_counter(), time.process_time()
            tokens.append(run(image, beams))
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        figures[f"beam{beams}"] = {"ms_per_caption": round(statistics.mean(times)),
                                   "cpu_ms_per_caption": round(statistics.mean(cpu)),
                                   "ms_each": [round(t) for t in times], "tokens": tokens}
    if engine != "torch":  # where an ONNX caption's time goes: the vision tower alone, on the first photo
        from describe_local.see.caption.florence_onnx.runtime import pixel_array

        began = time.perf_counter()
        onnx.vision.run(None, {"pixels": pixel_array(images[:1], onnx.manifest)})
        figures["vision_ms"] = round((time.perf_counter() - began) * 1000)
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def peak_rss_mb() -> int:
    """This process's peak resident set since it started (VmHWM: ``ru_maxrss`` would carry the
    parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def prepare(work: Path, size: str) -> Path:
    folder = work / size
    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT))
    if not (folder / "model.safetensors").is_file():
        import make_tiny_models

        make_tiny_models.write_florence(folder, size, eos_scale=1.0)  # </s> unlikely: captions run to the limit
    from describe_local.see.caption.florence_onnx import layout

    if layout.precisions(folder) != ["fp32", "int8"]:
        from describe_local.see.caption.florence_onnx.convert import convert

        started = time.perf_counter()
        convert(folder, int8=True)
        print(f"converted in {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def same(theirs: list[int], ours: list[int]) -> bool:
    return theirs[: len(ours)] == ours and all(t == 1 for t in theirs[len(ours):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="florence-2-base", help="florence-2-base (default) or florence-2-tiny")
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-florence"))
    parser.add_argument("--engines", default="onnx,onnx-int8,torch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    photos = sorted(PHOTOS.glob("*.jpg"))[: args.photos]
    if args.child:
        print(json.dumps(child(args.child, args.work / args.size, photos, args.threads)))
        return 0
    if not photos:
        parser.error(f"no photos in {PHOTOS}")
    prepare(args.work, args.size)
    results = {}
    for engine in args.engines.split(","):
        done = subprocess.run([sys.executable, __file__, "--child", engine, "--size", args.size, "--photos",
                               str(args.photos), "--threads", str(args.threads), "--work", str(args.work)],
                              capture_output=True, text=True, cwd=ROOT, timeout=3600)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        results[engine] = json.loads(done.stdout.splitlines()[-1])
    print(f"{args.size}, {len(photos)} photos, {args.threads} threads, load average {os.getloadavg()}")
    print("ms per caption, wall (CPU: both threads' time; wall moves with the machine's load)")
    print(f"{'engine':<10} {'load s':>7} {'greedy ms':>10} {'(CPU)':>7} {'beam3 ms':>9} {'(CPU)':>7} "
          f"{'peak RSS MB':>12} {'vision ms':>10}")
    for name, r in results.items():
        print(f"{name:<10} {r['load_s']:>7} {r['beam1']['ms_per_caption']:>10} {r['beam1']['cpu_ms_per_caption']:>7} "
              f"{r['beam3']['ms_per_caption']:>9} {r['beam3']['cpu_ms_per_caption']:>7} "
              f"{r['peak_rss_mb']:>12} {r.get('vision_ms', '-'):>10}")
    if "torch" in results:
        for name in results:
            if name == "torch":
                continue
            for beams in ("beam1", "beam3"):
                equal = sum(same(t, o) for t, o in zip(results["torch"][beams]["tokens"],
                                                        results[name][beams]["tokens"], strict=True))
                speed = results["torch"][beams]["ms_per_caption"] / max(1, results[name][beams]["ms_per_caption"])
                cpu = results["torch"][beams]["cpu_ms_per_caption"] / max(1, results[name][beams]["cpu_ms_per_caption"])
                print(f"{name} {beams}: tokens equal to torch's {equal}/{len(photos)}, {speed:.1f}x torch's speed "
                      f"(wall), {cpu:.1f}x (CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
