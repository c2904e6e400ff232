"""``POST /api/live-text``: one camera frame read, answered with the lines new to this listener and
any aiming guidance (see :mod:`describe_local.live_text`).

The page sends a downscaled frame a few times a second, the next only once the last is answered.
Frames go through the same token, limits and job queue as photos, are read in memory and never
kept (``keep_uploads`` does not apply to them). Each page has a session (its ``session`` field),
which remembers the lines it has heard; one frame per session, and two per client address,
are read at a time (429 otherwise), so one client cannot fill the queue.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from describe_local.errors import BadField, BadUpload
from describe_local.live_text import SENTENCES, LiveTextSessions, read_frame
from describe_local.server.deps import Job, client_address, job_form
from describe_local.server.uploads import multipart_schema

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a frame is sent at 640-1280 px: ~50-300 KB as JPEG
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")

_FRAME_SCHEMA = multipart_schema(["frame", "session"], {
    "frame": {"type": "string", "format": "binary", "description": "the camera frame (JPEG, PNG or WebP)"},
    "session": {"type": "string", "description": "an id the page makes (8-64 letters, digits, - or _), the same "
                                                 "for every frame of one live-text session"},
    "page": {"type": "boolean", "default": False,
             "description": "also say whether a page is wholly in view, for capturing a document"},
})


@dataclass
class LiveLine:
    text: str
    box: list[int]  # x0, y0, x1, y1 in the frame's pixels


@dataclass
class LiveTextResponse:
    """A frame's answer: the lines wholly in view, those to speak now, and guidance to speak (or null)."""

    lines: list[LiveLine]
    new: list[str]
    guidance: str | None  # the sentence, e.g. "Move the phone left."
    aim: str | None  # the same as a value: left, right, up, down, closer, farther, steady, no text
    page_ready: bool | None  # with page=true: the whole page is in view, take the photo now
    language: str | None  # of the text read (ISO 639-1), where it could be told: for POST /api/speak's lang
    ms: float


def live_text_sessions(request: Request) -> LiveTextSessions:
    """Every client's live-text session (``app.state.live_text``, made by ``create_app``)."""
    return request.app.state.live_text


@router.post(
    "/live-text",
    response_model=LiveTextResponse,
    openapi_extra=_FRAME_SCHEMA,
    responses={
        401: {"description": "a token is needed"},
        413: {"description": "the frame is over the size limit"},
        415: {"description": "not an image this server can read"},
        429: {"description": "a frame of this session (or two of this client) is still being read"},
        503: {"description": "busy (see Retry-After), still loading, or no text stage"},
        504: {"description": "over the time budget"},
    },
)
async def live_text(
    request: Request,
    job: Annotated[Job, Depends(job_form(max_bytes=MAX_FRAME_BYTES))],
    sessions: Annotated[LiveTextSessions, Depends(live_text_sessions)],
) -> LiveTextResponse:
    """Read the text in one camera frame: the lines wholly in view, the ones this session has not
    heard yet (to speak now), and at most one piece of aiming guidance."""
    frames = job.form.files("frame")
    if len(frames) != 1:
        raise BadUpload("send exactly one frame, in the form field 'frame'")
    session_id = job.form.text("session") or ""
    if not SESSION_ID.fullmatch(session_id):
        raise BadField("the field 'session' must be 8-64 letters, digits, - or _, the same for every frame")
    started = time.perf_counter()
    with sessions.frame(client_address(request), session_id) as session:
        answer = await job.state.jobs.run(read_frame, job.describer, frames[0].data, session, job.form.flag("page"))
    ms = (time.perf_counter() - started) * 1000
    log.debug("read a live frame in %.0f ms", ms)  # never the text itself
    return LiveTextResponse(
        lines=[LiveLine(line.text, list(line.box)) for line in answer.lines],
        new=answer.new,
        guidance=SENTENCES[answer.guidance] if answer.guidance else None,
        aim=answer.guidance.value if answer.guidance else None,
        page_ready=answer.page.ready if answer.page is not None else None,
        language=answer.language,
        ms=round(ms, 1),
    )
