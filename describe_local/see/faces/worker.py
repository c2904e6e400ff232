"""The face stage's child process: dlib finds and encodes faces outside this process's GIL.

Measured with ``scripts/measure_overlap.py``: dlib's HOG detector releases the
GIL, but its face encoder holds it for its whole call (about 0.1 s a face), so
in a thread it would stall the caption stage's Python. :class:`FaceWorker`
runs both in a long-lived child (a :class:`~describe_local.child.Child`) instead.

The child holds as little as it can between photos (measured with
``scripts/bench_faces_memory.py``): it imports dlib, NumPy and these few modules
(no settings: the parent names the model files); it keeps dlib's face detector as
its bytes and makes a copy for each photo, whose feature pyramid goes with it; it
loads the landmark and encoder models (34 MB) only for a photo with faces, after
the detector's copy has gone, and lets them go after it unless told to keep them;
and it hands what it freed back to the system after each photo.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from describe_local.child import IDLE_EXIT_STATUS, Answer, Child, Failed, Gone, Ready
from describe_local.errors import FaceWorkerError, ModelNotInstalled, StageTimedOut
from describe_local.see.faces.detect import ENCODING_SIZE, Box, FaceDetector, FaceEncoder, face_model_files

log = logging.getLogger(__name__)

# A FaceWorker child with no photo for this long exits; the next photo starts a
# new one (about half a second to load the models).
WORKER_IDLE_EXIT_S = 600.0
FACTORY = "describe_local.see.faces.worker:load_finder"  # what the child runs (ps shows it)
NAME = "the face detection process"

__all__ = ["IDLE_EXIT_STATUS", "WORKER_IDLE_EXIT_S", "FaceFinder", "FaceWorker", "load_finder"]


class FaceWorker:
    """Detects and encodes faces in a child process that holds its own face models.

    dlib's HOG detector releases the GIL but its face encoder does not: while
    it encodes (about 0.1 s a face) no other Python thread of this process can
    run, so the caption and text stages would stall behind it. In a child
    process the encoder only competes for a core.

    A child that dies is replaced on the next photo, one that does not answer
    within the stage budget is killed, and a child left idle for
    ``idle_exit_s`` exits, so that a recogniser nobody closed does not hold on
    to a process and its models.

    ``model_files`` (landmarks, encoder) default to :func:`face_model_files`'s, which raises
    :class:`ModelNotInstalled` here when they are missing. With ``keep_models`` the child keeps
    the landmark and encoder models once a photo with faces has loaded them (many photos, no
    0.1 s load each); without, it loads them for each photo with faces and its peak is the
    larger of detecting and encoding, not their sum.
    """

    def __init__(self, idle_exit_s: float = WORKER_IDLE_EXIT_S, model_files: tuple[Path, Path] | None = None,
                 keep_models: bool = False, saved_in: Path | None = None) -> None:
        self.idle_exit_s = idle_exit_s
        self.model_files = model_files or face_model_files()
        self.keep_models = keep_models
        self.saved_in = saved_in  # where the child keeps its built detector (FaceDetector.load)
        self._lock = threading.Lock()  # one request at a time on the connection
        self._process: Child | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        child = Child.start(FACTORY, self.model_files, self.keep_models, self.saved_in, name=NAME,
                            idle_exit_s=self.idle_exit_s)
        try:
            reply = child.receive()  # the detector loads and the model files are checked: fail now, not on a photo
        except BaseException:  # Ctrl-C while it loads: take it down with us rather than leave it loading
            child.close()
            raise
        if not isinstance(reply, Ready):
            status = child.close()
            detail = reply.text if isinstance(reply, Failed) else f"it exited with status {status}"
            raise FaceWorkerError(f"the face detection process could not start: {detail}")
        self._process = child

    def find_faces(
        self, image: np.ndarray, upsample: int, timeout_s: float | None = None
    ) -> tuple[list[Box], np.ndarray]:
        """:func:`detect_faces` then :func:`encode_faces` on an RGB uint8 array, in the child.

        A child that does not answer within ``timeout_s`` (hung, or stopped with
        SIGSTOP) is killed, :class:`FaceWorkerError` is raised, and a new child
        takes the next photo.
        """
        request = (np.ascontiguousarray(image, dtype=np.uint8), upsample)
        with self._lock:
            reply = self._ask(request, timeout_s)
            if isinstance(reply, Gone) and reply.idle:
                # It timed out just as this photo was sent: a new child takes it.
                reply = self._ask(request, timeout_s)
            if isinstance(reply, Gone):
                self._process = None  # reaped already; the next photo starts a new one
                if reply.timed_out:
                    raise StageTimedOut(f"face detection did not answer within {timeout_s:g} s; "
                                        "it was stopped and restarts on the next photo")
                raise FaceWorkerError("the face detection process stopped unexpectedly; it restarts on the next photo")
        if isinstance(reply, Failed):  # the child is still fine
            raise FaceWorkerError(f"face detection failed: {reply.text}")
        boxes, encodings = reply.value
        return [Box(*b) for b in boxes], np.asarray(encodings, dtype=np.float64).reshape(-1, ENCODING_SIZE)

    def _ask(self, request: tuple[np.ndarray, int], timeout_s: float | None) -> Answer | Failed | Gone:
        """Send one photo to the child, started again first if it has ended."""
        child = self._process
        if child is None or child.poll() is not None:
            if child is not None:
                status = child.close()
                if status == IDLE_EXIT_STATUS:
                    log.info("starting the face detection process again (it stopped when idle)")
                else:
                    log.warning("the face detection process stopped (status %s); starting it again", status)
            self._process = None
            self._start()
            child = self._process
            assert child is not None
        return child.ask(request, timeout_s or None)

    def close(self) -> None:
        with self._lock:
            child, self._process = self._process, None
            if child is not None:
                child.close()


class FaceFinder:
    """In the child: finds and encodes the faces of one ``(RGB uint8 image, upsample)`` a call.

    The detector's copy, and its feature pyramid, go before the encoder's models load, so
    the two are never resident together unless ``keep_models`` keeps the models between
    photos. Boxes and encodings are those of ``detect_faces`` and ``encode_faces``.
    """

    def __init__(self, model_files: tuple[Path, Path], keep_models: bool, saved_in: Path | None = None) -> None:
        from describe_local.memory import settle_allocator

        settle_allocator()  # as in the parent: big blocks (dlib's image pyramids) go back to the system when freed
        missing = [str(path) for path in model_files if not Path(path).is_file()]
        if missing:
            raise ModelNotInstalled(f"the face models are not installed (no {', '.join(missing)}); "
                                    "run ./scripts/setup")
        self.detector = FaceDetector.load(saved_in)
        self.model_files = model_files
        self.keep_models = keep_models
        self._encoder: FaceEncoder | None = None

    def __call__(self, request: tuple[np.ndarray, int]) -> tuple[list[Box], np.ndarray]:
        from describe_local.memory import release_free_memory

        image, upsample = request
        boxes = self.detector.detect(image, int(upsample))
        encodings = np.empty((0, ENCODING_SIZE), dtype=np.float64)
        if boxes:
            encoder = self._encoder or FaceEncoder.load(self.model_files)
            if self.keep_models:
                self._encoder = encoder
            encodings = encoder.encode(image, boxes)
            del encoder
        release_free_memory()  # what the photo used, back to the system before the child waits
        return boxes, encodings


def load_finder(model_files: tuple[Path, Path], keep_models: bool = False, saved_in: Path | None = None) -> FaceFinder:
    """The child's factory (:data:`FACTORY`): a :class:`FaceFinder` for these model files."""
    return FaceFinder(model_files, keep_models, saved_in)
