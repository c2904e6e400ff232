"""The per-photo work of ``describe-local eval``, as collection tasks.

Each factory takes the settings and plain options, loads what it needs once, and returns
the function a worker calls for every photo (see :class:`describe_local.collection.TaskSpec`),
so that ``--jobs`` and ``--ray`` spread the work as they do for ``describe``. Evaluation
measures the stages themselves: captions and text through ``Describer.look`` on a describer
loaded with that stage alone, faces through the public gallery API's ``FaceFinder`` (every
face's encoding, for the tolerance curve); the speed table times the whole describer.
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

from describe_local.errors import DescribeLocalError, ModelNotInstalled
from describe_local.images import Photo, image_limits, load_photo
from describe_local.results import Seen, Status
from describe_local.settings import Settings

log = logging.getLogger(__name__)


def _opener(settings: Settings) -> Callable[[Path], Photo]:
    limits = image_limits(settings)
    return lambda path: load_photo(Path(path), **limits)


class _StageTask:
    """One analysis stage of a describer loaded with that stage alone, run on each photo."""

    def __init__(self, settings: Settings, stage: str) -> None:
        from describe_local.pipeline import Describer

        self.stage = stage
        self.describer = Describer.load(settings, stages=(stage,), speech=False)
        status = self.describer.status()[stage]
        if not status.loaded:
            self.describer.close()
            raise ModelNotInstalled(status.detail or f"the {stage} stage could not be loaded")
        # Closed by the collection engine (close()), or else when the task is let go of or the worker exits.
        self._finalizer = weakref.finalize(self, self.describer.close)

    def close(self) -> None:
        self._finalizer()

    def look(self, path: Path) -> tuple[Seen, float]:
        """What the stage saw in the photo at ``path``, and how long it took (ms); raises when the
        stage failed or ran out of time on it, so that the photo is counted as failed."""
        seen = self.describer.look(path, (self.stage,))
        state = seen.stages[self.stage]
        if state.status is not Status.OK:
            raise DescribeLocalError(f"{path}: the {self.stage} stage {state.status.value}: {state.detail}")
        return seen, round(state.ms or 0.0, 1)


class _CaptionTask(_StageTask):
    def __call__(self, path: Path) -> dict[str, Any]:
        seen, ms = self.look(path)
        return {"caption": seen.caption, "ms": ms}


class _TextTask(_StageTask):
    def __call__(self, path: Path) -> dict[str, Any]:
        seen, ms = self.look(path)
        reading = seen.reading
        return {"text": reading.text, "language": reading.language, "mode": reading.mode, "engine": reading.engine,
                "lines": len(reading.lines), "ms": ms}


def caption_task(settings: Settings) -> Callable[[Path], dict[str, Any]]:
    """The caption model's caption of a photo (``caption``, ``ms``)."""
    return _CaptionTask(settings, "caption")


def face_task(settings: Settings, whole_if_none: bool = False) -> Callable[[Path], dict[str, Any]]:
    """Every face in a photo: ``boxes`` (top, right, bottom, left) and their 128-number ``encodings``.

    Faces are found as the faces stage finds them (``face_max_side``, ``face_upsample``), in this
    process. ``whole_if_none``: a photo where no face is found is taken as one face filling it
    (face chips already cut and aligned, as some folder-per-person sets are); ``whole`` says so.
    """
    from describe_local.gallery import FaceFinder

    finder = FaceFinder.load(settings)
    open_photo = _opener(settings)

    def run(path: Path) -> dict[str, Any]:
        photo = open_photo(path)
        start = time.perf_counter()
        boxes, encodings = finder.faces(photo)
        whole = not boxes and whole_if_none
        if whole:
            boxes, encodings = finder.whole(photo)
        return {"boxes": [list(map(int, b)) for b in boxes], "encodings": encodings.round(6).tolist(),
                "whole": whole, "ms": round((time.perf_counter() - start) * 1000, 1)}

    return run


def text_task(settings: Settings) -> Callable[[Path], dict[str, Any]]:
    """The text stage's reading of a photo: ``text``, ``language``, ``mode``, ``engine``, ``lines``, ``ms``."""
    return _TextTask(settings, "text")


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
                record[mode] = {"runs": timing.runs, "said": timing.said, "ran": timing.ran}
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
