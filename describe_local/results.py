"""What the describer gives back: plain dataclasses, reused by the CLI's JSON and the web API.

:class:`Findings` is what a listener learns about a photo; :class:`Description`
adds where it came from and the audio; the web API's response is the same
findings plus a signed audio URL (``server/describe_api.py``).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """Whether a stage ran on a photo (or, in :meth:`Describer.status`, whether it is loaded).

    A string enum, so that JSON carries the plain value (``"off"``).
    """

    OK = "ok"  # ran (or is loaded)
    OFF = "off"  # not installed or not loaded: the same for every photo
    FAILED = "failed"  # raised on this photo
    TIMED_OUT = "timed_out"  # ran past its time budget on this photo


# How the derived ``errors`` entry of a stage that is off begins (clients of the JSON read it).
_OFF_PREFIX = "not installed: "


class Picture(enum.StrEnum):
    """What kind of picture a photo is: a photo of the world, or one a caption would make a scene up for."""

    PHOTO = "photo"
    SCREENSHOT = "screenshot"
    PAGE = "page"  # a page of print: a scan, a document
    BLANK = "blank"  # one even tone


@dataclass(frozen=True)
class StageState:
    """One stage's state on one photo: decided where it is known (the stage runner, the
    describer's loading), read by every front end as a value, never parsed from text."""

    status: Status
    detail: str | None = None  # why it is off, or what went wrong, in words
    ms: float | None = None  # how long it ran (``None`` when it did not run)

    @classmethod
    def ok(cls, ms: float | None = None) -> StageState:
        return cls(Status.OK, None, ms)

    @classmethod
    def off(cls, why: str) -> StageState:
        return cls(Status.OFF, why)

    @classmethod
    def failed(cls, what: str, ms: float | None = None) -> StageState:
        return cls(Status.FAILED, what, ms)

    @classmethod
    def timed_out(cls, budget_s: float) -> StageState:
        return cls(Status.TIMED_OUT, f"timed out after {budget_s:g} s", budget_s * 1000)

    @property
    def is_off(self) -> bool:
        return self.status is Status.OFF

    @property
    def went_wrong(self) -> bool:
        """Failed or timed out on this photo (not: off for every photo)."""
        return self.status in (Status.FAILED, Status.TIMED_OUT)

    def error_text(self) -> str | None:
        """The stage's entry in the JSON's ``errors`` (derived here, and only here), or ``None`` when it ran."""
        if self.status is Status.OK:
            return None
        if self.status is Status.OFF:
            return f"{_OFF_PREFIX}{self.detail or 'not loaded'}"
        return self.detail or self.status.value

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "detail": self.detail,
                "ms": None if self.ms is None else round(self.ms, 1)}


@dataclass(kw_only=True)
class DescribeOptions:
    """Per-request choices; ``None`` means "use the setting"."""

    lang: str | None = None
    voice: str | None = None
    speed: float | None = None  # 2 takes half as long, 1 is the voice's own pace; None: ``length_scale``
    audio: bool = True
    sequential: bool = False
    all_text: bool = False  # speak all the text read, not the first lines (``spoken_text_lines``)
    check_picture: bool = True  # a screenshot, page or blank is said so and read, not captioned (a video's frames: no)


@dataclass(kw_only=True)
class Seen:
    """What the analysis stages saw in one photo, before anything is said (``Describer.look``)."""

    source: str  # the photo's name, as errors and ``Description.path`` give it
    caption: str | None = None
    people: list[str] = field(default_factory=list)  # known people recognised, left to right
    unknown_faces: int = 0
    reading: Any = None  # the text stage's reading (lines, language, mode, engine), or None
    guidance: list[str] = field(default_factory=list)  # photo quality advice
    stages: dict[str, StageState] = field(default_factory=dict)  # each stage asked for
    picture: Picture = Picture.PHOTO  # a screenshot, a page or a blank is read (or said blank), not captioned


@dataclass(frozen=True)
class Speech:
    """Text spoken by one of the describer's voices (``Describer.speak``)."""

    pcm: Any  # mono int16 numpy array
    sample_rate: int
    voice: str  # the key of the voice that spoke it

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True)
class Said:
    """One part of a description, given out as soon as it is spoken (``Describer.tell``): the
    caption (or photo advice) first, then people, then text, never out of order."""

    text: str  # in ``language``; empty in the last part, which carries only the encoder's last frames
    language: str
    pcm: Any = None  # mono int16 numpy array at ``sample_rate``, a pause before all but the first; None without audio
    sample_rate: int = 0
    mp3: bytes = b""  # MP3 frames of this part (one encoder for the description: they play joined)


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
    # Each analysis stage's state ("caption", "faces", "text") on this photo, as a value.
    stages: dict[str, StageState] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # derived from ``stages``; plus "output" when writing failed
    picture: Picture = Picture.PHOTO  # photo, screenshot, page or blank: only a photo is captioned

    def findings(self) -> dict[str, Any]:
        """Only the :class:`Findings` fields, as a dict (for a response that adds its own)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Findings)}

    def stage_errors(self) -> None:
        """Set :attr:`errors` from :attr:`stages` (kept beside it so that older clients go on working)."""
        derived = {stage: text for stage, state in self.stages.items() if (text := state.error_text())}
        extra = {stage: text for stage, text in self.errors.items() if stage not in self.stages}
        self.errors = {**derived, **extra}


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
        data["stages"] = {stage: state.to_json() for stage, state in self.stages.items()}
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
    """Whether a stage or model is loaded (:attr:`Status.OK`) or off, its name, and why not."""

    status: Status
    name: str | None = None
    detail: str | None = None  # why it is off, in words

    @property
    def loaded(self) -> bool:
        return self.status is Status.OK

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "loaded": self.loaded, "name": self.name, "detail": self.detail}
