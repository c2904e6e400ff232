"""The names of people in the gallery: what a new person's folder may be called."""

from __future__ import annotations

import os
import unicodedata

from describe_local.errors import GalleryError

MAX_NAME_LENGTH = 100
# Windows cannot store these in a folder name; refuse them so a gallery can be copied there.
_FORBIDDEN_CHARS = frozenset('/\\:*?"<>|')


def check_name(name: str) -> str:
    """The person's name as it will be stored (NFC, trimmed), or :class:`GalleryError`.

    The name becomes a folder name inside the gallery, so it cannot be empty,
    ``.``/``..``, hidden, or contain a path separator or control character;
    spaces and letters of any alphabet are fine.
    """
    cleaned = unicodedata.normalize("NFC", name).strip()
    shown = repr(name)
    if not cleaned:
        raise GalleryError("a person's name cannot be empty")
    bad = sorted({c for c in cleaned if c in _FORBIDDEN_CHARS})
    if bad:
        raise GalleryError(f"{shown} cannot be a person's name: it must not contain {' '.join(bad)}")
    if cleaned.startswith("."):  # also "." and ".."
        raise GalleryError(f"{shown} cannot be a person's name: it must not start with a dot")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} for c in cleaned):
        raise GalleryError(f"{shown} cannot be a person's name: it contains control characters")
    if not any(c.isalnum() for c in cleaned):
        raise GalleryError(f"{shown} cannot be a person's name: it has no letters or digits")
    if len(cleaned) > MAX_NAME_LENGTH or len(os.fsencode(cleaned)) > 255:
        raise GalleryError(f"a person's name can be at most {MAX_NAME_LENGTH} characters")
    return cleaned
