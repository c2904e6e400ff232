"""Streamed descriptions: the first words play while the rest is still being worked out.

``POST /api/describe`` with ``stream=true`` answers once the photo is decoded, with two
signed URLs: ``audio_url``, an ``audio/mpeg`` stream that starts with the first part of the
description and grows until the end, and ``events_url``, Server-Sent Events: a ``sentence``
event for each part as it is spoken (``{"text", "language"}``), then ``done`` with the same
JSON a plain POST returns (or ``error`` with ``{"detail"}``). Both can be read while the
description is made, by any number of readers, until they expire like other audio.

The describer runs in the job queue's worker thread (``Describer.tell``); it appends to a
:class:`Live` that the readers (``live_api.py``) poll. Nothing is written to disk.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from describe_local.errors import DescribeLocalError, first_line
from describe_local.results import Description, Said

log = logging.getLogger(__name__)

AUDIO_PATH = "/api/live/{live_id}.mp3"
EVENTS_PATH = "/api/live/{live_id}/events"


@dataclass
class Live:
    """One description as it is made: MP3 bytes and events, appended by one writer thread."""

    expires: int
    audio: bytearray = field(default_factory=bytearray)
    events: list[str] = field(default_factory=list)  # each a whole SSE message
    done: bool = False

    def add_event(self, name: str, data: dict[str, Any]) -> None:
        self.events.append(f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n")

    def speak(self, parts: Any, respond: Callable[[Description], dict[str, Any]],
              redact: Callable[[str], str] = str) -> None:
        """Take ``Describer.tell``'s parts until the end (in the worker thread): each part's audio
        and sentence as it comes, then ``respond(description)`` as the ``done`` event; an error's
        words pass through ``redact`` (no server folders for anyone but the admin)."""
        try:
            for part in parts:
                if isinstance(part, Said):
                    self.audio += part.mp3
                    if part.text:
                        self.add_event("sentence", {"text": part.text, "language": part.language})
                else:
                    self.add_event("done", respond(part))
        except DescribeLocalError as exc:
            self.add_event("error", {"detail": redact(str(exc))})
        except Exception as exc:  # the readers must learn that it ended; the log has the rest
            log.exception("a streamed description failed")
            self.add_event("error", {"detail": redact(f"the description failed: {first_line(exc)}")})
        finally:
            self.done = True


@dataclass
class LiveStore:
    """The streamed descriptions by random id, each until its expiry time."""

    ttl_s: float
    clock: Callable[[], float] = time.time
    max_live: int = 64  # the oldest go first past this: a burst cannot grow the process without bound
    _live: OrderedDict[str, Live] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def new(self) -> tuple[str, Live]:
        now = self.clock()
        live_id, live = secrets.token_urlsafe(16), Live(int(now + self.ttl_s))
        with self._lock:
            for old_id in [i for i, old in self._live.items() if old.expires <= now]:
                del self._live[old_id]
            self._live[live_id] = live
            while len(self._live) > self.max_live:
                self._live.popitem(last=False)
        return live_id, live

    def get(self, live_id: str) -> Live | None:
        with self._lock:
            live = self._live.get(live_id)
        return live if live is not None and live.expires > self.clock() else None


def signed_urls(state: Any, live_id: str, live: Live) -> dict[str, Any]:
    """The response to a streamed POST: where to listen and where to follow."""
    sign = state.signer.sign_until
    return {"audio_url": sign(AUDIO_PATH.format(live_id=live_id), live.expires),
            "events_url": sign(EVENTS_PATH.format(live_id=live_id), live.expires),
            "audio_expires": live.expires, "stream": True}
