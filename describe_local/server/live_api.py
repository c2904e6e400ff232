"""The two URLs of a streamed description (see ``live.py``): its MP3 as it is spoken, and its events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from describe_local.errors import AudioGone
from describe_local.server.deps import State
from describe_local.server.live import AUDIO_PATH, EVENTS_PATH, Live

router = APIRouter(prefix="/api")
POLL_S = 0.02  # how often a reader looks for more while the description is being made
T = TypeVar("T")


def _find(state: Any, path: str, live_id: str, expires: str | None, sig: str | None) -> Live:
    state.signer.verify(path.format(live_id=live_id), expires, sig)
    live = state.live.get(live_id)
    if live is None:
        raise AudioGone("this description is no longer kept; describe the photo again")
    return live


async def _follow(live: Live, items: Callable[[], Sequence[Any]], joined: Callable[[Sequence[Any]], T]
                  ) -> AsyncIterator[T]:
    """What is appended to ``items()`` (audio bytes, events) as it comes, until the description is done."""
    sent = 0
    while True:
        ended = live.done  # read before the items: nothing appended after it is missed
        now = items()
        if len(now) > sent:
            batch = now[sent:]
            sent += len(batch)
            yield joined(batch)
        elif ended:
            return
        else:
            await asyncio.sleep(POLL_S)


@router.get("/live/{live_id}.mp3", response_class=StreamingResponse,
            responses={200: {"content": {"audio/mpeg": {}}, "description": "the MP3, as it is spoken"},
                       403: {"description": "the link was changed or has expired"},
                       410: {"description": "the description is gone"}})
async def live_audio(live_id: str, state: State, expires: str | None = None,
                     sig: str | None = None) -> StreamingResponse:
    """A streamed description's speech: MP3 frames from the first part on, until the end."""
    live = _find(state, AUDIO_PATH, live_id, expires, sig)
    frames = _follow(live, lambda: live.audio, bytes)
    return StreamingResponse(frames, media_type="audio/mpeg", headers={"Cache-Control": "no-store"})


@router.get("/live/{live_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "sentence events as they are spoken, then done (or error)"}})
async def live_events(live_id: str, state: State, expires: str | None = None,
                      sig: str | None = None) -> StreamingResponse:
    """A streamed description's sentences as Server-Sent Events, then the whole result."""
    live = _find(state, EVENTS_PATH, live_id, expires, sig)
    messages = _follow(live, lambda: live.events, "".join)
    return StreamingResponse(messages, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
