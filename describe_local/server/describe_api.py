"""``POST /api/describe`` and the signed audio it points to."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from describe_local.audio import encode_mp3
from describe_local.errors import AudioGone, BadField, BadUpload, JobTimeout
from describe_local.results import DescribeOptions, Description, Findings
from describe_local.server.deps import Job, State, job_form, photo_memory
from describe_local.server.live import signed_urls
from describe_local.server.photo_memory import PhotoMemory
from describe_local.server.redact import redact_paths, redact_tree, server_folders
from describe_local.server.state import ServerState
from describe_local.server.uploads import Form, multipart_schema, one_photo

if TYPE_CHECKING:
    from describe_local.pipeline import Describer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")
AUDIO_PATH = "/api/audio/{clip_id}.mp3"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
MAX_LANG_CHARS = 35  # the longest language tag worth having
MAX_VOICE_CHARS = 100  # voice keys are about 25
DETAILS = ("short", "detailed")  # the first is the default


@dataclass(kw_only=True)
class DescribeResponse(Findings):
    """A description (the same findings the CLI prints as JSON) and where to fetch its MP3."""

    audio_url: str | None = None  # signed URL of the MP3; it expires
    audio_expires: int | None = None  # when audio_url stops working (Unix time)
    photo_id: str | None = None  # to ask about the photo (POST /api/ask); None where no model answers
    photo_expires: int | None = None  # when the photo is forgotten (Unix time)


# What a route that takes a photo may answer besides 200 (the same for describing and reading).
_PHOTO_RESPONSES: dict[int | str, dict] = {
    401: {"description": "a token is needed"},
    413: {"description": "the photo is over the size limit"},
    415: {"description": "not an image this server can read"},
    503: {"description": "busy (see Retry-After) or still loading"},
    504: {"description": "over the time budget"},
}
_FORM_SCHEMA = multipart_schema(["photo"], {
    "photo": {"type": "string", "format": "binary", "description": "the photo"},
    "lang": {"type": "string", "description": "language to speak, e.g. en, es"},
    "voice": {"type": "string", "description": "voice key, e.g. en_US-joe-medium"},
    "detail": {"type": "string", "enum": list(DETAILS), "default": DETAILS[0],
               "description": "short: the first lines of any text; detailed: all the text read"},
    "stream": {"type": "boolean", "default": False,
               "description": "answer at once with audio_url (MP3 as it is spoken) and events_url (Server-Sent "
                              "Events: each sentence, then this route's usual JSON as 'done')"},
})


@router.post(
    "/describe",
    response_model=DescribeResponse,
    openapi_extra=_FORM_SCHEMA,
    responses=_PHOTO_RESPONSES,
)
async def describe(
    job: Annotated[Job, Depends(job_form())],
    kept: Annotated[PhotoMemory, Depends(photo_memory)],
) -> DescribeResponse | JSONResponse:
    """Describe a photo: text, what was found, and a signed URL of the spoken MP3.

    The photo stays in memory for ``ask_ttl_s`` seconds under ``photo_id``, for questions
    about it (``POST /api/ask``), where a loaded model answers questions. With ``stream=true``
    the answer comes once the photo is decoded: ``audio_url`` (the MP3 as it is spoken) and
    ``events_url`` (each sentence as it is spoken, then this JSON as the ``done`` event)."""
    state, describer, settings = job.state, job.describer, job.state.settings
    photo = one_photo(job.form, settings)
    options = _options(job.form, describer)
    if job.form.flag("stream"):
        return await _stream(job, kept, photo.data, options)

    result = await state.jobs.run(describer.describe, photo.data, options)
    return _response(job, kept, photo.data, result)


_READ_SCHEMA = multipart_schema(["photo"], {
    "photo": {"type": "string", "format": "binary", "description": "the photo of a page, a letter, a label"},
    "lang": {"type": "string", "description": "language to speak, e.g. en, es"},
    "voice": {"type": "string", "description": "voice key, e.g. en_US-joe-medium"},
})


@router.post(
    "/read",
    response_model=DescribeResponse,
    openapi_extra=_READ_SCHEMA,
    responses=_PHOTO_RESPONSES,
)
async def read(
    job: Annotated[Job, Depends(job_form())],
    kept: Annotated[PhotoMemory, Depends(photo_memory)],
) -> DescribeResponse:
    """Read all the text in a photo, in reading order (the text stage alone, as ``describe-local
    read`` does): the text, its lines with their boxes, and a signed URL of the spoken MP3."""
    photo = one_photo(job.form, job.state.settings)
    options = dataclasses.replace(_options(job.form, job.describer), all_text=True)
    result = await job.state.jobs.run(job.describer.read, photo.data, options)
    return _response(job, kept, photo.data, result)


MAX_SPEAK_CHARS = 1000  # a few lines of text at a time: live text's lines, a page's paragraph

_SPEAK_SCHEMA = multipart_schema(["text"], {
    "text": {"type": "string", "description": f"what to say, at most {MAX_SPEAK_CHARS} characters, in `lang`"},
    "lang": {"type": "string", "description": "the text's language, e.g. en, fr (its default voice speaks it)"},
    "voice": {"type": "string", "description": "voice key, e.g. en_US-joe-medium"},
})


@dataclass
class SpeakResponse:
    """Where to fetch the MP3 of the text spoken, and which voice spoke it."""

    audio_url: str | None
    audio_expires: int | None
    voice: str


@router.post(
    "/speak",
    response_model=SpeakResponse,
    openapi_extra=_SPEAK_SCHEMA,
    responses={
        401: {"description": "a token is needed"},
        503: {"description": "busy (see Retry-After), still loading, or no voice"},
        504: {"description": "over the time budget"},
    },
)
async def speak(job: Annotated[Job, Depends(job_form(max_bytes=64 * 1024))]) -> SpeakResponse:
    """Say a short text in one of the server's voices (live text reads its lines with it for a
    listener who prefers the app's voice to their screen reader's): a signed URL of the MP3."""
    text = (job.form.text("text") or "").strip()
    if not text:
        raise BadUpload("send the text to say, in the form field 'text'")
    if len(text) > MAX_SPEAK_CHARS:
        raise BadUpload(f"the text is too long: send at most {MAX_SPEAK_CHARS} characters at a time")
    options = _options(job.form, job.describer)
    speech = await job.state.jobs.run(job.describer.speak, text, options.lang or "en", options)
    url, expires = signed_audio(job.state, encode_mp3(speech.pcm, speech.sample_rate))
    return SpeakResponse(audio_url=url, audio_expires=expires, voice=speech.voice)


def _response(job: Job, kept: PhotoMemory, photo: bytes, result: Description) -> DescribeResponse:
    """What the route answers for a description: its findings (without the server's folders for
    anyone but the admin), the signed URL of its MP3, and the photo's id for questions."""
    state, describer, settings = job.state, job.describer, job.state.settings
    findings = result.findings()
    if not job.admin:  # the stages' messages may name the server's folders
        folders = server_folders(settings)
        for key in ("errors", "notes"):
            findings[key] = redact_tree(findings[key], folders)
        findings["stages"] = {stage: dataclasses.replace(done, detail=redact_tree(done.detail, folders))
                              for stage, done in findings["stages"].items()}
    response = DescribeResponse(**findings)
    response.audio_url, response.audio_expires = signed_audio(state, result.mp3)
    if kept.enabled and kept.answers_questions and describer.status()["caption"].loaded:
        response.photo_id, response.photo_expires = kept.put(photo)
    # Timings only: the text and names stay out of the logs.
    log.info("described a photo in %.0f ms", result.timings_ms.get("total", 0.0))
    return response


