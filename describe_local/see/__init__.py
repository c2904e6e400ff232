"""Seeing: the analysis stages that look at a photo.

Each stage is a small typed protocol, so that the describer can run any
implementation (a real model, or a fake one in the unit tests):

- :class:`CaptionStage` (``caption/``): one sentence about the whole photo;
  some models also answer questions (:class:`QuestionAnswerer`).
- :class:`FaceStage` (``faces/``): the known people in the photo and how many
  faces are unknown, against the gallery.
- :class:`TextStage` (``text``): the text in the photo and its language.

The stages run concurrently in the describer's thread pool, each with a time
budget; a stage that raises is reported in the description's ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from describe_local.images import Photo
    from describe_local.see.faces.gallery import Gallery
    from describe_local.see.faces.recognize import FaceResult
    from describe_local.see.text import TextReading


@runtime_checkable
class CaptionStage(Protocol):
    """Says in one sentence what a photo shows."""

    name: str

    def caption(self, image: Image.Image) -> str:
        """One English sentence describing ``image`` (8-bit RGB)."""
        ...


@dataclass(frozen=True)
class ModelAnswer:
    """A caption model's answer to a question, and notes on how it came about."""

    text: str
    notes: tuple[str, ...] = ()  # e.g. the question was cut to what the model reads


@runtime_checkable
class QuestionAnswerer(Protocol):
    """A caption model that also answers questions about a photo (OFA does)."""

    def answer(self, image: Image.Image, question: str) -> ModelAnswer:
        """A short English answer to ``question`` about ``image``."""
        ...


@runtime_checkable
class FaceStage(Protocol):
    """Finds faces and names the known people."""

    def recognize(self, photo: Photo) -> FaceResult:
        """Known names left to right, and how many faces are unknown."""
        ...

    def reload(self, gallery: Gallery) -> int:
        """Take the gallery's current encodings; returns how many people it knows."""
        ...


@runtime_checkable
class TextStage(Protocol):
    """Reads the text in a photo."""

    def read(self, photo: Photo) -> TextReading:
        """The text (``''`` when there is none) and its language."""
        ...
