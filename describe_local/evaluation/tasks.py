"""The per-photo work of ``describe-local eval``, as collection tasks.

Each factory takes the settings and plain options, loads what it needs once, and returns
the function a worker calls for every photo (see :class:`describe_local.collection.TaskSpec`),
so that ``--jobs`` and ``--ray`` spread the work as they do for ``describe``. Evaluation
measures the stages themselves, so these call the stage classes directly rather than the
describer (the speed table times the whole describer).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from describe_local.images import Photo, image_limits, load_photo
from describe_local.settings import Settings

log = logging.getLogger(__name__)


def _opener(settings: Settings) -> Callable[[Path], Photo]:
    limits = image_limits(settings)
    return lambda path: load_photo(Path(path), **limits)


def caption_task(settings: Settings) -> Callable[[Path], dict[str, Any]]:
    """The caption model's caption of a photo (``caption``, ``ms``)."""
    from describe_local.see.caption import load_captioner

    captioner = load_captioner(settings)
    open_photo = _opener(settings)

    def run(path: Path) -> dict[str, Any]:
        photo = open_photo(path)
        start = time.perf_counter()
        caption = captioner.caption(photo.image)
        return {"caption": caption, "ms": round((time.perf_counter() - start) * 1000, 1)}

    return run


def face_task(settings: Settings, whole_if_none: bool = False) -> Callable[[Path], dict[str, Any]]:
    """Every face in a photo: ``boxes`` (top, right, bottom, left) and their 128-number ``encodings``.

    Faces are found as the faces stage finds them (``face_max_side``, ``face_upsample``), in this
    process. ``whole_if_none``: a photo where no face is found is taken as one face filling it
    (face chips already cut and aligned, as some folder-per-person sets are); ``whole`` says so.
    """
    from describe_local.see.faces.detect import Box, FaceModels, encode_faces, find_faces

    models = FaceModels.load()
    open_photo = _opener(settings)

    def run(path: Path) -> dict[str, Any]:
        photo = open_photo(path)
        start = time.perf_counter()
        boxes, encodings = find_faces(models, photo, settings.face_max_side, settings.face_upsample)
        whole = False
        if not boxes and whole_if_none:
            width, height = photo.size
            boxes = [Box(0, width - 1, height - 1, 0)]
            encodings = encode_faces(models, photo.array, boxes)
            whole = True
        return {"boxes": [list(map(int, b)) for b in boxes], "encodings": encodings.round(6).tolist(),
                "whole": whole, "ms": round((time.perf_counter() - start) * 1000, 1)}

    return run


def text_task(settings: Settings) -> Callable[[Path], dict[str, Any]]:
    """The text stage's reading of a photo: ``text``, ``language``, ``mode``, ``engine``, ``lines``, ``ms``."""
    from describe_local.see.text import TextReader

    reader = TextReader.load(settings)
    open_photo = _opener(settings)

    def run(path: Path) -> dict[str, Any]:
        photo = open_photo(path)
        start = time.perf_counter()
        reading = reader.read(photo)
        return {"text": reading.text, "language": reading.language, "mode": reading.mode, "engine": reading.engine,
                "lines": len(reading.lines), "ms": round((time.perf_counter() - start) * 1000, 1)}

    return run


class _SpeedTask:
    """The whole describer with a gallery of its own, timing each photo of the speed table."""

    def __init__(self, settings: Settings, data: Path, repeats: int) -> None:
        from describe_local.evaluation.speed import enrol
        from describe_local.pipeline import Describer

        self.scratch = Path(tempfile.mkdtemp(prefix="describe-local-eval-"))
        try:
            self.settings = dataclasses.replace(settings, known_faces=self.scratch / "known")
            enrol(self.settings, data)
            self.describer = Describer.load(self.settings)
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        self.repeats = repeats
        # Closed by the collection engine (close()), or else when the task is let go of or the worker exits.
        self._finalizer = weakref.finalize(self, _close_speed, self.describer, self.scratch)

    def close(self) -> None:
        self._finalizer()

    def __call__(self, path: Path) -> dict[str, Any]:
        from describe_local.evaluation.speed import OthersCpu, TreeRss, time_case

        caption = self.describer.status()["caption"]
        record: dict[str, Any] = {"caption_note": None if caption.loaded else caption.detail}
        with TreeRss() as tree, OthersCpu() as others:
            for mode in ("sequential", "parallel"):
                timing = time_case(self.describer, path, sequential=mode == "sequential", repeats=self.repeats)
                record[mode] = {"runs": timing.runs, "said": timing.said}
        record["peak_rss_mb"] = round(tree.peak_mb, 1)
        record["others_cpu"] = others.share
        return record


def _close_speed(describer: Any, scratch: Path) -> None:
    describer.close()
    shutil.rmtree(scratch, ignore_errors=True)


def speed_task(settings: Settings, data: str, repeats: int = 3) -> Callable[[Path], dict[str, Any]]:
    """Time the whole pipeline on a photo of the speed table: per mode, each run's stage times and
    what was said; ``peak_rss_mb`` of the process tree. ``data``: the shared data folder (for the gallery)."""
    return _SpeedTask(settings, Path(data), repeats)
