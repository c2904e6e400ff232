"""``POST /api/alt-text``: alt text for one image, for web pages (the browser extension asks here).

One photo in (multipart field ``photo``; optional ``max_chars`` and ``names``), the alt text out
as JSON, with no audio. The same limits, token rules, queue and error codes as
``POST /api/describe``: a token where describing needs one (401, 429 after too many wrong
ones), 413 over the upload limit, 415 for what is not an image, 422 for a bad field, 503 busy
or loading, 504 over the time budget. People are counted, not named, unless ``names`` is true.

``GET /api/alt-text/token`` tells the extension's options page whether the token it was given
is taken for describing (401 if not), and whether it is the admin token (which it should not keep).

Included by ``server/app.py``: ``app.include_router(alt_text_api.router)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends

from describe_local.alt_text.wording import DEFAULT_MAX_CHARS, MAX_CHARS_RANGE, alt_text
from describe_local.errors import BadField
from describe_local.results import DescribeOptions
from describe_local.server.deps import Job, State, describe_token, job_form
from describe_local.server.redact import redact_tree, server_folders
from describe_local.server.uploads import Form, multipart_schema, one_photo

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
_LOW, _HIGH = MAX_CHARS_RANGE


@dataclass
class AltTextResponse:
    """Alt text for one image, and what it was made from."""

    alt: str  # one sentence of at most max_chars; "" when nothing was found to say (not "decorative")
    long_description: str  # every finding in whole sentences, for aria-describedby or a figcaption
    partial: bool  # a stage did not run (no caption model, or one failed): the alt says less than it could
    text_found: str | None = None  # all the text read in the image, lines in reading order
    errors: dict[str, str] = field(default_factory=dict)  # stage -> what went wrong, or why it is off
    timings_ms: dict[str, float] = field(default_factory=dict)


_FORM_SCHEMA = multipart_schema(["photo"], {
    "photo": {"type": "string", "format": "binary", "description": "the image"},
    "max_chars": {"type": "integer", "minimum": _LOW, "maximum": _HIGH, "default": DEFAULT_MAX_CHARS,
                  "description": "the longest alt text, in characters"},
    "names": {"type": "boolean", "default": False,
              "description": "name the known people (by default they are only counted)"},
})


@router.post(
    "/alt-text",
    response_model=AltTextResponse,
    summary="Alt text for an image",
    openapi_extra=_FORM_SCHEMA,
    responses={
        400: {"description": "not the multipart form expected (one image in the field 'photo')"},
        401: {"description": "a token is needed"},
        408: {"description": "the upload took too long"},
        413: {"description": "the image is over the size limit"},
        415: {"description": "not an image this server can read"},
        422: {"description": "max_chars or names has a value this server does not accept"},
        429: {"description": "too many wrong tokens from this address (see Retry-After)"},
        503: {"description": "busy (see Retry-After) or still loading"},
        504: {"description": "over the time budget"},
    },
)
async def alt_text_for_image(job: Annotated[Job, Depends(job_form())]) -> AltTextResponse:
    """Alt text for one image: one concise sentence (the caption first, a count of people, text
    that stands out), a longer description beside it, and whether it is partial. No audio."""
    state, describer, form, settings = job.state, job.describer, job.form, job.state.settings
    max_chars, names = _max_chars(form), _names(form)
    image = one_photo(form, settings, "image")

    result = await state.jobs.run(describer.describe, image.data, DescribeOptions(audio=False))
    made = alt_text(result, max_chars, names)
    errors = result.errors if job.admin else redact_tree(result.errors, server_folders(settings))
    # Timings only: the alt text and names stay out of the logs.
    log.info("alt text for an image in %.0f ms", result.timings_ms.get("total", 0.0))
    return AltTextResponse(alt=made.alt, long_description=made.long_description, partial=made.partial,
                           text_found=result.text_found, errors=errors, timings_ms=result.timings_ms)


@dataclass
class TokenCheck:
    """The token given was taken (or none is needed); ``admin``: it is the admin token."""

    needs_token: bool
    admin: bool


@router.get(
    "/alt-text/token",
    response_model=TokenCheck,
    summary="Check a describe token",
    responses={401: {"description": "the token is not taken"},
               429: {"description": "too many wrong tokens from this address (see Retry-After)"}},
)
def check_token(state: State, admin: Annotated[bool, Depends(describe_token)]) -> TokenCheck:
    """Whether describing would take this request's token (401 when not); no image needed."""
    return TokenCheck(needs_token=state.settings.require_token_for_describe, admin=admin)


def _max_chars(form: Form) -> int:
    """The ``max_chars`` field, or the default; :class:`BadField` (422) out of range."""
    value = _field(form, "max_chars")
    if not value:
        return DEFAULT_MAX_CHARS
    if not (value.isascii() and value.isdigit()) or not _LOW <= int(value) <= _HIGH:  # "²" is a digit too
        raise BadField(f"max_chars must be a whole number from {_LOW} to {_HIGH}")
    return int(value)


def _names(form: Form) -> bool:
    """The ``names`` field as a yes or no; :class:`BadField` (422) for anything else."""
    value = _field(form, "names").casefold()
    if value not in _TRUE | _FALSE:
        raise BadField("names must be true or false")
    return value in _TRUE


def _field(form: Form, name: str) -> str:
    part = form.field(name)
    if part is None:
        return ""
    if len(part.data) > 16:  # both fields are a few characters
        raise BadField(f"the field {name!r} is too long")
    return part.data.decode("utf-8", "replace").strip()
