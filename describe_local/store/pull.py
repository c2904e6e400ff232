"""``models pull``: fetch a catalogued model from its hub into the store."""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING

from describe_local.store.catalogue import remote_files, resolve
from describe_local.store.download import Progress, download
from describe_local.store.importing import import_model
from describe_local.store.local import InstalledModel, ModelStore, StoreError

if TYPE_CHECKING:
    from describe_local.settings import Settings

log = logging.getLogger(__name__)


def pull_model(
    store: ModelStore,
    name: str,
    settings: Settings,
    *,
    timeout: float | None = None,
    progress: Progress | None = None,
    replace: bool = False,
) -> InstalledModel:
    """Download the model ``name`` and install it in ``store``.

    Partial files are kept in ``models/.downloads/NAME`` so that running the
    same pull again resumes them. Offline, raises :class:`OfflineError`
    within about ``timeout`` seconds (``settings.download_timeout_s`` by default).
    """
    entry = resolve(name)
    if store.find(entry.name) and not replace:
        raise StoreError(f"{entry.name} is already installed (pass --replace to fetch it again)")
    timeout = settings.download_timeout_s if timeout is None else timeout
    files, source = remote_files(entry, settings, timeout=timeout)
    downloads = store.downloads(entry.name)
    for remote in files:
        target = downloads / remote.path
        if target.is_file() and remote.size is not None and target.stat().st_size == remote.size:
            continue  # finished and checked in an earlier run
        download(remote, target, timeout=timeout, progress=progress)
    only = downloads / files[0].path if len(files) == 1 else downloads
    # The downloaded files go through the same checks as a model brought by hand.
    model = import_model(store, only, name=entry.name, replace=replace, source=source)
    model.manifest.licence = entry.licence if model.manifest.licence in ("", "unknown") else model.manifest.licence
    model.manifest.write(model.path)
    shutil.rmtree(downloads, ignore_errors=True)
    return model
