"""The MP3s of recent descriptions, kept in memory until their URL expires.

Nothing is written to disk. Each clip is dropped when its signed URL expires
(checked on every store and fetch, and by the app's periodic sweep); the
oldest clips also go first when the total would pass ``max_bytes``, so that a
burst of requests cannot grow the process without bound.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Clip:
    data: bytes
    expires: int


@dataclass
class AudioStore:
    """MP3 bytes by random id, each with an expiry time."""

    ttl_s: float
    max_bytes: int = 256 * 1024 * 1024
    clock: Callable[[], float] = time.time  # Unix seconds; tests pass their own
    _clips: OrderedDict[str, _Clip] = field(default_factory=OrderedDict, init=False, repr=False)
    _bytes: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def put(self, mp3: bytes, *, now: float | None = None) -> tuple[str, int]:
        """Keep ``mp3``; return its new id and its expiry time (whole Unix seconds, as URLs carry)."""
        now = self.clock() if now is None else now
        clip_id = secrets.token_urlsafe(16)
        expires = int(now + self.ttl_s)
        with self._lock:
            self._sweep(now)
            self._clips[clip_id] = _Clip(mp3, expires)
            self._bytes += len(mp3)
            while self._bytes > self.max_bytes and len(self._clips) > 1:
                _, old = self._clips.popitem(last=False)
                self._bytes -= len(old.data)
        return clip_id, expires

    def get(self, clip_id: str, *, now: float | None = None) -> bytes | None:
        """The MP3 with ``clip_id``, or None when it is unknown or has expired."""
        now = self.clock() if now is None else now
        with self._lock:
            self._sweep(now)
            clip = self._clips.get(clip_id)
            return clip.data if clip else None

    def sweep(self, *, now: float | None = None) -> int:
        """Drop expired clips; return how many are left."""
        with self._lock:
            self._sweep(self.clock() if now is None else now)
            return len(self._clips)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._clips)

    def _sweep(self, now: float) -> None:
        # Clips are kept in insertion order and share one TTL, so the expired
        # ones are at the front.
        while self._clips:
            clip_id, clip = next(iter(self._clips.items()))
            if clip.expires > now:
                break
            del self._clips[clip_id]
            self._bytes -= len(clip.data)
