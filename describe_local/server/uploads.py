"""Uploads read into memory, never onto disk.

Starlette's own form parser spools any file over 1 MB to a temporary file,
which would put people's photos on disk; this module reads the body with a
size limit and splits the multipart form in memory instead.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from describe_local.errors import BadUpload, UploadTimeout, UploadTooLarge
from describe_local.reading import size_text
from describe_local.settings import Settings

log = logging.getLogger(__name__)

MAX_PARTS = 32
MAX_BOUNDARY = 200  # characters; RFC 2046 allows at most 70
MAX_FIELD_BYTES = 4096  # text fields (lang, voice, name) are short


@dataclass
class Part:
    """One field of a multipart form."""

    name: str
    filename: str | None = None
    content_type: str | None = None
    data: bytes = b""


@dataclass
class Form:
    """The parts of a multipart form, in order."""

    parts: list[Part] = field(default_factory=list)

    def files(self, name: str) -> list[Part]:
        return [p for p in self.parts if p.name == name and p.filename is not None]

    def field(self, name: str) -> Part | None:
        """The first text field (not a file) called ``name``, or None."""
        return next((p for p in self.parts if p.name == name and p.filename is None), None)

    def flag(self, name: str) -> bool:
        """Whether text field ``name`` is set to a true value (1, true, yes, on)."""
        part = self.field(name)
        return part is not None and part.data.strip().lower() in (b"1", b"true", b"yes", b"on")

    def text(self, name: str) -> str | None:
        """The value of text field ``name`` (the first one), or None."""
        part = self.field(name)
        if part is None:
            return None
        if len(part.data) > MAX_FIELD_BYTES:
            raise BadUpload(f"the field {name!r} is too long")
        return part.data.decode("utf-8", "replace").strip() or None


async def read_body(
    content_length: str | None, stream: AsyncIterator[bytes], max_bytes: int, timeout_s: float
) -> bytes:
    """The whole body, or :class:`UploadTooLarge` as soon as it passes ``max_bytes``.

    A body that trickles in for longer than ``timeout_s`` is given up
    (:class:`UploadTimeout`), so that a slow sender cannot hold a request open.
    """
    try:
        return await asyncio.wait_for(_read_limited(content_length, stream, max_bytes), timeout_s)
    except TimeoutError:
        raise UploadTimeout(
            f"the upload took longer than {timeout_s:g} s; check the connection and try again"
        ) from None
    except ClientDisconnect:  # the sender hung up, or the connection guard closed it: nobody to answer
        raise BadUpload("the upload was cut off; send it again") from None


async def _read_limited(content_length: str | None, stream: AsyncIterator[bytes], max_bytes: int) -> bytes:
    message = f"the upload is too large: the limit is {size_text(max_bytes)}; send a smaller photo"
    if content_length and content_length.isascii() and content_length.isdigit() and int(content_length) > max_bytes:
        raise UploadTooLarge(message)
    chunks: list[bytes] = []
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > max_bytes:
            raise UploadTooLarge(message)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(content_type: str | None, body: bytes) -> Form:
    """Split a ``multipart/form-data`` body into its parts."""
    mime, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise BadUpload("send the photo as a multipart/form-data form (field 'photo')")
    if len(boundary) > MAX_BOUNDARY:  # RFC 2046 allows 70; the parser fails on long ones
        raise BadUpload(f"the form's boundary is longer than {MAX_BOUNDARY} characters; send a standard form")

    form = Form()
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[bytes, bytes] = {}
    data = bytearray()

    def on_part_begin() -> None:
        headers.clear()
        data.clear()

    def on_header_field(buf: bytes, start: int, end: int) -> None:
        header_field.extend(buf[start:end])

    def on_header_value(buf: bytes, start: int, end: int) -> None:
        header_value.extend(buf[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_part_data(buf: bytes, start: int, end: int) -> None:
        data.extend(buf[start:end])

    def on_part_end() -> None:
        if len(form.parts) >= MAX_PARTS:
            raise BadUpload(f"too many fields in the form (at most {MAX_PARTS})")
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name")
        if name is None:
            raise BadUpload("a form field has no name")
        filename = disposition.get(b"filename")
        form.parts.append(
            Part(
                name=name.decode("utf-8", "replace"),
                filename=None if filename is None else filename.decode("utf-8", "replace"),
                content_type=(headers.get(b"content-type") or b"").decode("latin-1") or None,
                data=bytes(data),
            )
        )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except BadUpload:
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        log.debug("malformed multipart body: %s", exc)
        raise BadUpload("the form is malformed; send the photo as multipart/form-data") from None
    return form


def keep_upload(state_dir: Path, data: bytes, filename: str | None) -> Path:
    """Write an upload to ``state_dir/uploads`` (only when the keep_uploads setting asks)."""
    folder = Path(state_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(filename or "").suffix.lower()
    if not suffix.isascii() or not suffix[1:].isalnum() or len(suffix) > 6:
        suffix = ".bin"
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}{suffix}"
    path.write_bytes(data)
    return path


def multipart_schema(required: list[str], properties: dict[str, dict[str, object]]) -> dict[str, object]:
    """The OpenAPI ``openapi_extra`` of an endpoint that takes a multipart form (read by hand, not by FastAPI)."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


async def read_form(request: Request, max_bytes: int, timeout_s: float) -> Form:
    """The request's multipart form, read in memory within ``max_bytes`` and ``timeout_s``."""
    body = await read_body(request.headers.get("content-length"), request.stream(), max_bytes, timeout_s)
    return parse_form(request.headers.get("content-type"), body)


def one_photo(form: Form, settings: Settings, noun: str = "photo") -> Part:
    """The one file in the form field ``photo`` (kept on disk only if ``keep_uploads`` asks);
    :class:`BadUpload` otherwise."""
    photos = form.files("photo")
    if len(photos) != 1:
        raise BadUpload(f"send exactly one {noun}, in the form field 'photo'")
    if settings.keep_uploads:
        keep_upload(settings.state_dir, photos[0].data, photos[0].filename)
    return photos[0]
