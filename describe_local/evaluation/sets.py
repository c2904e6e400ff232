"""Finding an evaluation set's files: manifests, the files they name, photos in folders.

The shared data's manifests name files as they were in their source repository
(``images/phototest.tif``) while the files sit beside the manifest
(``ocr/pages/phototest.tif``, next to ``ocr/pages.manifest.json``), so a named
file is looked for in a few places rather than at one path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from describe_local import reading
from describe_local.errors import EvalDataError
from describe_local.images import is_image_path

# The largest manifest eval reads (COCO's captions_train2017.json is 92 MB), and the largest
# ground-truth file (a page's text, an ICDAR word list): both checked before reading.
MAX_MANIFEST_BYTES = 200 * reading.MB
MAX_TRUTH_BYTES = 16 * reading.MB


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or :class:`EvalDataError` saying why it cannot be read (no such file,
    over :data:`MAX_MANIFEST_BYTES`, not JSON, nested too deep)."""
    return reading.read_json(Path(path), MAX_MANIFEST_BYTES, error=EvalDataError, what="a JSON file eval can read")


def read_truth(path: Path) -> bytes:
    """The bytes of a ground-truth file, or :class:`EvalDataError` (over :data:`MAX_TRUTH_BYTES`)."""
    return reading.read_bounded(Path(path), MAX_TRUTH_BYTES, error=EvalDataError, what="a ground-truth file")


def manifest_stem(manifest: Path) -> str:
    """``pages`` for ``pages.manifest.json``, ``captions_val2017`` for ``captions_val2017.json``."""
    name = manifest.name
    for ending in (".manifest.json", ".json"):
        if name.endswith(ending):
            return name[: -len(ending)]
    return manifest.stem


def item_file(manifest: Path, name: str, *folders: Path) -> Path:
    """The file a manifest names: as written (from the manifest's folder), or by its bare name in the
    manifest's folder, in the folder named after the manifest (``pages/`` for ``pages.manifest.json``)
    or in ``folders``."""
    base = manifest.parent
    bare = Path(name).name
    candidates = [base / name, base / bare, base / manifest_stem(manifest) / bare]
    candidates += [folder / name for folder in folders] + [folder / bare for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise EvalDataError(f"{manifest}: names {name!r}, which is not beside it nor in {base / manifest_stem(manifest)}")


def find_manifest(folder: Path, *names: str) -> Path | None:
    """A manifest for the set in ``folder``: one of ``names`` inside it, a lone ``*.manifest.json``
    inside it, or ``FOLDER.manifest.json`` beside it (``faces/photos.manifest.json`` for ``faces/photos``)."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    inside = sorted(folder.glob("*.manifest.json"))
    if len(inside) == 1:
        return inside[0]
    beside = folder.parent / f"{folder.name}.manifest.json"
    return beside if beside.is_file() else None


def photos_in(folder: Path) -> list[Path]:
    """The photos directly in ``folder``, by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))


def first(items: list[Any], limit: int | None) -> list[Any]:
    """The first ``limit`` items (all when ``limit`` is None)."""
    return items if limit is None else items[: max(0, limit)]
