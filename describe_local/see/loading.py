"""Loading the analysis stages: each one's model, or why it is off.

A stage whose model is not installed (the caption, until a caption model is pulled) is left
out and named with the reason, to be told as a stage that is off; any other load error
propagates, and the stages loaded before it (which may hold helper processes) are closed.

Loaded once (``on_demand=False``), every model stays in memory between photos. On demand, the
caption and text stages are :class:`OnDemand` stand-ins that load their model just before it
runs and let it go right after, taking turns: one model is in memory at a time, so that a
one-photo describe peaks at its largest model instead of the sum of them all. The faces stage
is always loaded: its model lives in a child process of its own, which works beside them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from describe_local.errors import ModelNotInstalled
from describe_local.memory import release_free_memory
from describe_local.see import ModelAnswer, QuestionAnswerer

if TYPE_CHECKING:
    from PIL import Image

    from describe_local.images import Photo
    from describe_local.see import CaptionStage, FaceStage, TextStage
    from describe_local.see.faces.gallery import Gallery
    from describe_local.see.faces.recognize import FaceResult
    from describe_local.see.text import TextReading
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


class OnDemand:
    """A stage whose model is loaded just before each use and let go right after.

    Stand-ins that share one ``turn`` (a lock) never hold their models at the same time.
    """

    def __init__(self, load: Callable[[], Any], turn: threading.Lock) -> None:
        self._load = load
        self._turn = turn
        self._ready: Any = None  # preloaded, holding the turn until its first use
        self._handoff = threading.Lock()

    def preload(self) -> None:
        """Load the model now, for its first use (the caption's, while the face child starts)."""
        self._turn.acquire()
        try:
            self._ready = self._load()
        except BaseException:
            self._turn.release()
            raise

    @contextlib.contextmanager
    def loaded(self) -> Iterator[Any]:
        """The stage, loaded for the ``with`` block (waiting for the turn, unless preloaded), then
        closed and its memory handed back to the system."""
        with self._handoff:  # a preloaded model, and the turn it holds, go to one use only
            stage, self._ready = self._ready, None
        if stage is None:
            self._turn.acquire()
        try:
            if stage is None:
                stage = self._load()
            yield stage
        finally:
            if stage is not None:
                close_stage(stage)
                del stage
                gc.collect()  # a model's sessions may sit in reference cycles: freed now, not later
                release_free_memory()
            self._turn.release()

    def close(self) -> None:
        """Let go of a model preloaded and never used (the photo could not be decoded)."""
        with self._handoff:
            stage, self._ready = self._ready, None
        if stage is not None:
            close_stage(stage)
            self._turn.release()


class OnDemandCaption(OnDemand):
    """The caption stage on demand (:class:`~describe_local.see.CaptionStage`)."""

    def __init__(self, load: Callable[[], Any], turn: threading.Lock, name: str) -> None:
        super().__init__(load, turn)
        self.name = name

    def caption(self, image: Image.Image) -> str:
        with self.loaded() as captioner:
            return captioner.caption(image)

    def answer(self, image: Image.Image, question: str) -> ModelAnswer:
        with self.loaded() as captioner:
            if not isinstance(captioner, QuestionAnswerer):
                raise ModelNotInstalled(f"{self.name} cannot answer questions; questions need an OFA model "
                                        "(e.g. --caption-model ofa-tiny)")
            return captioner.answer(image, question)


class OnDemandText(OnDemand):
    """The text stage on demand (:class:`~describe_local.see.TextStage`)."""

    def read(self, photo: Photo) -> TextReading:
        with self.loaded() as reader:
            return reader.read(photo)


class PendingFaces:
    """The faces stage while its child process starts (:class:`~describe_local.see.FaceStage`).

    On demand the caption runs meanwhile; the faces stage's first use waits for the child, and a
    child that could not start fails that use, as a child that stops does (the model files are
    checked before it starts, so that a missing model is still told at load).
    """

    def __init__(self, loading: cf.Future[FaceStage]) -> None:
        self._loading = loading

    def recognize(self, photo: Photo) -> FaceResult:
        return self._loading.result().recognize(photo)

    def reload(self, gallery: Gallery) -> int:
        return self._loading.result().reload(gallery)

    def close(self) -> None:
        """Close the stage once it has started (the child is never left behind)."""
        _discard(self._loading)


def load_stages(settings: Settings, stages: Iterable[str], say: Callable[[str], None], *,
                on_demand: bool = False) -> Stages:
    """Load the ``stages`` named (some of :data:`ANALYSIS_STAGES`); ``say`` hears what is loading.
    ``on_demand``: the caption and text stages as :class:`OnDemand` stand-ins (their models load
    as they run, one at a time; only the caption model's presence is checked here)."""
    from describe_local.gallery import open_gallery
    from describe_local.see.caption import find_captioner, load_captioner
    from describe_local.see.faces.detect import face_model_files
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
            # On demand nothing waits for it before the photo's faces stage (see PendingFaces).
            if on_demand:
                face_model_files(settings.models_dir)  # ModelNotInstalled now, as when waited for
            say("loading the face models and the gallery")
            faces = _in_background(lambda: FaceRecognizer.load(open_gallery(settings), settings))
        try:
            turn = threading.Lock()
            if "caption" in stages:
                say("loading the caption model" if not on_demand else "finding the caption model")
                try:
                    if on_demand:
                        folder, backend = find_captioner(settings)
                        loaded.caption = OnDemandCaption(lambda: backend.load(folder, settings), turn,
                                                         f"{backend.name}:{folder.name}")
                    else:
                        loaded.caption = load_captioner(settings)
                except ModelNotInstalled as exc:
                    loaded.off["caption"] = str(exc)
                    log.info("caption stage off: %s", exc)
            if "text" in stages:
                say("checking Tesseract")
                if on_demand:
                    checked = TextReader.check(settings)  # a missing pack is told now, not after the caption
                    loaded.text = OnDemandText(lambda: TextReader.load(settings, checked), turn)
                else:
                    loaded.text = TextReader.load(settings)
            if faces is not None and isinstance(loaded.caption, OnDemandCaption):
                say("loading the caption model")  # the first to run: loaded while the face child starts
                try:
                    loaded.caption.preload()
                except ModelNotInstalled as exc:
                    loaded.caption, loaded.off["caption"] = None, str(exc)
                    log.info("caption stage off: %s", exc)
        except BaseException:
            _discard(faces)
            raise
        if faces is not None:
            loaded.faces = PendingFaces(faces) if on_demand else faces.result()
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
