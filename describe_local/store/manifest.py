"""The manifest each model folder carries: what it is, where it came from, and checksums.

A model folder in the store holds ``describe-local.json``::

    {"name": "ofa-tiny", "kind": "caption", "source": "https://…", "licence": "Apache-2.0",
     "files": {"config.json": "<sha256>", …}, "details": {…}, "installed_at": "…"}

``files`` lists the sha256 of every file in the folder except the manifest,
so that a copy brought on a USB stick can be checked before it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import ManifestError
from describe_local.store.formats import DERIVED_DIRS

MANIFEST_NAME = "describe-local.json"
KINDS = ("caption", "translation", "voice")
_CHUNK = 1 << 20


@dataclass
class Manifest:
    """What one model folder holds."""

    name: str
    kind: str  # one of KINDS
    source: str  # a URL, or "import:<path>" for a model brought by hand
    licence: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    details: dict[str, Any] = field(default_factory=dict)  # e.g. {"from": "en", "to": "es"}
    installed_at: str = ""

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest in ``folder``; raises :class:`ManifestError` when it is missing or bad."""
        path = folder / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                source=str(data.get("source", "")),
                licence=str(data.get("licence", "")),
                files={str(k): str(v) for k, v in data.get("files", {}).items()},
                details=dict(data.get("details", {})),
                installed_at=str(data.get("installed_at", "")),
            )
        except FileNotFoundError:
            raise ManifestError(f"{folder} has no {MANIFEST_NAME}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{path} is not a valid manifest ({exc})") from None

    def write(self, folder: Path) -> None:
        """Write the manifest into ``folder``."""
        if not self.installed_at:
            self.installed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = json.dumps(asdict(self), indent=2, ensure_ascii=False, sort_keys=False)
        (folder / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")

    def verify(self, folder: Path) -> list[str]:
        """Files of ``folder`` that are missing or differ from the manifest (empty: all good)."""
        problems = []
        for rel, expected in sorted(self.files.items()):
            path = folder / rel
            if not path.is_file():
                problems.append(f"{rel} is missing")
            elif sha256_file(path) != expected.lower():
                problems.append(f"{rel} has the wrong sha256")
        return problems


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_folder(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path; not the manifest itself, nor files a
    runtime derives and rewrites on its own (:data:`formats.DERIVED_DIRS`)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST_NAME and not rel.startswith(tuple(f"{d}/" for d in DERIVED_DIRS)):
            found[rel] = sha256_file(path)
    return found


def refresh_checksums(folder: Path, under: str) -> Manifest | None:
    """Record in ``folder``'s manifest the sha256 of the files now in its subfolder ``under`` (written
    after install, e.g. ONNX graphs), forgetting what was there before; other entries stay as they
    were checked. ``None``, and nothing written, when the folder has no readable manifest."""
    try:
        manifest = Manifest.read(folder)
    except ManifestError:
        return None
    inside = f"{under}/"
    kept = {rel: digest for rel, digest in manifest.files.items() if not rel.startswith(inside)}
    fresh = {rel: digest for rel, digest in checksum_folder(folder).items() if rel.startswith(inside)}
    manifest.files = dict(sorted({**kept, **fresh}.items()))
    manifest.write(folder)
    return manifest


def folder_size(folder: Path) -> int:
    """Bytes used by the files under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
