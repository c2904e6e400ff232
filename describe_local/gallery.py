"""Known people: the one public API for the gallery, for every front end.

The gallery is the ``known_faces/`` folder, one folder per person (see
:mod:`describe_local.see.faces.gallery` for its layout). Front ends (the CLI,
the server, ``eval``) use these verbs and never reach into ``see/faces``::

    gallery = open_gallery(settings)
    gallery.add("Ada", [Path("ada.jpg")])     # -> the photos stored
    gallery.people()                           # -> ["Ada"]
    gallery.remove("Ada")                      # -> how many photos went

:class:`FaceFinder` finds and encodes faces the way the faces stage does, and
:func:`face_distances` / :func:`match_faces` compare them, for measuring
recognition against labelled photos; :func:`face_model_files` says which model files it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from describe_local.see.faces.detect import Box, FaceModels, encode_faces, face_model_files, find_faces
from describe_local.see.faces.gallery import Gallery, GalleryPhoto, check_name
from describe_local.see.faces.recognize import face_distances, match_faces

if TYPE_CHECKING:
    import numpy as np

    from describe_local.images import Photo
    from describe_local.settings import Settings

__all__ = [
    "Box", "FaceFinder", "Gallery", "GalleryPhoto", "check_name", "face_distances", "face_model_files", "match_faces",
    "open_gallery",
]


def open_gallery(settings: Settings) -> Gallery:
    """The gallery at ``settings.known_faces`` (the folder need not exist until someone is added).

    Its photos are decoded and encoded with ``settings``. Raises
    :class:`~describe_local.errors.GalleryError` when the path is not a folder.
    """
    return Gallery.open(settings.known_faces, settings)


@dataclass
class FaceFinder:
    """The face models, loaded once, finding faces as the faces stage does."""

    models: FaceModels
    max_side: int
    upsample: int

    @classmethod
    def load(cls, settings: Settings) -> FaceFinder:
        """Load dlib's models (raises ``ModelNotInstalled`` when they are missing)."""
        return cls(FaceModels.load(), settings.face_max_side, settings.face_upsample)

    def faces(self, photo: Photo) -> tuple[list[Box], np.ndarray]:
        """Every face in ``photo``: boxes ``(top, right, bottom, left)`` and their 128-number encodings."""
        return find_faces(self.models, photo, self.max_side, self.upsample)

    def whole(self, photo: Photo) -> tuple[list[Box], np.ndarray]:
        """``photo`` taken as one face filling it (a face chip already cut and aligned)."""
        width, height = photo.size
        boxes = [Box(0, width - 1, height - 1, 0)]
        return boxes, encode_faces(self.models, photo.array, boxes)
