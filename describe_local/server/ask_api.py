"""Photos kept in memory after they came: questions about a described photo, and photos shared
to the app from another one.

- ``POST /api/ask`` (``photo_id`` + ``question``): the answer as text and a signed MP3,
  from the photo ``/api/describe`` kept for ``ask_ttl_s`` seconds. The same token rules,
  queue and limits as describing.
- ``POST /share``: the Web Share Target of the manifest. The shared photo waits in memory
  (a minute at most) and the page opens with its id in the URL's fragment, fetches it from
  ``GET /api/shared/{id}`` (once) and describes it as if it had been chosen there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from describe_local.errors import (
    BadUpload,
    DescribeLocalError,
    ModelNotInstalled,
    PhotoGone,
    PhotoNotKept,
    QuestionsUnavailable,
)
from describe_local.results import DescribeOptions
from describe_local.server.deps import Job, State, describe_token, job_form, photo_memory, shared_memory
from describe_local.server.describe_api import signed_audio
from describe_local.server.photo_memory import PhotoMemory
from describe_local.server.redact import redact_tree, server_folders
from describe_local.server.uploads import multipart_schema, read_form

log = logging.getLogger(__name__)

router = APIRouter()
MAX_ASK_BODY = 64 * 1024  # two short text fields
MAX_QUESTION_CHARS = 500  # the model reads far less; the describer cuts it with a note
SHARE_TTL_S = 60  # the page fetches a shared photo as soon as it opens
_PHOTO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
NO_MODEL = "No model here can answer questions about photos"


@dataclass
class AskResponse:
    """The answer to a question about a kept photo, and where to fetch it spoken."""

    question: str
    answer: str
    notes: list[str] = field(default_factory=list)  # e.g. the question was cut to what the model reads
    timings_ms: dict[str, float] = field(default_factory=dict)
    audio_url: str | None = None  # signed URL of the MP3; it expires
    audio_expires: int | None = None  # when audio_url stops working (Unix time)


_ASK_SCHEMA = multipart_schema(["photo_id", "question"], {
    "photo_id": {"type": "string", "description": "the photo_id /api/describe gave"},
    "question": {"type": "string", "description": "the question, in English, e.g. what colour is the car?"},
})


@router.post(
    "/api/ask",
    response_model=AskResponse,
    openapi_extra=_ASK_SCHEMA,
    responses={
        401: {"description": "a token is needed"},
        404: {"description": "no photo has this id"},
        410: {"description": "the photo is no longer kept; describe it again"},
        503: {"description": "no model here answers questions, busy (see Retry-After) or still loading"},
        504: {"description": "over the time budget"},
    },
)
async def ask(
    job: Annotated[Job, Depends(job_form(max_bytes=MAX_ASK_BODY))],
    kept: Annotated[PhotoMemory, Depends(photo_memory)],
) -> AskResponse:
    """Answer a question about a photo described a moment ago, as text and a signed URL of the spoken MP3."""
    state, describer, form = job.state, job.describer, job.form
    photo_id, question = form.text("photo_id"), form.text("question")
    if not photo_id:
        raise BadUpload("send the photo_id that came with the description, in the form field 'photo_id'")
    if not question:
        raise BadUpload("ask a question about the photo, in the form field 'question'")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadUpload(f"the question is too long: ask in fewer than {MAX_QUESTION_CHARS} characters")
    if not (kept.enabled and kept.answers_questions and describer.status()["caption"].loaded):
        raise QuestionsUnavailable(NO_MODEL)
    photo = _kept_photo(kept, photo_id, kept.get)

    try:
        result = await state.jobs.run(describer.ask, photo, question, DescribeOptions(lang="en"))
    except ModelNotInstalled:
        # The caption model cannot answer: say so from now on, and keep no photos for nothing.
        kept.answers_questions = False
        kept.forget_all()
        raise QuestionsUnavailable(NO_MODEL) from None
    notes = result.notes if job.admin else redact_tree(result.notes, server_folders(state.settings))
    response = AskResponse(question=result.question, answer=result.answer, notes=notes, timings_ms=result.timings_ms)
    response.audio_url, response.audio_expires = signed_audio(state, result.mp3)
    log.info("answered a question in %.0f ms", result.timings_ms.get("total", 0.0))  # never the question itself
    return response


@router.post("/share", include_in_schema=False)
async def share_target(
    request: Request,
    state: State,
    shared: Annotated[PhotoMemory, Depends(shared_memory)],
) -> Response:
    """A photo shared from another app (the manifest's share_target): kept in memory, then the page opens.

    The photo is only held, not described, until the page that fetches it sends it to
    ``/api/describe``. Where describing needs a token, sharing needs it too (checked before the
    body is read), so that no one can fill the server's memory without it."""
    # Not deps.job_form, on purpose: nothing runs here, so no ready describer (sharing works while
    # the models load) and no queue slot; and a refusal is a redirect, not JSON.
    settings = state.settings
    if settings.require_token_for_describe:
        try:
            describe_token(request, state, request.headers.get("authorization"))
        except DescribeLocalError as exc:
            log.info("refused a shared photo: %s", type(exc).__name__)
            return RedirectResponse("/#shared=needs-token", status_code=303)
    try:
        form = await read_form(request, settings.max_upload_bytes, settings.request_timeout_s)
    except DescribeLocalError as exc:  # a page, not JSON: the listener arrived by a navigation
        log.info("refused a shared photo: %s", type(exc).__name__)
        return RedirectResponse("/#shared=failed", status_code=303)
    files = [p for p in form.parts if p.filename is not None and p.data]
    if not files:
        return RedirectResponse("/#shared=failed", status_code=303)
    photo_id, _ = shared.put(files[0].data)
    log.info("kept a shared photo for the page")
    # In the fragment: it never reaches a log, nor a Referer.
    return RedirectResponse(f"/#shared={photo_id}", status_code=303)


@router.get(
    "/api/shared/{photo_id}",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}, "description": "the shared photo, once"},
               404: {"description": "no photo has this id"}, 410: {"description": "it is no longer kept"}},
)
async def shared_photo(photo_id: str, shared: Annotated[PhotoMemory, Depends(shared_memory)]) -> Response:
    """A photo shared to the app, handed to the page once and then forgotten."""
    data = _kept_photo(shared, photo_id, shared.pop)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


def _kept_photo(memory: PhotoMemory, photo_id: str, take: Callable[[str], bytes | None]) -> bytes:
    """The photo ``take(photo_id)`` returns, or :class:`PhotoGone` (410) / :class:`PhotoNotKept` (404)."""
    if not _PHOTO_ID.fullmatch(photo_id):
        raise PhotoNotKept("no photo has this id; describe the photo, then ask about it")
    data = take(photo_id)
    if data is not None:
        return data
    if memory.expired(photo_id):
        minutes = max(1, round(memory.ttl_s / 60))
        raise PhotoGone(
            f"this photo is no longer kept (photos are kept for {minutes} minute{'s' if minutes != 1 else ''}); "
            "take or choose it again to ask about it"
        )
    raise PhotoNotKept("no photo has this id; describe the photo, then ask about it")
