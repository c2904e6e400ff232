"""Put names to the faces in a photo: nearest known face within a tolerance.

Faces are found by :mod:`describe_local.see.faces.detect`, in a child process
(:mod:`describe_local.see.faces.worker`) by default, and each encoding is
matched to its nearest neighbour among the gallery's encodings.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from describe_local.see.faces.detect import (
    ENCODING_SIZE,
    Box,
    FaceModels,
    detector_folder,
    downscale,
    face_model_files,
    find_faces,
    scale_boxes,
)

if TYPE_CHECKING:
    from describe_local.images import Photo
    from describe_local.see.faces.gallery import Gallery
    from describe_local.see.faces.worker import FaceWorker
    from describe_local.settings import Settings

log = logging.getLogger(__name__)


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
    tolerance: float  # these three come from the settings (face_tolerance, face_max_side, face_upsample)
    max_side: int
    upsample: int
    timeout_s: float | None = None  # the child process is killed past this (the stage budget)
    worker: FaceWorker | None = field(default=None, repr=False)  # None: find faces in this process
    _swap: threading.Lock = field(default_factory=threading.Lock, repr=False)  # names and encodings change together

    @classmethod
    def load(cls, gallery: Gallery, settings: Settings, models: FaceModels | None = None) -> FaceRecognizer:
        """Load the face models and the gallery's encodings (from its cache where fresh).

        With ``settings.face_subprocess`` (the default) faces are found in a
        :class:`FaceWorker` child process; this process then loads the models
        only if the gallery has photos its cache does not cover. The child keeps its
        encoder between photos unless ``settings.models_in_memory`` is ``"one"``.
        """
        from describe_local.see.faces.worker import FaceWorker

        files = face_model_files(settings.models_dir)  # ModelNotInstalled here, before a child starts
        # "one" model in memory at a time: the child loads its encoder for each photo with faces
        # (0.1 s of CPU) rather than keep it (34 MB) beside the next photo's detection.
        keep = settings.models_in_memory != "one"
        saved_in = detector_folder(settings.models_dir)
        worker = None
        if settings.face_subprocess:
            worker = FaceWorker(model_files=files, keep_models=keep, saved_in=saved_in)
        try:
            if worker is None:
                models = models or FaceModels.load(files, saved_in)
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
            timeout_s=settings.stage_timeout_s,
            worker=worker,
        )

    def reload(self, gallery: Gallery) -> int:
        """Take the gallery's current encodings (from its cache: quick); returns how many people.

        The models and the child process stay; only the known names and encodings change.
        """
        names, encodings = gallery.known_encodings(self.models)
        with self._swap:
            self.known_names, self.known_encodings = names, encodings
        log.info("face gallery reloaded: %d photos of %d people", len(names), len(set(names)))
        return len(set(names))

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
            boxes, encodings = self.worker.find_faces(image, self.upsample, self.timeout_s)
            boxes = scale_boxes(boxes, scale)
        with self._swap:
            known_names, known_encodings = self.known_names, self.known_encodings
        matches = match_faces(encodings, known_names, known_encodings, self.tolerance)
        faces = sorted(
            (Face(box, name, distance) for box, (name, distance) in zip(boxes, matches, strict=True)),
            key=lambda face: (face.box.left, face.box.top),
        )
        people = [face.name for face in faces if face.name is not None]
        return FaceResult(people=people, unknown=len(faces) - len(people), faces=faces)

