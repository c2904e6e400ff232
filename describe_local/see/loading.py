"""Loading the analysis stages once: each one's model, or why it is off.

A stage whose model is not installed (the caption, until a caption model is pulled) is left
out and named with the reason, to be told as a stage that is off; any other load error
propagates, and the stages loaded before it (which may hold helper processes) are closed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from describe_local.errors import ModelNotInstalled

if TYPE_CHECKING:
    from describe_local.see import CaptionStage, FaceStage, TextStage
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

ANALYSIS_STAGES = ("caption", "faces", "text")


@dataclass
class Stages:
    """The loaded stages (``None``: not asked for, or off) and, for those that are off, why."""

    caption: CaptionStage | None = None
    faces: FaceStage | None = None
    text: TextStage | None = None
    off: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        """Close each stage that holds a helper process or other resources."""
        for stage in (self.caption, self.faces, self.text):
            close_stage(stage)


def load_stages(settings: Settings, stages: Iterable[str], say: Callable[[str], None]) -> Stages:
    """Load the ``stages`` named (some of :data:`ANALYSIS_STAGES`); ``say`` hears what is loading."""
    from describe_local.gallery import open_gallery
    from describe_local.see.caption import load_captioner
    from describe_local.see.faces.recognize import FaceRecognizer
    from describe_local.see.text import TextReader

    stages = set(stages)
    unknown = stages - set(ANALYSIS_STAGES)
    if unknown:
        raise ValueError(f"unknown stages: {', '.join(sorted(unknown))}")
    loaded = Stages()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(loaded.close)  # undone if a later stage fails to load
        faces: cf.Future[FaceStage] | None = None
        if "faces" in stages:
            # Its child process loads dlib on the other core while this one loads the rest
            # (0.4 s of a cold describe); the thread only waits for the child's word.
            say("loading the face models and the gallery")
            faces = _in_background(lambda: FaceRecognizer.load(open_gallery(settings), settings))
        try:
            if "caption" in stages:
                say("loading the caption model")
                try:
                    loaded.caption = load_captioner(settings)
                except ModelNotInstalled as exc:
                    loaded.off["caption"] = str(exc)
                    log.info("caption stage off: %s", exc)
            if "text" in stages:
                say("checking Tesseract")
                loaded.text = TextReader.load(settings)
        except BaseException:
            _discard(faces)
            raise
        if faces is not None:
            loaded.faces = faces.result()
        cleanup.pop_all()
    return loaded


def _in_background(load: Callable[[], FaceStage]) -> cf.Future[FaceStage]:
    """``load()`` run in a thread of its own, as a future."""
    future: cf.Future[FaceStage] = cf.Future()

    def run() -> None:
        try:
            future.set_result(load())
        except BaseException as exc:  # handed to whoever waits for it
            future.set_exception(exc)

    threading.Thread(target=run, name="load-faces", daemon=True).start()
    return future


def _discard(future: cf.Future[FaceStage] | None) -> None:
    """Wait for a stage loading in the background and close it (another load failed)."""
    if future is None:
        return
    try:
        close_stage(future.result())
    except BaseException as exc:  # the first error is the one raised; this one is only logged
        log.debug("the faces stage did not load either: %s", exc)


def close_stage(stage: Any) -> None:
    """Close a stage that holds a helper process or other resources, if it has ``close()``."""
    close = getattr(stage, "close", None)
    if close is not None:
        close()
