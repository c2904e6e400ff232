"""``describe-local eval``: a quality and speed report against ground truth.

Writes ``results.json`` (every figure, the machine, the versions and the models' checksums),
``report.md`` and a self-contained ``report.html`` with plots into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from describe_local.cli._common import add_caption_options, check_beam, load_settings, setting_default, shown


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="a quality and speed report: captions, faces, text and time, against ground truth",
        description=(
            "Measure captions (BLEU, METEOR, ROUGE-L, CIDEr-D), face recognition (accuracy, false accepts "
            "over the tolerance), text reading (recall, precision, CER) and the time per photo beside the "
            "cloud original's, and write results.json, report.md and report.html. Give at least one section. "
            "Needs the eval extra: pip install 'describe-local[eval]' (and Java for the caption scores)."
        ),
    )
    parser.add_argument("--out", "-o", type=Path, default=Path("eval-report"), metavar="DIR",
                        help="the report's folder (default: eval-report)")
    captions = parser.add_argument_group("captions")
    captions.add_argument("--captions", type=Path, metavar="FILE_OR_DIR",
                          help="our caption manifest (captions/manifest.json) or a COCO annotation file")
    captions.add_argument("--caption-images", type=Path, metavar="DIR",
                          help="where a COCO file's photos are (default: beside it, or images/)")
    captions.add_argument("--human", action="store_true",
                          help="score each photo's first human caption against its other ones, instead of a model")
    add_caption_options(captions)
    faces = parser.add_argument_group("faces")
    faces.add_argument("--faces", type=Path, action="append", default=[], metavar="DIR_OR_MANIFEST",
                       help="a folder per person (LFW style) or a manifest with 'people' per photo; repeatable")
    faces.add_argument("--tolerance", type=float, metavar="T",
                       help=f"the face tolerance scored (default {setting_default('face_tolerance')})")
    faces.add_argument("--seed", type=int, metavar="S",
                       help=f"seed of the gallery/probe split (default {setting_default('eval_seed')})")
    faces.add_argument("--gallery-photos", type=int, metavar="N",
                       help=f"photos enrolled per person (default {setting_default('eval_gallery_photos')})")
    faces.add_argument("--strangers", type=float, metavar="SHARE",
                       help=f"share of the people never enrolled (default {setting_default('eval_strangers')})")
    text = parser.add_argument_group("text")
    text.add_argument("--text", type=Path, action="append", default=[], metavar="MANIFEST_OR_DIR",
                      help="a phrase or page manifest (ocr/scenes, ocr/pages) or an ICDAR-2015 folder; repeatable")
    timing = parser.add_argument_group("speed")
    timing.add_argument("--speed", action="store_true", help="time the cloud original's table (0, 1, 6 people)")
    timing.add_argument("--repeats", type=int, metavar="N",
                        help=f"timed runs per photo and mode (default {setting_default('eval_repeats')})")
    timing.add_argument("--data", type=Path, metavar="DIR",
                        help="the shared data folder with the table's photos (default: ../shared/data)")
    work = parser.add_argument_group("work")
    work.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    work.add_argument("--ray", metavar="ADDRESS", help="run the photos on a Ray cluster (or 'auto') instead")
    work.add_argument("--limit", type=int, metavar="N",
                      help="only the first N photos of each set (of each person, in a folder per person)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from describe_local.evaluation.run import EvalOptions, run_eval

    check_beam(args)
    settings = load_settings(
        args, caption_model="caption_model", beam="beam", face_tolerance="tolerance", eval_seed="seed",
        eval_gallery_photos="gallery_photos", eval_strangers="strangers", eval_repeats="repeats",
    )
    options = EvalOptions(
        out=args.out, captions=args.captions, caption_images=args.caption_images, human=args.human,
        faces=list(args.faces), text=list(args.text), speed=args.speed, data=args.data, jobs=args.jobs,
        ray=args.ray, limit=args.limit,
    )
    results, files = run_eval(settings, options, progress=lambda msg: print(msg, file=sys.stderr))
    for line in summary(results):
        print(line)
    for path in files.values():
        print(f"wrote {shown(path)}")
    return 0


def summary(results: dict) -> list[str]:
    """The headline figures, one line per set."""
    lines = []
    if "captions" in results:
        c = results["captions"]
        scores = ", ".join(f"{k} {v:.3f}" for k, v in c["scores"].items() if v is not None)
        lines.append(f"captions {c['name']} ({'human' if c['human'] else c['model']}, {c['photos']} photos): {scores}")
    for f in results.get("faces", []):
        acc, far = f["accuracy"], f["false_accept_rate"]
        lines.append(f"faces {f['name']}: accuracy {_pct(acc)} of {f['known_probes']} probes, false accepts "
                     f"{_pct(far)} of {f['stranger_probes']} strangers' probes at tolerance {f['tolerance']:g}")
    for t in results.get("text", []):
        s = t["summary"]
        extra = f", precision {_pct(s['precision'])}" if s.get("precision") is not None else ""
        extra += f", CER {s['cer']:.3f}" if s.get("cer") is not None else ""
        lines.append(f"text {t['name']}: recall {_pct(s['recall'])} ({s['matched']}/{s['of']}){extra}")
    for row in results.get("speed", {}).get("rows", []):
        if "median" in row:
            versus = f"; {row['versus']}" if row.get("versus") else ""
            lines.append(f"speed {row['case']} {row['mode']}: {row['median']['total']:.0f} ms "
                         f"(AWS, {row.get('cloud_case', row['case'])}: {row['aws_ms']} ms{versus})")
    return lines


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
