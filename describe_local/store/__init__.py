"""The model store: ``models/`` in the project root, one folder per model.

Each folder carries a manifest (``describe-local.json``: name, kind, source,
licence, sha256 of every file). Models get there with :func:`pull_model`
(from a hub, when the machine is online) or :func:`import_model` (a folder,
archive, ``.argosmodel`` or Piper voice brought by hand).

- :mod:`.manifest`: the manifest and checksums
- :mod:`.local`: the folder on disk (:class:`ModelStore`)
- :mod:`.formats`: the files each kind of model is made of (stdlib only)
- :mod:`.kinds`: what a folder holds, checked before import
- :mod:`.importing`: ``models import``
- :mod:`.catalogue`: models we know how to fetch, and their hubs' file lists
- :mod:`.download`: HTTP with timeouts, resume and checksums
- :mod:`.pull`: ``models pull``
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from describe_local.errors import ModelNotInstalled
    from describe_local.store.catalogue import CatalogueEntry, UnknownModel, known_models, resolve
    from describe_local.store.download import DownloadError
    from describe_local.store.importing import import_model
    from describe_local.store.kinds import NotAModel
    from describe_local.store.local import InstalledModel, ModelStore, StoreError
    from describe_local.store.manifest import MANIFEST_NAME, Manifest, ManifestError
    from describe_local.store.pull import pull_model

# Where each name lives, imported on first use: describing needs only the folder on disk
# (``.local``), not the hubs' HTTP client and archive readers (60 ms of a cold describe).
_HOMES = {
    "ModelNotInstalled": "describe_local.errors",
    "CatalogueEntry": "describe_local.store.catalogue", "UnknownModel": "describe_local.store.catalogue",
    "known_models": "describe_local.store.catalogue", "resolve": "describe_local.store.catalogue",
    "DownloadError": "describe_local.store.download",
    "import_model": "describe_local.store.importing",
    "NotAModel": "describe_local.store.kinds",
    "InstalledModel": "describe_local.store.local", "ModelStore": "describe_local.store.local",
    "StoreError": "describe_local.store.local",
    "MANIFEST_NAME": "describe_local.store.manifest", "Manifest": "describe_local.store.manifest",
    "ManifestError": "describe_local.store.manifest",
    "pull_model": "describe_local.store.pull",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


__all__ = [
    "MANIFEST_NAME",
    "CatalogueEntry",
    "DownloadError",
    "InstalledModel",
    "Manifest",
    "ManifestError",
    "ModelNotInstalled",
    "ModelStore",
    "NotAModel",
    "StoreError",
    "UnknownModel",
    "import_model",
    "known_models",
    "pull_model",
    "resolve",
]
