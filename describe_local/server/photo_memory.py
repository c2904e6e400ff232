"""Photos kept in memory for a few minutes, under unguessable ids: never on disk.

A described photo is kept so that the listener can ask about it
(``POST /api/ask``), and a photo shared to the app from another one (the Web
Share Target) waits here until the page fetches it. Each memory is bounded:
a photo expires ``ttl_s`` after it came, and beyond ``max_photos`` or
``max_bytes`` the oldest goes first. An id that expired is remembered for a
while (not its photo), so that the answer can say "no longer kept" rather than
"unknown".
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

FORGOTTEN_IDS = 1000  # expired ids remembered, for a truthful "expired" answer


@dataclass
class _Kept:
    data: bytes
    expires: float


@dataclass
class PhotoMemory:
    """Photo bytes by random id, each with an expiry time; thread-safe."""

    ttl_s: float
    max_photos: int
    max_bytes: int = 256 * 1024 * 1024
    clock: Callable[[], float] = time.time  # Unix seconds; tests pass their own
    # Set once a question finds no model that answers: photos are then not kept for nothing.
    answers_questions: bool = True
    _photos: OrderedDict[str, _Kept] = field(default_factory=OrderedDict, init=False, repr=False)
    _expired: OrderedDict[str, None] = field(default_factory=OrderedDict, init=False, repr=False)
    _bytes: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def enabled(self) -> bool:
        """Whether photos are kept at all (``max_photos`` 0 turns it off)."""
        return self.max_photos > 0

    def put(self, data: bytes) -> tuple[str, int]:
        """Keep ``data``; return its new id (192 random bits) and when it expires (whole Unix seconds)."""
        now = self.clock()
        photo_id = secrets.token_urlsafe(24)
        with self._lock:
            self._sweep(now)
            self._photos[photo_id] = _Kept(data, now + self.ttl_s)
            self._bytes += len(data)
            while self._photos and (len(self._photos) > self.max_photos or self._bytes > self.max_bytes):
                self._drop(next(iter(self._photos)))
        return photo_id, int(now + self.ttl_s)

    def get(self, photo_id: str) -> bytes | None:
        """The photo with ``photo_id``, or None when it is unknown or has expired."""
        with self._lock:
            self._sweep(self.clock())
            kept = self._photos.get(photo_id)
            return kept.data if kept else None

    def pop(self, photo_id: str) -> bytes | None:
        """The photo with ``photo_id``, forgotten as it is handed out (None as for :meth:`get`)."""
        with self._lock:
            self._sweep(self.clock())
            if photo_id not in self._photos:
                return None
            data = self._photos[photo_id].data
            self._drop(photo_id)
            return data

    def expired(self, photo_id: str) -> bool:
        """True when ``photo_id`` was kept here once and is gone (expired or pushed out)."""
        with self._lock:
            return photo_id in self._expired

    def forget_all(self) -> None:
        """Drop every photo (no model answers questions, or the server stops)."""
        with self._lock:
            for photo_id in list(self._photos):
                self._drop(photo_id)

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self.clock())
            return len(self._photos)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def _sweep(self, now: float) -> None:
        # One TTL for all, kept in insertion order: the expired ones are at the front.
        while self._photos:
            photo_id, kept = next(iter(self._photos.items()))
            if kept.expires > now:
                break
            self._drop(photo_id)

    def _drop(self, photo_id: str) -> None:
        kept = self._photos.pop(photo_id)
        self._bytes -= len(kept.data)
        self._expired[photo_id] = None
        while len(self._expired) > FORGOTTEN_IDS:
            self._expired.popitem(last=False)
