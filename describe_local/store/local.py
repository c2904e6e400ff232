"""The model store on disk: one folder per model under ``models/``.

Folders appear whole or not at all: a model is assembled in a scratch folder
inside the store (same file system) and renamed into place. Names that start
with a dot (scratch space, partial downloads) are not models.

Scratch folders are ``.tmp/KIND-PID-RANDOM`` (``import-4242-k3j2h1``): unique
to each attempt, removed by the attempt when it fails or is interrupted, and,
when its process was killed and could not, by the next :meth:`ModelStore.open`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from describe_local.errors import ModelNotInstalled, StoreError
from describe_local.store.manifest import Manifest, ManifestError

log = logging.getLogger(__name__)

SCRATCH = ".tmp"
DOWNLOADS = ".downloads"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_SCRATCH_NAME = re.compile(r"^[a-z]+-(\d+)-[A-Za-z0-9_]+$")  # KIND-PID-RANDOM, as scratch() makes them
# A scratch folder of a live process is left alone unless nothing in it changed for this long:
# then its process id has been reused, or it lives on another machine sharing the store.
STALE_AFTER_S = 30 * 60


@dataclass(frozen=True)
class InstalledModel:
    """A folder in the store and what it holds."""

    name: str
    path: Path
    kind: str | None  # None: neither a manifest nor its files say what it is
    manifest: Manifest | None


@dataclass(frozen=True)
class ModelStore:
    """The ``models/`` folder."""

    root: Path

    @classmethod
    def open(cls, root: Path) -> ModelStore:
        """The store at ``root`` (created when missing), with scratch left by killed runs removed."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root)
        store.clean_scratch()
        return store

    def installed(self, kind: str | None = None) -> list[InstalledModel]:
        """Installed models, by name; only those of ``kind`` when given."""
        from describe_local.store.kinds import guess_kind

        found = []
        for path in sorted(self.root.iterdir()):
            if not path.is_dir() or path.name.startswith("."):
                continue
            try:
                manifest: Manifest | None = Manifest.read(path)
            except ManifestError:
                manifest = None
            model_kind = manifest.kind if manifest else guess_kind(path)
            if kind is None or model_kind == kind:
                found.append(InstalledModel(path.name, path, model_kind, manifest))
        return found

    def find(self, name: str) -> InstalledModel | None:
        """The installed model called ``name``, or ``None``."""
        return next((m for m in self.installed() if m.name == name), None)

    def scratch(self, prefix: str = "import-") -> Path:
        """A new empty folder inside the store, for assembling a model before it goes live.

        Its name carries this process's id, so that :meth:`clean_scratch` can tell
        a folder in use from one that a killed run left behind.
        """
        base = self.root / SCRATCH
        prefix = f"{prefix}{os.getpid()}-"
        for _ in range(2):
            base.mkdir(exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # another process removed the empty area meanwhile
                return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        base.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def clean_scratch(self) -> list[Path]:
        """Remove the scratch folders of runs that were killed; returns what was removed.

        Only folders named as :meth:`scratch` names them, and only when their
        process is gone, or nothing in them has changed for :data:`STALE_AFTER_S`.
        """
        base = self.root / SCRATCH
        try:
            entries = list(base.iterdir())
        except OSError:
            return []
        removed = []
        for path in entries:
            match = _SCRATCH_NAME.match(path.name)
            if not match or not path.is_dir() or path.is_symlink():
                continue
            if _process_alive(int(match.group(1))) and time.time() - _last_change(path) < STALE_AFTER_S:
                continue
            log.info("removing scratch left by an interrupted run: %s", path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        with contextlib.suppress(OSError):
            base.rmdir()  # only when empty
        return removed

    def downloads(self, name: str) -> Path:
        """Where partial downloads of ``name`` are kept between tries."""
        path = self.root / DOWNLOADS / check_name(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, staged: Path, manifest: Manifest, *, replace: bool = False) -> InstalledModel:
        """Move the assembled folder ``staged`` into place as ``manifest.name``."""
        name = check_name(manifest.name)
        manifest.write(staged)
        target = self.root / name
        if target.exists():
            if not replace:
                raise StoreError(
                    f"a model called {name!r} is already installed; "
                    f"remove it first (describe-local models remove {name}) or pass --replace"
                )
            retired = self.scratch("old-")
            target.rename(retired / name)
            try:
                staged.rename(target)
            except BaseException:
                (retired / name).rename(target)  # put the old one back rather than lose both
                raise
            self.discard(retired)
            log.info("replaced %s (%s) in %s", name, manifest.kind, target)
            return InstalledModel(name, target, manifest.kind, manifest)
        staged.rename(target)
        log.info("installed %s (%s) in %s", name, manifest.kind, target)
        return InstalledModel(name, target, manifest.kind, manifest)

    def remove(self, name: str) -> InstalledModel:
        """Delete the model ``name`` from the store."""
        model = self.find(check_name(name))
        if model is None:
            raise ModelNotInstalled(f"no model called {name!r} in {self.root} (see describe-local models list)")
        # Rename first so that a half-deleted folder is never mistaken for a model.
        retired = self.scratch("remove-")
        model.path.rename(retired / model.name)
        self.discard(retired)
        return model

    def discard(self, scratch: Path) -> None:
        """Delete a scratch folder, and the scratch area once it is empty."""
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / SCRATCH).rmdir()


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (ours counts)."""
    if pid == os.getpid() or os.name != "posix":  # elsewhere, signal 0 is not a harmless probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or an id we cannot ask about: leave it be
    return True


def _last_change(folder: Path) -> float:
    """The newest modification time of ``folder`` and anything in it (seconds since the epoch)."""
    newest = 0.0
    for path in [folder, *folder.rglob("*")]:
        with contextlib.suppress(OSError):
            newest = max(newest, path.lstat().st_mtime)
    return newest


def unfinished(model: Path) -> list[Path]:
    """The folders in ``model`` that a step killed before it finished left half-written
    (``onnx.partial`` of a conversion): never used, and not counted as the model's files."""
    from describe_local.store.formats import PARTIAL_SUFFIX

    try:
        return sorted(p for p in model.iterdir()
                      if p.name.endswith(PARTIAL_SUFFIX) and p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def in_progress(partial: Path) -> bool:
    """Whether a live process is still writing ``partial`` (its busy marker names it)."""
    from describe_local.store.formats import BUSY_MARKER

    for marker in partial.glob(BUSY_MARKER + "*"):
        pid = marker.name[len(BUSY_MARKER):]
        if pid.isdigit() and _process_alive(int(pid)):
            return True
    return False


def clean_unfinished(model: Path) -> tuple[list[Path], list[Path]]:
    """Remove what :func:`unfinished` finds in ``model``, except what a live process is still
    writing; returns (removed, left because in use)."""
    removed, busy = [], []
    for partial in unfinished(model):
        if in_progress(partial):
            busy.append(partial)
            continue
        shutil.rmtree(partial, ignore_errors=True)
        (busy if partial.exists() else removed).append(partial)
    return removed, busy


def check_name(name: str) -> str:
    """``name`` if it is a safe folder name for a model, else :class:`StoreError`."""
    if not _NAME.match(name) or name in (".", ".."):
        raise StoreError(
            f"{name!r} is not a usable model name (letters, digits, '.', '_', '+', '-'; "
            "no slashes; at most 128 characters)"
        )
    return name


# A caption model is the one kind named by the user at run time (--caption-model NAME_OR_FOLDER).
INSTALL_HINT = (
    "install one with `describe-local models pull ofa-tiny` (needs a network), "
    "or `describe-local models import FOLDER_OR_ARCHIVE` on an offline machine"
)


def resolve_model_folder(name_or_folder: str, models_dir: Path) -> Path:
    """The folder of the caption model ``name_or_folder``: a path, or a name in the store."""
    candidate = Path(name_or_folder).expanduser()
    if candidate.is_dir():
        return candidate
    in_store = models_dir / name_or_folder
    if in_store.is_dir():
        return in_store
    raise ModelNotInstalled(
        f"caption model {name_or_folder!r} is not installed in {models_dir}: {INSTALL_HINT}"
    )
