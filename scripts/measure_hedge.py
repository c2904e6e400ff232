#!/usr/bin/env python3
"""Measure where a Florence-2 model's captions become unsure: the ``hedge_below`` setting.

    python scripts/measure_hedge.py MODEL_FOLDER [--photos 55] [--beam 3] [--quantile 0.25] [--json]

Captions the COCO photos in ``../shared/data/captions`` (each with 5 human
references) with a converted Florence-2 folder, and for each caption takes the
model's own score (mean token log-probability, what the hedge is decided on)
and a plain measure of being right: unigram F1 against the closest reference.
Prints, sorted by score, each photo's score, F1 and caption; the rank
correlation of score and F1; and the suggested threshold: the ``--quantile``
of the scores (default: hedge the least sure quarter), with the mean F1 of the
captions below and above it. A threshold is worth setting where the captions
below it are clearly worse than those above.

The default ``hedge_below`` (-5.74) came from this script on random weights
(``make_tiny_models.py --only florence-2-tiny``, all 55 photos, beam 3: scores
from -6.10 to -2.41, the lower quarter under -5.743), where no caption is right
(F1 0 throughout, rank correlation -0.02); it is a placeholder until it is
measured with real weights (``models pull florence-2-base-ft``) this way.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CAPTIONS = ROOT.parent / "shared" / "data" / "captions"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def unigram_f1(caption: str, references: list[str]) -> float:
    """The best unigram F1 of ``caption`` against any one reference (0 for an empty caption)."""
    ours = words(caption)
    best = 0.0
    for reference in references:
        theirs = words(reference)
        common = sum(min(ours.count(w), theirs.count(w)) for w in set(ours))
        if common:
            precision, recall = common / len(ours), common / len(theirs)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def rank_correlation(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 and np.std(rb) > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from describe_local.see.caption.florence_onnx.runtime import CAPTION, OnnxFlorence

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a Florence-2 model folder converted to ONNX")
    parser.add_argument("--photos", type=int, default=55)
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--quantile", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    manifest = CAPTIONS / "manifest.json"
    if not manifest.is_file():
        parser.error(f"no COCO captions at {CAPTIONS}")
    items = json.loads(manifest.read_text(encoding="utf-8"))["items"][: args.photos]
    engine = OnnxFlorence.load(args.folder, threads=args.threads)
    rules = engine.rules(args.beam, args.max_new_tokens)
    rows = []
    for item in items:
        with Image.open(CAPTIONS / item["file"]) as image:
            result = engine.generate([image.convert("RGB")], CAPTION, rules)[0]
        text = engine.text(result)
        rows.append({"file": item["file"], "score": result.mean_logprob, "f1": unigram_f1(text, item["captions"]),
                     "caption": text})
    scores = [r["score"] for r in rows]
    threshold = float(np.quantile(scores, args.quantile))
    below = [r["f1"] for r in rows if r["score"] < threshold]
    above = [r["f1"] for r in rows if r["score"] >= threshold]
    summary = {"photos": len(rows), "rank_correlation": rank_correlation(scores, [r["f1"] for r in rows]),
               "suggested_hedge_below": round(threshold, 3), "quantile": args.quantile,
               "mean_f1_below": float(np.mean(below)) if below else None,
               "mean_f1_above": float(np.mean(above)) if above else None}
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return 0
    for r in sorted(rows, key=lambda r: r["score"]):
        print(f"{r['score']:7.3f}  F1 {r['f1']:.2f}  {Path(r['file']).name}  {r['caption'][:70]}")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
