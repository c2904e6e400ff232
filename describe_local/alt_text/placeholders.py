"""Alts that say nothing: file names, camera names, a bare "image" or "logo", the ``src`` itself,
and one alt on many different images. They are treated as missing (``alt-text`` replaces them
unless ``--keep-placeholders``) and listed in the report.

Pure logic over an alt and its image's URL; the repeated alts are found over a whole site.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

__all__ = ["REPEATED_ON", "Placeholder", "normalised", "placeholder", "repeated_alts"]

REPEATED_ON = 3  # one alt on this many different image files says nothing about each of them
_IMAGE_FILE = re.compile(r"^[^\s/\\]+\.(?:jpe?g|jfif|png|gif|webp|avif|bmp|tiff?|heic|heif|svg|ico)$", re.IGNORECASE)
_CAMERA_NAME = re.compile(r"^(?:img|dsc|dscn|dscf|dcim|pxl|mvimg|photo|image|screenshot|screen shot|gopr|sam|p|"
                          r"pic|picture|scan|wp|whatsapp image)[\s_-]*\d[\w\s.:-]*$", re.IGNORECASE)
_GENERIC = frozenset({
    "image", "img", "photo", "photograph", "picture", "pic", "graphic", "graphics", "logo", "icon", "banner",
    "thumbnail", "thumb", "figure", "illustration", "spacer", "blank", "placeholder", "untitled", "alt", "alt text",
    "alttext", "null", "none", "undefined", "todo", "tbd", "default", "image description", "insert alt text",
    "description", "photo description", "image alt", "img alt", "foto", "bild", "imagen", "imagem", "immagine",
})
_ARTICLE = re.compile(r"^(?:an?|the|this|my|our)\s+", re.IGNORECASE)


class Placeholder(enum.Enum):
    """Why an alt is a placeholder rather than a description."""

    FILE_NAME = "a file name"
    CAMERA_NAME = "a camera's file name"
    GENERIC = "a word that says only that it is an image"
    SOURCE = "the image's own address"
    NO_WORDS = "no words at all"
    REPEATED = f"the same alt on {REPEATED_ON} or more different images"


def normalised(alt: str) -> str:
    """An alt as compared with others: one line, case folded, without a closing full stop."""
    return " ".join(alt.split()).casefold().rstrip(".")


def placeholder(alt: str, src: str | None = None) -> Placeholder | None:
    """Why ``alt`` (of the image at ``src``) says nothing, or None when it may say something.
    ``alt=""`` is not a placeholder: it marks a decorative image."""
    text = " ".join(alt.split())
    if not text:
        return None
    if src and _same_as_source(text, src):
        return Placeholder.SOURCE
    if _IMAGE_FILE.match(text):
        return Placeholder.FILE_NAME
    if _CAMERA_NAME.match(text):
        return Placeholder.CAMERA_NAME
    if _ARTICLE.sub("", text.casefold().rstrip(".:")).strip() in _GENERIC:
        return Placeholder.GENERIC
    if not any(c.isalpha() for c in text):
        return Placeholder.NO_WORDS
    return None


def repeated_alts(uses: Iterable[tuple[str, object]], at_least: int = REPEATED_ON) -> set[str]:
    """The alts (:func:`normalised`) given to ``at_least`` different images: ``uses`` holds
    ``(alt, image)`` pairs, ``image`` anything that tells images apart (a resolved path)."""
    images: dict[str, set[object]] = {}
    for alt, image in uses:
        key = normalised(alt)
        if key:
            images.setdefault(key, set()).add(image)
    return {alt for alt, seen in images.items() if len(seen) >= at_least}


def _same_as_source(alt: str, src: str) -> bool:
    """The alt is the URL, the file's name, or its name without the extension."""
    path = unquote(urlsplit(src.strip()).path)
    name = path.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    candidates = {src.strip().casefold(), path.casefold(), name.casefold(), stem.casefold()} - {""}
    return alt.casefold() in candidates
