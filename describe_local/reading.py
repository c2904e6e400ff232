"""Reading files that a user or another program supplies: size-bounded, and JSON that cannot
exhaust the stack.

Every such file (an evaluation set's manifest or ground truth, a collection's JSON-lines
output read back on ``--resume``) is read through :func:`read_bounded`, which refuses a file
over its limit from its size before reading a byte (a sparse file of gigabytes costs nothing),
and reads at most the limit even when the file grows meanwhile. :func:`parse_json` turns
nesting deeper than :data:`MAX_JSON_DEPTH` into the caller's one-line error instead of a
``RecursionError``. Errors are raised as the caller's own class (``error``), so that each front
end keeps its message and exit code.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from describe_local.errors import DescribeLocalError

# JSON nested deeper than this is refused: no file the tool reads nests more than a few levels.
MAX_JSON_DEPTH = 64
MB = 1_000_000


def size_text(n_bytes: int) -> str:
    """'1.5 GB', '200 MB', '65.5 KB': a size for a message, to three figures."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n_bytes >= size:
            value = n_bytes / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    return f"{n_bytes} bytes"


def too_big(path: Path | str, size: int, limit: int, error: type[DescribeLocalError], what: str) -> DescribeLocalError:
    return error(f"{path}: {size_text(size)} is too big for {what} (the limit is {size_text(limit)}); "
                 "check that this is the file you meant")


def read_bounded(path: Path, limit: int, *, error: type[DescribeLocalError], what: str = "this file") -> bytes:
    """The bytes of ``path``, refused with ``error`` when it is over ``limit`` bytes (from its size,
    before reading) or is not a regular file. ``what`` names the file in the message ("a manifest")."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: a FIFO would block the open
            raise error(f"{path} is not a regular file; give {what} as a file")
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if info.st_size > limit:
                raise too_big(path, info.st_size, limit, error, what)
            data = fh.read(limit + 1)  # a file that grew meanwhile is still cut at the limit
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise too_big(path, len(data), limit, error, what)
    return data


def bounded_lines(fh: IO[bytes], line_limit: int) -> Iterator[bytes]:
    """The lines of a binary file (each with its newline, the last maybe without), never holding
    more than ``line_limit`` bytes of one line: a longer line is yielded cut at ``line_limit + 1``
    bytes, so the caller can tell (``len(line) > line_limit``) and refuse it."""
    while line := fh.readline(line_limit + 1):
        if len(line) > line_limit and not line.endswith(b"\n"):
            yield line
            return  # the rest of an over-long line is not read
        yield line


def parse_json(data: bytes | str, source: Path | str, *, error: type[DescribeLocalError],
               what: str = "a JSON file", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``data`` (UTF-8, a BOM allowed), or ``error`` saying in one line why not:
    not UTF-8, not JSON, or nested deeper than ``max_depth``."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(source, max_depth, error) from None
    except UnicodeDecodeError:
        raise error(f"{source}: not {what} (not UTF-8 text)") from None
    except ValueError as exc:
        raise error(f"{source}: not {what} ({exc})") from None
    if json_depth(value, max_depth) > max_depth:
        raise _too_deep(source, max_depth, error)
    return value


def json_depth(value: Any, stop_after: int = MAX_JSON_DEPTH) -> int:
    """How deep ``value`` nests lists and objects (a scalar is 0), counted without recursion and
    no further than ``stop_after + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_after:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def read_json(path: Path, limit: int, *, error: type[DescribeLocalError], what: str = "a JSON file") -> Any:
    """:func:`read_bounded` then :func:`parse_json`."""
    return parse_json(read_bounded(path, limit, error=error, what=what), path, error=error, what=what)


def _too_deep(source: Path | str, max_depth: int, error: type[DescribeLocalError]) -> DescribeLocalError:
    return error(f"{source}: JSON nested more than {max_depth} levels deep; this is not a file the tool wrote "
                 "or reads, give the right file")

