"""``describe-local languages``: which languages can be spoken, with which voices, and what can be pulled."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from describe_local.cli._choices import (
    NEEDS_NETWORK,
    PIPER_VOICES_URL,
    check_folders,
    installed_voices,
    pullable_voices,
    speech_choices,
)
from describe_local.cli._common import json_text, load_settings, shown


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "languages",
        help="languages a description can be spoken in: translation and voices, installed and to pull",
        description="Each language: whether a translation from English is installed, its installed voices "
        "(* marks the default; choose another with `describe --voice KEY`) and voices that can be pulled "
        "with `describe-local models pull KEY` (needs a network).",
    )
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="the model store (default: models/)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=list_languages)


def list_languages(args: argparse.Namespace) -> int:
    """Print each language with its translation, installed voices and voices to pull; the exit code."""
    settings = load_settings(args, models_dir="models_dir")
    check_folders(args, settings)
    rows = speech_choices(settings)
    installed = installed_voices(rows)
    if args.json:
        print(json_text([{**asdict(row), "pullable_voices": pullable_voices(row.code, installed)} for row in rows],
                        indent=2))
        return 0
    for row in rows:
        print(f"{row.code:<4} {row.name:<12} {'ready' if row.ready else 'falls back to English'}")
        pull = "" if row.translation_installed else f" {NEEDS_NETWORK}"
        print(f"     translation: {row.translation}{pull}")
        listed = ", ".join(("*" if v["default"] else "") + str(v["key"]) for v in row.voices)
        print(f"     voices: {shown(listed) or 'none installed'}")
        pullable = pullable_voices(row.code, installed)
        if pullable:
            print(f"     voices to pull {NEEDS_NETWORK}: {', '.join(pullable)}")
        elif not row.voices:
            print(f"     voices to pull {NEEDS_NETWORK}: any Piper voice key for {row.code} ({PIPER_VOICES_URL})")
    print(f"\nSpeak with a voice: describe-local describe PHOTO --voice KEY. Pull one: describe-local models pull KEY "
          f"{NEEDS_NETWORK}; offline: describe-local models import VOICE.onnx (its .onnx.json beside it).")
    return 0
