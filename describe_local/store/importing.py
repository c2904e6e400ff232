"""Bring a model into the store by hand: a folder, an archive, an Argos package, a Piper voice.

This is how an air-gapped kiosk gets its models: someone copies them to a USB
stick on a machine with a network and runs ``describe-local models import``.
Whatever comes in is checked (is it a model we can use? do its files match the
manifest it carries?) before it goes live.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from describe_local.store import formats
from describe_local.store.archives import extract_tar, extract_zip
from describe_local.store.kinds import NotAModel, identify
from describe_local.store.local import InstalledModel, ModelStore
from describe_local.store.manifest import MANIFEST_NAME, Manifest, ManifestError, checksum_folder, sha256_file

log = logging.getLogger(__name__)

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip", ".argosmodel")
_JUNK = {"__MACOSX", ".DS_Store"}


def import_model(
    store: ModelStore,
    path: Path,
    *,
    name: str | None = None,
    replace: bool = False,
    source: str | None = None,
) -> InstalledModel:
    """Check the model at ``path`` and install it in ``store``.

    ``path`` is a model folder, a ``.zip``/``.tar.*`` archive of one, an Argos
    ``.argosmodel`` file, or a Piper voice's ``.onnx`` (its ``.onnx.json``
    must be beside it). A manifest that comes with the model is checked
    against the files. Raises :class:`NotAModel` or :class:`ManifestError`.

    The model is assembled in a scratch folder of this attempt's own inside the
    store (so that going live is one rename), which is removed whatever happens:
    an error, Ctrl-C, or SIGTERM (the CLI turns it into Ctrl-C). What a run
    killed outright leaves behind, the next :meth:`ModelStore.open` removes.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise NotAModel(f"{path} does not exist")
    staged = store.scratch()
    try:
        unpacked = staged / "model"
        _unpack(path, unpacked)
        root = _model_root(unpacked)
        found = identify(root)
        carried = _carried_manifest(root)
        _check_onnx_graphs(root)
        default = found.name
        if found.kind == "caption":  # named after the folder it came in, not our scratch copy
            default = root.name if root != unpacked else _stem(path)
        manifest = Manifest(
            name=name or (carried.name if carried else default),
            kind=found.kind,
            source=source or (carried.source if carried else f"import:{path.resolve()}"),
            licence=(carried.licence if carried and carried.licence else found.licence),
            files=checksum_folder(root),
            details={**(carried.details if carried else {}), **found.details},
        )
        return store.add(root, manifest, replace=replace)
    finally:
        store.discard(staged)


def _stem(path: Path) -> str:
    """"ofa-tiny" from "ofa-tiny", "ofa-tiny.zip" or "ofa-tiny.tar.gz"."""
    name = path.name
    for suffix in (*TAR_SUFFIXES, *ZIP_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _unpack(path: Path, dest: Path) -> None:
    """Copy or extract what ``path`` holds into the new folder ``dest``."""
    lower = path.name.lower()
    if path.is_dir():
        shutil.copytree(path, dest)
    elif lower.endswith(ZIP_SUFFIXES):
        extract_zip(path, dest)
    elif lower.endswith(TAR_SUFFIXES):
        extract_tar(path, dest)
    elif lower.endswith((".onnx", ".onnx.json")):
        onnx = path if lower.endswith(".onnx") else path.with_name(path.name.removesuffix(".json"))
        config = onnx.with_name(onnx.name + ".json")
        for needed in (onnx, config):
            if not needed.is_file():
                raise NotAModel(f"a Piper voice needs {onnx.name} and {config.name} side by side; {needed} is missing")
        dest.mkdir()
        for part in (onnx, config, onnx.parent / "MODEL_CARD"):
            if part.is_file():
                shutil.copy2(part, dest / part.name)
    else:
        raise NotAModel(
            f"{path.name}: expected a model folder, a .zip or .tar archive, an .argosmodel file, "
            "or a Piper voice .onnx"
        )


def _model_root(folder: Path) -> Path:
    """The folder that holds the model: archives often wrap it in one top-level folder."""
    while True:
        entries = [p for p in folder.iterdir() if p.name not in _JUNK]
        if len(entries) == 1 and entries[0].is_dir():
            folder = entries[0]
        else:
            return folder


def _check_onnx_graphs(root: Path) -> None:
    """An OFA folder's ONNX graphs (converted elsewhere) must match the sha256 their manifest lists."""
    onnx = formats.ofa_onnx_manifest(root)
    if onnx is None:
        return
    bad = [rel for rel, digest in sorted(onnx["files"].items())
           if not (root / rel).is_file() or sha256_file(root / rel) != str(digest).lower()]
    if bad:
        raise ManifestError(f"{root.name}: the ONNX graphs do not match their manifest ({', '.join(bad[:3])}); "
                            "copy the model again, or delete its onnx/ folder and convert it here")


def _carried_manifest(root: Path) -> Manifest | None:
    """The manifest that came with the model, checked against its files."""
    if not (root / MANIFEST_NAME).is_file():
        return None
    carried = Manifest.read(root)
    problems = carried.verify(root)
    if problems:
        raise ManifestError(
            f"{carried.name}: the files do not match the manifest that came with them "
            f"({'; '.join(problems[:3])}); copy the model again"
        )
    return carried
