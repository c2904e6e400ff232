"""What to do for each photo of a collection, in a form that can travel to a worker or a Ray node.

Kept apart from the package's ``__init__`` so that the engine's modules import it without
importing each other through the package (no import cycles).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.settings import Settings

# What a task's factory returns: called once per photo, returns that photo's JSON-ready fields.
# A task may also have ``from_bytes(path, data)`` (used where the photo's bytes travelled to a
# node that cannot see ``path``) and ``close()`` (called once when its worker stops).
PhotoTask = Callable[[Path], dict[str, Any]]

# A record field that is not JSON: ``{field: bytes}`` for the driver to write as files (an MP3);
# the field then holds where the file was written (see ``run_collection``'s ``save_file``).
FILES = "_files"

# The option of a task that can run each photo's stages one after another (describe, read, alt text).
IN_TURN = "sequential"


@dataclass(frozen=True)
class TaskSpec:
    """The work to do for each photo, in a form that can travel to a worker.

    ``factory`` is ``"package.module:function"``; ``function(settings, **options)``
    loads what the task needs and returns a :data:`PhotoTask`. ``options`` must be
    picklable (plain values). ``needs`` are files or folders the task reads (model
    folders, the gallery's people) that must exist on every Ray node; a node without
    one of them is named with what it lacks.
    """

    factory: str
    settings: Settings
    options: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()

    def build(self) -> PhotoTask:
        """Import the factory and build the task (loads its models)."""
        module_name, _, name = self.factory.partition(":")
        factory = getattr(importlib.import_module(module_name), name)
        return factory(self.settings, **self.options)

    def with_threads(self, share: int) -> TaskSpec:
        """This spec for a worker that may use ``share`` CPU cores: torch (when left to decide)
        and PP-OCR get that many threads, so that workers side by side do not oversubscribe.

        A worker with one core runs each photo's stages one after another, where its task takes
        the :data:`IN_TURN` option: on one core, stages side by side are no faster (the workers
        beside it use the other cores), but their peaks add up. Measured with
        ``scripts/bench_worker.py`` (20 photos, speech on): the worker and its face child peaked
        at 736 MB together with the stages side by side, 603 MB one after another.
        """
        settings = dataclasses.replace(
            self.settings,
            torch_threads=self.settings.torch_threads or share,
            ocr_threads=min(self.settings.ocr_threads, share),
        )
        options = self.options
        if share == 1 and IN_TURN in options:
            options = {**options, IN_TURN: True}
        return dataclasses.replace(self, settings=settings, options=options)
