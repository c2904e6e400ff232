"""Records of a collection run: content hashes, failure records, and the JSON-lines output file.

The output file holds one JSON object per line, keyed by the photo's content hash
(``sha256``) and ``path``. Each line is written whole and flushed as its photo finishes,
so a run stopped at any moment (Ctrl-C, a kill, a lost machine) keeps every photo it
finished; at worst its last line is torn, and resuming drops that line and does the
photo again. Resuming skips every photo already in the file with the same hash and
path, except those that failed for a reason outside the photo (:data:`RETRIED`),
which are done again; their old lines are dropped first so no photo appears twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from describe_local.errors import CollectionFileError, DescribeLocalError, ImageError, first_line

log = logging.getLogger(__name__)

# ``errors`` keys of a record for a photo that failed as a whole (it has no task fields).
DECODE, DESCRIBE, WORKER, OUTPUT = "decode", "describe", "worker", "output"
FAILURES = frozenset({DECODE, DESCRIBE, WORKER, OUTPUT})
# Failures of the machine rather than the photo: a resumed run tries these photos again.
RETRIED = frozenset({WORKER, OUTPUT})

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str | None:
    """The hex SHA-256 of the file at ``path``, read in chunks; ``None`` if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def failure_record(path: str, sha256: str | None, exc: BaseException | str, key: str | None = None) -> dict[str, Any]:
    """The record of a photo that failed as a whole: ``errors`` says what could not be done."""
    if key is None:
        key = DECODE if isinstance(exc, ImageError) else DESCRIBE
    message = exc if isinstance(exc, str) else (str(exc).strip() or type(exc).__name__)
    if not isinstance(exc, str | DescribeLocalError):  # a bug's first line is enough; the log has the rest
        message = f"{type(exc).__name__}: {first_line(exc)}"
    return {"path": path, "sha256": sha256, "errors": {key: message}}


def failed(record: dict[str, Any]) -> set[str]:
    """The whole-photo failures in ``record`` (keys of :data:`FAILURES`), empty when it was done."""
    errors = record.get("errors") or {}
    return set(errors) & FAILURES if isinstance(errors, dict) else set()


def record_line(record: dict[str, Any]) -> bytes:
    """``record`` as one line of UTF-8 JSON. A path holding bytes of a name that is not UTF-8
    (lone surrogates) makes the line ASCII with ``\\udcXX`` escapes, which read back exactly."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = json.dumps(record, ensure_ascii=True).encode("ascii")
    return data + b"\n"


class RecordFile:
    """The JSON-lines output file of a run: appended to, one flushed line per photo."""

    def __init__(self, path: Path, records: list[dict[str, Any]], handle: IO[bytes]) -> None:
        self.path = path
        self._handle = handle
        # path -> the records of that path kept from earlier runs (usually one)
        self._done: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            self._done.setdefault(str(record.get("path")), []).append(record)

    @classmethod
    def open(cls, path: Path, *, resume: bool) -> RecordFile:
        """Open ``path`` for a run. Without ``resume`` it must be new or empty (a file of an
        earlier run is not written over by accident); with it, its records are read back."""
        records: list[dict[str, Any]] = []
        try:
            exists = path.is_file() and path.stat().st_size > 0
            if exists and not resume:
                raise CollectionFileError(
                    f"{path} already holds records; add --resume to skip the photos in it, "
                    "or give another file (or remove it) to start again")
            if exists:
                records = _read_back(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "ab")  # noqa: SIM115 - kept open for the run, closed by close()
        except OSError as exc:
            raise CollectionFileError(f"cannot write {path}: {exc.strerror or exc}") from None
        return cls(path, records, handle)

    def done(self, path: str, sha256: str | None) -> dict[str, Any] | None:
        """The record kept for the photo at ``path`` with content ``sha256``, if there is one."""
        for record in self._done.get(path, ()):
            if record.get("sha256") == sha256:
                return record
        return None

    def paths_done(self) -> set[str]:
        return set(self._done)

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line and flush it (to the OS: a killed process loses nothing)."""
        try:
            self._handle.write(record_line(record))
            self._handle.flush()
        except OSError as exc:
            raise CollectionFileError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()


def _read_back(path: Path) -> list[dict[str, Any]]:
    """The records of an earlier run's file, rewriting the file when some must go: a torn
    last line (the run was killed while writing it) and photos to try again (:data:`RETRIED`)."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    kept: list[dict[str, Any]] = []
    dropped = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "path" not in record:
                raise ValueError("not a record")
        except ValueError:
            if number == len(lines):  # the last line, with no newline after it: torn by a kill
                log.info("%s: dropping a torn last line", path)
                dropped += 1
                continue
            raise CollectionFileError(
                f"{path}, line {number}, is not a record of describe-local; give another file, "
                "or remove that line to resume") from None
        if failed(record) & RETRIED:
            dropped += 1
            continue
        kept.append(record)
    if dropped or (raw and not raw.endswith(b"\n")):
        _rewrite(path, kept)
    return kept


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace ``path`` with ``records``, whole or not at all (a kill now leaves the old file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            for record in records:
                fh.write(record_line(record))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
