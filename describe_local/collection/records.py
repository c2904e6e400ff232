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
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from describe_local import reading
from describe_local.errors import CollectionFileError, DescribeLocalError, ImageError, first_line

log = logging.getLogger(__name__)

# ``errors`` keys of a record for a photo that failed as a whole (it has no task fields).
DECODE, DESCRIBE, WORKER, OUTPUT = "decode", "describe", "worker", "output"
FAILURES = frozenset({DECODE, DESCRIBE, WORKER, OUTPUT})
# Failures of the machine rather than the photo: a resumed run tries these photos again.
RETRIED = frozenset({WORKER, OUTPUT})

_CHUNK = 1 << 20
# A line longer than this is no record of ours (one is a few kilobytes): refused on resume.
MAX_RECORD_BYTES = 4 * reading.MB


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
        earlier run is not written over by accident); with it, its records are read back.

        The run holds an advisory lock on the file until :meth:`close`: a second run on the same
        file (fresh or resumed) is refused while the first writes to it."""
        records: list[dict[str, Any]] = []
        handle: IO[bytes] | None = None
        try:
            if path.exists() and not path.is_file():
                raise CollectionFileError(f"{path} is not a file; give a file for --jsonl")
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = _open_locked(path)
            exists = os.fstat(handle.fileno()).st_size > 0
            if exists and not resume:
                raise CollectionFileError(
                    f"{path} already holds records; add --resume to skip the photos in it, "
                    "or give another file (or remove it) to start again")
            if exists:
                records, rewrite = _read_back(path)
                if rewrite:
                    _rewrite(path, records)
                    old, handle = handle, _open_locked(path)  # the new file, locked before the old is let go
                    old.close()
        except OSError as exc:
            if handle is not None:
                handle.close()
            raise CollectionFileError(f"cannot write {path}: {exc.strerror or exc}") from None
        except BaseException:
            if handle is not None:
                handle.close()
            raise
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


def _open_locked(path: Path) -> IO[bytes]:
    """``path`` opened for appending (made if missing) and locked for this run, or
    :class:`CollectionFileError` when another run holds it."""
    while True:
        handle = open(path, "ab")  # noqa: SIM115 - kept open for the run, closed by close()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise CollectionFileError(
                f"another run is writing to {path}; wait for it to finish (then add --resume), "
                "or give another file") from None
        except OSError:  # a file system without locks (some network shares): run unlocked
            log.debug("%s cannot be locked", path, exc_info=True)
            return handle
        try:
            same = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # the run before us replaced the file as we opened it: lock the new one


def _read_back(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The records of an earlier run's file, and whether the file must be rewritten because some
    must go: a torn last line (the run was killed while writing it) and photos to try again
    (:data:`RETRIED`). Read line by line, each at most :data:`MAX_RECORD_BYTES`."""
    kept: list[dict[str, Any]] = []
    dropped, torn = 0, False
    with open(path, "rb") as fh:  # the file this run locked (the same file: see :func:`_open_locked`)
        for number, line in enumerate(reading.bounded_lines(fh, MAX_RECORD_BYTES), 1):
            if len(line) > MAX_RECORD_BYTES:
                raise CollectionFileError(
                    f"{path}, line {number}, is over {reading.size_text(MAX_RECORD_BYTES)}, longer than any record "
                    "of describe-local; give another file")
            if not line.strip():
                continue
            try:
                record = reading.parse_json(line, path, error=CollectionFileError)
                if not isinstance(record, dict) or "path" not in record:
                    raise ValueError("not a record")
            except (ValueError, CollectionFileError):
                if not line.endswith(b"\n"):  # the last line, with no newline after it: torn by a kill
                    log.info("%s: dropping a torn last line", path)
                    dropped, torn = dropped + 1, True
                    continue
                raise CollectionFileError(
                    f"{path}, line {number}, is not a record of describe-local; give another file, "
                    "or remove that line to resume") from None
            torn = not line.endswith(b"\n")
            if failed(record) & RETRIED:
                dropped += 1
                continue
            kept.append(record)
    return kept, bool(dropped or torn)


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
