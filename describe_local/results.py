"""What the describer gives back: plain dataclasses, reused by the CLI's JSON and the web API.

:class:`Findings` is what a listener learns about a photo; :class:`Description`
adds where it came from and the audio; the web API's response is the same
findings plus a signed audio URL (``server/describe_api.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(kw_only=True)
class DescribeOptions:
    """Per-request choices; ``None`` means "use the setting"."""

    lang: str | None = None
    voice: str | None = None
    length_scale: float | None = None
    audio: bool = True
    sequential: bool = False
    all_text: bool = False  # speak all the text read, not the first lines (``spoken_text_lines``)


@dataclass(kw_only=True)
class Findings:
    """What was found in one photo and what is spoken about it."""

    text: str  # what is spoken
    caption: str | None = None
    people: list[str] = field(default_factory=list)  # known people recognised, left to right
    unknown_faces: int = 0
    text_found: str | None = None  # all the text read, lines in reading order
    text_language: str | None = None  # ISO 639-1 code of the text found
    text_lines: list[dict[str, Any]] = field(default_factory=list)  # text, box [x0, y0, x1, y1], confidence, block
    language: str = "en"  # the language ``text`` is spoken in
    guidance: list[str] = field(default_factory=list)  # photo quality advice, spoken first ("The photo is very dark.")
    voice: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. a fallback to English
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, and "total"
    errors: dict[str, str] = field(default_factory=dict)  # stage -> what went wrong, or why it is off

    def findings(self) -> dict[str, Any]:
        """Only the :class:`Findings` fields, as a dict (for a response that adds its own)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Findings)}


@dataclass(kw_only=True)
class Description(Findings):
    """:class:`Findings` for one photo, its source, and the spoken MP3."""

    path: str
    audio: str | None = None  # where the MP3 was written, set by the caller
    mp3: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (without the MP3 bytes)."""
        data = asdict(self)
        data.pop("mp3")
        return data


@dataclass(kw_only=True)
class Answer:
    """The answer to a question about a photo."""

    path: str
    question: str
    answer: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    audio: str | None = None
    mp3: bytes | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)  # e.g. the question was cut to what the model reads

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("mp3")
        return data


@dataclass(frozen=True)
class StageStatus:
    """Whether a stage or model is loaded, its name, and why not."""

    loaded: bool
    name: str | None = None
    detail: str | None = None
