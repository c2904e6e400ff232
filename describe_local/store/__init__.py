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

from describe_local.errors import ModelNotInstalled
from describe_local.store.catalogue import CatalogueEntry, UnknownModel, known_models, resolve
from describe_local.store.download import DownloadError
from describe_local.store.importing import import_model
from describe_local.store.kinds import NotAModel
from describe_local.store.local import InstalledModel, ModelStore, StoreError
from describe_local.store.manifest import MANIFEST_NAME, Manifest, ManifestError
from describe_local.store.pull import pull_model

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
