"""Helpers shared by the subcommands: settings from arguments, progress on a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from describe_local.settings import Settings


def add_gallery_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gallery",
        type=Path,
        metavar="DIR",
        help="known-faces folder, one subfolder per person (default: known_faces/; "
        "env DESCRIBE_LOCAL_KNOWN_FACES)",
    )


def load_settings(args: argparse.Namespace, **mapping: str) -> Settings:
    """Settings with the command-line values in ``mapping`` (setting name -> argument name) applied."""
    overrides = {setting: getattr(args, arg, None) for setting, arg in mapping.items()}
    return Settings.load(**overrides)


def progress_printer() -> Callable[[str], None]:
    """Prints loading progress to stderr on a terminal; silent when piped."""
    if not sys.stderr.isatty():
        return lambda _msg: None

    def say(message: str) -> None:
        print(f"… {message}", file=sys.stderr, flush=True)

    return say
