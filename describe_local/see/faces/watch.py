"""Notice changes to the gallery folder, however they were made (CLI, web, or by hand).

A running server must never name a person who was removed, nor miss one who was
added, by another process. Before each photo the describer compares a cheap
stamp of the folder (the names, sizes and modification times of every person
folder and photo: one ``stat`` each) with the one it last loaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

Stamp = tuple[tuple[str, int, int], ...]


def gallery_stamp(folder: Path) -> Stamp:
    """``(relative path, size, mtime_ns)`` of every person folder and file in ``folder``, sorted.

    The encodings cache is left out: it changes when the gallery is read, not
    when it is changed. A missing folder has an empty stamp.
    """
    entries: list[tuple[str, int, int]] = []
    try:
        people = list(os.scandir(folder))
    except OSError:
        return ()
    for person in people:
        if person.name.startswith("."):
            continue
        try:
            info = person.stat()
            entries.append((person.name, info.st_size, info.st_mtime_ns))
            if person.is_dir():
                for photo in os.scandir(person.path):
                    info = photo.stat()
                    entries.append((f"{person.name}/{photo.name}", info.st_size, info.st_mtime_ns))
        except OSError:  # removed while we looked: the next look sees it gone
            entries.append((person.name, -1, -1))
    return tuple(sorted(entries))


class GalleryWatch:
    """Says whether the gallery changed since :meth:`mark` was last called."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._seen: Stamp | None = None
        self._lock = threading.Lock()

    def mark(self) -> None:
        """Remember the gallery as it is now (call right before loading it)."""
        with self._lock:
            self._seen = gallery_stamp(self.folder)

    def changed(self) -> bool:
        """Whether the gallery differs from the last :meth:`mark`."""
        stamp = gallery_stamp(self.folder)
        with self._lock:
            return stamp != self._seen
