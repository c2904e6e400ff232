"""``describe-local languages``: which languages can be spoken, with which voices."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from describe_local.cli._common import load_settings

# Shown even when nothing is installed for them, so that the user sees what to pull.
COMMON_LANGUAGES = ("en", "es", "fr", "de", "pt", "it")


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
    from describe_local.translate import Translator, language_name

    settings = load_settings(args, models_dir="models_dir")
    settings.lang = "en"  # listing only: load no translation model
    translator = Translator.load(settings)
    targets = translator.targets("en")
    voices = translator.voices.languages()
    codes = sorted(set(COMMON_LANGUAGES) | set(targets) | set(voices), key=lambda c: (c != "en", c))
    rows = []
    for code in codes:
        route = targets.get(code)
        if code == "en":
            translation = "built in"
        elif route is None:
            translation = f"not installed (describe-local models pull argos-en_{code})"
        elif len(route) == 1:
            translation = f"installed ({route[0].name})"
        else:
            names = ", ".join(p.name for p in route)
            translation = f"installed, through {language_name(route[0].target)} ({names})"
        default = translator.voices.default_for(code)
        rows.append({
            "code": code,
            "name": language_name(code),
            "translation": translation,
            "translation_installed": code == "en" or route is not None,
            "voices": [{"key": v.key, "dialect": v.language, "quality": v.quality,
                        "default": default is not None and v.key == default.key}
                       for v in voices.get(code, [])],
        })
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        usable = row["translation_installed"] and row["voices"]
        print(f"{row['code']:<4} {row['name']:<12} {'ready' if usable else 'falls back to English'}")
        print(f"     translation: {row['translation']}")
        listed = ", ".join(("*" if v["default"] else "") + v["key"] for v in row["voices"])
        print(f"     voices: {listed or 'none installed (describe-local models pull VOICE_KEY)'}")
    return 0
