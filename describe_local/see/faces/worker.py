"""The face stage's child process: dlib finds and encodes faces outside this process's GIL.

Measured with ``scripts/measure_overlap.py``: dlib's HOG detector releases the
GIL, but its face encoder holds it for its whole call (about 0.1 s a face), so
in a thread it would stall the caption stage's Python. :class:`FaceWorker`
runs both in a long-lived child (a :class:`~describe_local.child.Child`) instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from describe_local.child import IDLE_EXIT_STATUS, Answer, Child, Failed, Gone, Ready
from describe_local.errors import FaceWorkerError, StageTimedOut
from describe_local.see.faces.detect import ENCODING_SIZE, Box, FaceModels, detect_faces, encode_faces

log = logging.getLogger(__name__)

# A FaceWorker child with no photo for this long exits; the next photo starts a
# new one (about half a second to load the models).
WORKER_IDLE_EXIT_S = 600.0
FACTORY = "describe_local.see.faces.worker:load_finder"  # what the child runs (ps shows it)
NAME = "the face detection process"

__all__ = ["IDLE_EXIT_STATUS", "WORKER_IDLE_EXIT_S", "FaceWorker", "load_finder"]


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
    """

    def __init__(self, idle_exit_s: float = WORKER_IDLE_EXIT_S) -> None:
        self.idle_exit_s = idle_exit_s
        self._lock = threading.Lock()  # one request at a time on the connection
        self._process: Child | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        child = Child.start(FACTORY, name=NAME, idle_exit_s=self.idle_exit_s)
        try:
            reply = child.receive()  # the models load now: fail at load time, not on a photo
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


def load_finder() -> Callable[[tuple[np.ndarray, int]], tuple[list[Box], np.ndarray]]:
    """In the child: load the face models once; returns the function that answers each
    ``(RGB uint8 image, upsample)`` with its face boxes and their encodings."""
    models = FaceModels.load()

    def find(request: tuple[np.ndarray, int]) -> tuple[list[Box], np.ndarray]:
        image, upsample = request
        boxes = detect_faces(models, image, int(upsample))
        return boxes, encode_faces(models, image, boxes)

    return find
