"""The caption stage: a registry of backends, each loading a :class:`~describe_local.see.CaptionStage`.

A backend is a pair of functions: ``accepts(folder)`` says whether a model
folder is in its format, ``load(folder, settings)`` returns a ready
:class:`Captioner`. The OFA engine and the ``transformers`` image-to-text
backend register themselves here; :func:`load_captioner` picks the backend for
the model named in the settings.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.errors import ModelNotInstalled
from describe_local.see import CaptionStage as Captioner
from describe_local.store.local import INSTALL_HINT, resolve_model_folder

if TYPE_CHECKING:
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Backend:
    name: str
    accepts: Callable[[Path], bool]
    load: Callable[[Path, Settings], Captioner]


_BACKENDS: dict[str, Backend] = {}

# Modules that register backends when imported; imported lazily so that the
# pipeline does not pay for torch or transformers until a caption model exists.
_BACKEND_MODULES = (
    "describe_local.see.caption.onnx_backend",  # first: a converted OFA folder runs without torch
    "describe_local.see.caption.florence_onnx.backend",  # a converted Florence-2 folder, before transformers'
    "describe_local.see.caption.ofa_backend",
    "describe_local.see.caption.transformers_backend",
)


def register_backend(backend: Backend) -> None:
    """Make ``backend`` available to :func:`load_captioner` (later registrations win)."""
    _BACKENDS[backend.name] = backend


def backends() -> dict[str, Backend]:
    """The registered backends by name, importing the built-in ones first, in the order they are
    tried: the built-in ones as ``_BACKEND_MODULES`` lists them (whatever imported one first), then others."""
    for module in _BACKEND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a backend's own dependency is missing
                log.debug("caption backend %s unavailable: %s", module, exc)
    rank = {module: i for i, module in enumerate(_BACKEND_MODULES)}
    ordered = sorted(_BACKENDS.values(), key=lambda b: rank.get(b.load.__module__, len(rank)))
    return {backend.name: backend for backend in ordered}


def find_captioner(settings: Settings) -> tuple[Path, Backend]:
    """The folder of the caption model named by ``settings.caption_model`` and the backend that
    loads it, without loading it.

    Raises :class:`ModelNotInstalled` when it is not in the store, or when no
    backend understands its folder.
    """
    folder = resolve_model_folder(settings.caption_model, settings.models_dir)
    for backend in backends().values():
        if backend.accepts(folder):
            return folder, backend
    raise ModelNotInstalled(
        f"{folder} is not a caption model any backend understands "
        f"(backends: {', '.join(sorted(_BACKENDS)) or 'none'}); {INSTALL_HINT}"
    )


def load_captioner(settings: Settings) -> Captioner:
    """Load the caption model named by ``settings.caption_model`` (raises as :func:`find_captioner`)."""
    folder, backend = find_captioner(settings)
    log.info("loading caption model %s with the %s backend", folder, backend.name)
    return backend.load(folder, settings)
