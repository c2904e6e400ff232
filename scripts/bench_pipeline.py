"""Benchmark the whole pipeline as the original's table did: photos of 0, 1 and 4 people.

Prints, for each photo, the median warm time of every stage in parallel and
sequential mode, which analysis stages ran, the two totals next to the AWS
figures and the comparison: the cloud published totals that include a caption,
so with no caption model (or a stage that failed) the row says it cannot be
compared instead of "faster". Then the peak RSS of the process tree. Run it
through ``scripts/bench``.
The cases, the AWS figures and the timing live in
``describe_local/evaluation/speed.py``; ``describe-local eval --speed`` reports
the same table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from describe_local.evaluation.speed import (  # noqa: E402
    CASES,
    STAGES,
    TreeRss,
    enrol,
    own_peak_rss_mb,
    stages_ran,
    time_case,
    verdict,
)
from describe_local.pipeline import Describer  # noqa: E402
from describe_local.settings import Settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--caption-model", help="caption model name or folder (default: the setting)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per photo and mode (median)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the real photos in {DATA}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp, TreeRss() as tree:
        settings = Settings.load(known_faces=Path(tmp) / "known_faces", caption_model=args.caption_model)
        enrol(settings, DATA)
        with Describer.load(settings) as describer:
            caption = describer.status()["caption"]
            caption_note = None if caption.loaded else caption.detail
            print(f"caption model: {settings.caption_model}" + (f" ({caption_note})" if caption_note else ""))
            print(f"timed runs per photo and mode: {args.repeat} (median), after one warm-up run\n")
            header = (f"{'photo':10} {'mode':10} " + " ".join(f"{s:>9}" for s in STAGES)
                      + f"   {'AWS':8} {'AWS ms':>6}  vs AWS")
            print(header)
            print("-" * len(header))
            compared = False
            for case in CASES:
                for sequential, aws in ((True, case.aws_sequential_ms), (False, case.aws_parallel_ms)):
                    timing = time_case(describer, DATA / case.photo, sequential=sequential, repeats=args.repeat)
                    med = timing.median
                    mode = "sequential" if sequential else "parallel"
                    judged = verdict(timing.ran, med["total"], aws)
                    compared = compared or judged.comparable
                    print(f"{case.label:10} {mode:10} " + " ".join(f"{med[s]:9.0f}" for s in STAGES)
                          + f"   {case.cloud_label:8} {aws:6d}  {judged.text}")
                print(f"{'':10} stages: {stages_ran(timing.ran)}; said: {timing.said[:100]}")
            if not compared:
                print("\nno row is set against the AWS figures: the cloud published totals only, each with a "
                      "caption, faces and text in it")
    print(f"\npeak RSS: {tree.peak_mb:.0f} MB for the whole process tree (sampled every 20 ms; "
          f"faces and Tesseract run in child processes), {own_peak_rss_mb():.0f} MB this process alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
