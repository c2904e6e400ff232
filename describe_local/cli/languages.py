"""``describe-local languages``: which languages can be spoken, with which voices."""

from __future__ import annotations

import argparse
from pathlib import Path

from describe_local.cli._common import json_text, load_settings, shown


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "languages",
        help="languages a description can be spoken in: translation and voices installed",
        description="Each language: whether a translation from English is installed, and its voices "
        "(* marks the default; choose another with `describe --voice KEY`).",
    )
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="the model store (default: models/)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=list_languages)


def list_languages(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from describe_local.pipeline import Describer

    settings = load_settings(args, models_dir="models_dir")
    settings.lang = "en"  # listing only: load no translation model
    with Describer.load(settings, stages=(), speech=False) as describer:
        rows = describer.languages(all_common=True)
    if args.json:
        print(json_text([asdict(row) for row in rows], indent=2))
        return 0
    for row in rows:
        print(f"{row.code:<4} {row.name:<12} {'ready' if row.ready else 'falls back to English'}")
        print(f"     translation: {row.translation}")
        listed = ", ".join(("*" if v["default"] else "") + str(v["key"]) for v in row.voices)
        print(f"     voices: {shown(listed) or 'none installed (describe-local models pull VOICE_KEY)'}")
    return 0
