"""The ``describe-local`` command line.

Each subcommand lives in its own module here and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning an exit code. Modules must
stay cheap to import: heavy imports go inside the command functions.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from describe_local import __version__
from describe_local.errors import DescribeLocalError

SUBCOMMAND_MODULES = (
    "describe", "read", "ask", "alt_text", "faces", "models", "convert", "languages", "serve", "video", "eval",
)

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
    parser.add_argument("--debug", action="store_const", const=2, dest="verbose",
                        help="debug logging, with the tracebacks of stages that fail (same as -vv)")
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
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        # Ctrl-C at any moment, the subcommands' imports and the clean-up included: one line.
        # The children (face detection, --jobs workers) are in their own process group and quiet.
        _print_error("Stopped.")
        return 130


def _run(argv: Sequence[str] | None) -> int:
    from describe_local.cli._common import shown

    _never_fail_to_print()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        # The server handles its own signals; every other command cleans up on the way out.
        with contextlib.nullcontext() if args.command == "serve" else _terminate_as_interrupt():
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # here, so that a reader who left is noticed now, not at exit
            return code
    except BrokenPipeError:
        return _reader_left()
    except DescribeLocalError as exc:
        if _interrupted(exc):
            raise KeyboardInterrupt from None
        _print_error(f"describe-local: error: {shown(exc)}")
        return exc.exit_code


def _interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C is what ``exc`` reports. An extension module interrupted while it loads
    (ONNX Runtime's or OpenCV's) fails with an ImportError caused by the KeyboardInterrupt
    (pybind11's "initialization failed"), which a stage then reports as a model it cannot load."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _reader_left() -> int:
    """End quietly when the program reading our output stopped (``describe-local languages | head``).

    stdout is pointed at /dev/null first, so that Python's last flush of what is still buffered
    does not fail again at exit. The exit code is the shell's for a command killed by SIGPIPE.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 128 + 13  # SIGPIPE (signal.SIGPIPE does not exist on Windows)


def _print_error(line: str) -> None:
    """Print ``line`` on stderr, unless stderr itself is gone."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _never_fail_to_print() -> None:
    """Let stdout and stderr escape what they cannot encode rather than raise.

    Names are escaped before they are printed (``_common.shown``); this is the
    backstop for anything else, e.g. a log line quoting a name that is not UTF-8.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(errors="backslashreplace")


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a command runs, so that its ``finally`` blocks
    (scratch folders, temporary files) run when it is stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
