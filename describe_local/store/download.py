"""HTTP downloads for the model store: fail fast when offline, resume, verify.

Plain ``urllib``: a model hub is a handful of GET requests. Every request has
a timeout, and the host name is resolved in a helper thread with the same
deadline, because ``getaddrinfo`` itself has none. A file is written to
``<name>.part`` first; a later run asks for the rest with an HTTP Range
request, and the file only gets its real name once its checksum matches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from describe_local import __version__
from describe_local.errors import DownloadError, OfflineError, first_line

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # (file, bytes so far, total or None)

_CHUNK = 1 << 16
OFFLINE_HINT = (
    "pull needs a network; on an offline machine copy the model over and run "
    "`describe-local models import PATH`"
)


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch, and what it must hash to (any checksum the hub publishes)."""

    url: str
    path: str  # where it goes, relative to the model folder
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    git_sha1: str | None = None  # git blob id, which hubs report for small non-LFS files


def fetch_json(url: str, *, timeout: float) -> Any:
    """GET ``url`` and parse it as JSON. Raises :class:`OfflineError` or :class:`DownloadError`."""
    try:
        with _open(url, timeout=timeout) as response:
            body = _read_all(response, url, timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{_short(url)}: HTTP {exc.code} {exc.reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise DownloadError(f"{_short(url)} did not answer with JSON") from None


def download(
    remote: RemoteFile, dest: Path, *, timeout: float, progress: Progress | None = None
) -> Path:
    """Fetch ``remote`` to ``dest``, resuming a ``dest.part`` left by an earlier try.

    The finished file is checked against every checksum ``remote`` carries and
    only then renamed to ``dest``; a file that does not match is deleted and
    :class:`DownloadError` raised.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        have = 0
    if not (remote.size is not None and have == remote.size):
        _fetch_into(remote, part, have, timeout, progress)
    problem = _check(part, remote)
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{remote.path}: {problem}; the download was deleted, try again")
    part.replace(dest)
    return dest


def _fetch_into(
    remote: RemoteFile, part: Path, have: int, timeout: float, progress: Progress | None
) -> None:
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = _open(remote.url, timeout=timeout, headers=headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the .part is already whole
            return
        raise DownloadError(f"{remote.path}: HTTP {exc.code} {exc.reason} from {_short(remote.url)}") from None
    with response:
        start = _range_start(response) if response.status == 206 else 0
        if start != have:
            log.info("%s: server sent the whole file, starting again", remote.path)
            have = 0
        elif have:
            log.info("%s: resuming at byte %d", remote.path, have)
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else remote.size
        done = have
        with part.open("ab" if have else "wb") as fh:
            while True:
                chunk = _read(response, remote.url, timeout)
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if progress:
                    progress(remote.path, done, total)
    if total is not None and done < total:
        raise OfflineError(
            f"{remote.path}: the connection closed after {done} of {total} bytes; "
            "run the same command again to resume"
        )


def _check(path: Path, remote: RemoteFile) -> str | None:
    """What is wrong with the downloaded file, or ``None``."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, expected {remote.size}"
    hashes = {
        "sha256": (hashlib.sha256(), remote.sha256),
        "md5": (hashlib.md5(usedforsecurity=False), remote.md5),
        "git blob id": (hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False), remote.git_sha1),
    }
    wanted = {k: v for k, v in hashes.items() if v[1]}
    if not wanted:
        return None
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            for digest, _ in wanted.values():
                digest.update(chunk)
    for label, (digest, expected) in wanted.items():
        if digest.hexdigest() != str(expected).lower():
            return f"{label} does not match"
    return None


def _range_start(response: Any) -> int:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else 0


def _open(url: str, *, timeout: float, headers: dict[str, str] | None = None) -> Any:
    """Open ``url`` or raise :class:`OfflineError` within about ``timeout`` seconds."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"not an http(s) URL: {url}")
    proxy = urllib.request.getproxies().get(parts.scheme)
    target = urlsplit(proxy) if proxy and not urllib.request.proxy_bypass(parts.hostname) else parts
    _resolve(target.hostname or parts.hostname, target.port or (443 if target.scheme == "https" else 80), timeout)
    request = urllib.request.Request(
        url, headers={"User-Agent": f"describe-local/{__version__}", **(headers or {})}
    )
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(f"cannot reach {parts.hostname} ({_reason(reason)}): {OFFLINE_HINT}") from None


def _resolve(host: str, port: int, timeout: float) -> None:
    """Look ``host`` up with a deadline: a resolver with no network can block for a long time."""
    outcome: dict[str, BaseException] = {}

    def look_up() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=look_up, name="resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise OfflineError(f"cannot resolve {host} within {timeout:g} s (no network?): {OFFLINE_HINT}")
    if "error" in outcome:
        raise OfflineError(f"cannot resolve {host} (no network or DNS): {OFFLINE_HINT}")


def _read(response: Any, url: str, timeout: float) -> bytes:
    try:
        return response.read(_CHUNK)
    except (TimeoutError, OSError) as exc:
        raise OfflineError(
            f"{_short(url)} stopped sending data ({_reason(exc)}); "
            "run the same command again to resume"
        ) from None


def _read_all(response: Any, url: str, timeout: float) -> bytes:
    chunks = []
    while chunk := _read(response, url, timeout):
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return first_line(exc)


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}{parts.path}"
