"""The ``describe-local`` command line.

Each subcommand lives in its own module here and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning an exit code. Modules must
stay cheap to import: heavy imports go inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from describe_local import __version__
from describe_local.errors import DescribeLocalError

SUBCOMMAND_MODULES = ("describe", "ask", "faces", "models", "languages", "serve")

log = logging.getLogger("describe_local")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="describe-local",
        description=(
            "Describe photos out loud, offline: a caption, the people you know, "
            "and any text in the picture, spoken as an MP3. Nothing leaves this machine."
        ),
        epilog="Settings: describe-local.toml in the project root, or DESCRIBE_LOCAL_* variables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"describe_local.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"describe_local.cli.{name}":
                continue  # a subcommand not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except DescribeLocalError as exc:
        print(f"describe-local: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("describe-local: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
