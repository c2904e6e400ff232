"""The gallery's cache of face encodings: ``.encodings.json`` in the gallery folder.

Entries are keyed by the photo's path relative to the gallery and hold its
size, mtime and ctime; when those differ the file's SHA-256 decides whether it
really changed. A cache written with other encoding parameters, by another
version, or that cannot be read is ignored (and rebuilt by the gallery).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE_NAME = ".encodings.json"
CACHE_VERSION = 1


@dataclass(frozen=True)
class EncodingCache:
    """The cache file of one gallery folder, for one set of encoding parameters."""

    folder: Path
    params: dict[str, Any]  # what the encodings depend on; a cache made with other values is stale

    @property
    def path(self) -> Path:
        return self.folder / CACHE_NAME

    def read(self) -> dict[str, dict[str, Any]]:
        """The cached entries, or ``{}`` when the cache is missing, unreadable or made otherwise."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("face cache %s unreadable (%s); rebuilding it", self.path, exc)
            return {}
        if (
            not isinstance(data, dict)
            or data.get("version") != CACHE_VERSION
            or data.get("params") != self.params
            or not isinstance(data.get("photos"), dict)
        ):
            log.info("face cache %s is from another version or settings; rebuilding it", self.path)
            return {}
        return {k: v for k, v in data["photos"].items() if valid_entry(v)}

    def write(self, entries: dict[str, dict[str, Any]]) -> None:
        if not self.folder.is_dir():
            return
        data = {"version": CACHE_VERSION, "params": self.params, "photos": entries}
        try:
            # Not mkstemp: its 0600 mode would hide the cache from other users of the gallery.
            tmp = self.folder / f".encodings-{os.getpid()}-{secrets.token_hex(4)}.tmp"
            try:
                with tmp.open("x", encoding="utf-8") as fh:
                    # ASCII: a folder or file name that is not UTF-8 (a lone surrogate in
                    # Python) is written as a \udcXX escape instead of failing the write.
                    json.dump(data, fh, ensure_ascii=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:  # e.g. a read-only gallery: work on, just slower next time
            log.warning("cannot write the face cache %s: %s", self.path, exc)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the gallery for a read-change-write of the cache and its photos.

        Other processes (and threads) that ask wait until it is let go, so that
        two ``faces add`` at once do not write over each other's cache entries.
        An advisory ``flock`` on the gallery folder itself: no lock file is left
        behind, and the lock goes with the process if it is killed. Where there
        is no ``flock`` (or the folder cannot be opened) it holds nothing.
        """
        try:
            import fcntl
        except ImportError:  # not a POSIX system
            yield
            return
        try:
            fd = os.open(self.folder, os.O_RDONLY)
        except OSError:
            yield
            return
        try:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing lets go of the lock


def valid_entry(entry: Any) -> bool:
    """Whether a cache entry is well formed (a face count, and a finite 128-number encoding for one face)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("faces"), int):
        return False
    encoding = entry.get("encoding")
    if encoding is None:
        return entry["faces"] != 1 or bool(entry.get("error"))
    return (
        isinstance(encoding, list)
        and len(encoding) == 128
        and all(isinstance(v, float) and np.isfinite(v) for v in encoding)
    )


def stat_key(path: Path) -> dict[str, int]:
    """What a file's cache entry is checked against first: its size and times."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns}


def sha256(path: Path) -> str | None:
    """The file's SHA-256 as hex, or ``None`` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