async def _stream(job: Job, kept: PhotoMemory, photo: bytes, options: DescribeOptions) -> JSONResponse:
    """Start a streamed description and answer once the photo is decoded (a photo that cannot be
    decoded is refused here, as without ``stream``); the rest is made in the job queue's worker."""
    state, describer = job.state, job.describer
    live_id, live = state.live.new()
    accepted: cf.Future[None] = cf.Future()

    def work() -> None:
        try:
            parts = describer.tell(photo, options)  # decodes the photo, or raises
        except BaseException as exc:
            accepted.set_exception(exc)
            return
        accepted.set_result(None)
        folders = server_folders(job.state.settings)
        live.speak(parts, lambda result: jsonable_encoder(_response(job, kept, photo, result)),
                   (lambda text: text) if job.admin else (lambda text: redact_paths(text, folders)))

    state.jobs.submit(work)
    try:
        await asyncio.wait_for(asyncio.wrap_future(accepted), state.jobs.timeout_s)
    except TimeoutError:
        raise JobTimeout("the photo was not taken up in time; try again in a few seconds") from None
    return JSONResponse(signed_urls(state, live_id, live))


@router.get(
    "/audio/{clip_id}.mp3",
    response_class=Response,
    responses={
        200: {"content": {"audio/mpeg": {}}, "description": "the MP3"},
        206: {"description": "part of the MP3 (Range request)"},
        403: {"description": "the link was changed or has expired"},
        410: {"description": "the clip is gone"},
    },
)
async def audio(
    clip_id: str,
    request: Request,
    state: State,
    expires: str | None = None,
    sig: str | None = None,
) -> Response:
    """The MP3 of a description, at the signed URL that came with it."""
    state.signer.verify(AUDIO_PATH.format(clip_id=clip_id), expires, sig)
    data = state.audio.get(clip_id)
    if data is None:
        raise AudioGone("this audio is no longer kept; describe the photo again")
    max_age = max(0, int(expires or 0) - int(state.signer.clock()))
    headers = {"Accept-Ranges": "bytes", "Cache-Control": f"private, max-age={max_age}"}
    # Safari plays audio only from servers that answer byte ranges.
    span = _byte_range(request.headers.get("range"), len(data))
    if span is None:
        return Response(data, media_type="audio/mpeg", headers=headers)
    start, end = span
    if start >= len(data) or start > end:
        headers["Content-Range"] = f"bytes */{len(data)}"
        return Response(status_code=416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return Response(data[start : end + 1], status_code=206, media_type="audio/mpeg", headers=headers)


def signed_audio(state: ServerState, mp3: bytes | None) -> tuple[str | None, int | None]:
    """Keep ``mp3`` for ``audio_ttl_s``; its signed URL and expiry time (None, None without audio)."""
    if not mp3:
        return None, None
    clip_id, expires = state.audio.put(mp3)
    return state.signer.sign_until(AUDIO_PATH.format(clip_id=clip_id), expires), expires


def _options(form: Form, describer: Describer) -> DescribeOptions:
    """The listener's language, voice and detail, each one the server offers (:class:`BadField`, 422,
    if not). Anything else would be spoken back ("xyz is not available, ...") or looked up on disk."""
    tags, voices = {"en"}, set()
    for info in describer.languages():
        tags.add(info.code.casefold())
        for voice in info.voices:
            voices.add(str(voice["key"]))
            tags.add(str(voice["dialect"]).casefold())
    lang = _offered(form, "lang", MAX_LANG_CHARS, lambda v: v.replace("-", "_").casefold() in tags)
    voice = _offered(form, "voice", MAX_VOICE_CHARS, lambda v: v in voices)
    detail = _offered(form, "detail", max(map(len, DETAILS)), lambda v: v.casefold() in DETAILS) or DETAILS[0]
    return DescribeOptions(lang=lang, voice=voice, all_text=detail.casefold() == "detailed")


def _offered(form: Form, name: str, max_chars: int, known: Callable[[str], bool]) -> str | None:
    """Text field ``name`` when ``known`` accepts it; None when it is absent or blank."""
    part = form.field(name)
    if part is None:
        return None
    what = {"lang": "language", "detail": "level of detail (short or detailed)"}.get(name, name)
    if len(part.data) > max_chars:
        raise BadField(f"the field {name!r} is too long to be a {what}")
    value = part.data.decode("utf-8", "replace").strip()
    if not value:
        return None
    if not known(value):
        raise BadField(f"that {what} is not offered by this server; choose one from its list")
    return value


# Some players ask for the size first.
router.add_api_route("/audio/{clip_id}.mp3", audio, methods=["HEAD"], include_in_schema=False)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of a single-range ``Range`` header, or None for the whole file."""
    match = _RANGE.match((header or "").strip())
    if not match or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        return max(0, size - int(last)), size - 1
    return int(first), min(int(last), size - 1) if last else size - 1
