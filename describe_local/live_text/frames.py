"""One camera frame through the describer's text stage, into a session's answer."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from describe_local.errors import OcrNotInstalled
from describe_local.live_text.aiming import SeenLine
from describe_local.live_text.page import page_view
from describe_local.results import Status

if TYPE_CHECKING:
    from describe_local.live_text.session import FrameAnswer, LiveTextSession
    from describe_local.pipeline import Describer

FRAME_NAME = "<frame>"


def read_frame(describer: Describer, frame: bytes, session: LiveTextSession, page: bool = False) -> FrameAnswer:
    """Read the text in ``frame`` (an encoded image) and answer it in ``session``; with ``page``,
    also judge whether a page is wholly in view. Raises :class:`ImageError` for a frame that
    cannot be decoded and :class:`OcrNotInstalled` where the text stage is off. A frame whose
    reading failed or ran out of time counts as one without text: the next frame is a new try."""
    photo = describer.open_photo(frame, name=FRAME_NAME)
    seen = describer.look(photo, stages=("text",))
    state = seen.stages.get("text")
    if state is not None and state.status is Status.OFF:
        raise OcrNotInstalled(f"live text needs the text stage, which is off: {state.detail or 'not loaded'}")
    reading = seen.reading if state is None or state.status is Status.OK else None
    lines = [SeenLine(line.text, tuple(line.box), line.confidence) for line in reading.lines] if reading else []
    width, height = photo.size
    answer = session.answer(lines, width, height, page_view(photo.image) if page else None)
    return dataclasses.replace(answer, language=reading.language if reading else None)
