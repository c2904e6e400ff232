"""What to say about each shot, and where it fits between the lines of dialogue (pure logic).

In: the describer's findings per shot (caption, people, text read) and the gaps in the speech.
Out: :class:`Line` (what a shot wants said, in a full and a short form) and, from
:class:`Placer`, a :class:`Cue` (when it is said, how fast) or ``None`` (it did not fit: reported).

Fitting, in order: the full text at the voice's pace, the short text, then the short text faster,
up to ``max_speed``. A line may start a little before its shot (``LEAD_S``, over a cut) and as late
as ``LATE_S`` after its shot ended, never before the previous cue ended. A line that finds no pause
is, with ``hold`` (extended description), spoken in full while the video holds still: at the first
end of speech inside its shot, or else at its cut; and a line shortened or sped up to fit its pause
carries its whole text as a held cue (``Cue.fuller``), for extended description.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

LEAD_S = 0.5  # a line may begin this much before its shot
LATE_S = 1.5  # ... and as late as this after its shot ended
BREATH_S = 0.2  # silence kept between two cues
MAX_SPEED = 1.5  # the fastest narration (1: the voice's own pace)
HOLD_PAD_S = 0.25  # still picture kept before and after a narration spoken while the video holds

Interval = tuple[float, float]


@dataclass(frozen=True)
class Findings:
    """What the describer found in one shot's picture (a subset of ``results.Description``)."""

    caption: str | None = None
    people: tuple[str, ...] = ()
    unknown_faces: int = 0
    text_found: str | None = None
    spoken: str = ""  # the describer's own sentence(s), in the listener's language
    language: str = "en"

    def key(self) -> tuple[object, ...]:
        """What makes two shots "say the same thing"."""
        text = re.sub(r"\s+", " ", (self.text_found or "").strip().lower())
        return (self.caption or "").strip().lower(), frozenset(self.people), self.unknown_faces > 0, text


@dataclass
class Line:
    """What one shot (or run of shots saying the same) wants said, and the time it belongs to."""

    start: float
    end: float
    full: str
    short: str
    durations: dict[str, float] = field(default_factory=dict)  # text -> seconds at speed 1, once spoken


@dataclass(frozen=True)
class Cue:
    """A narration placed on the timeline."""

    start: float
    end: float
    text: str
    speed: float  # 1: the voice's own pace
    overlaps: bool = False  # spoken over dialogue (only with --allow-overlap)
    hold: float = 0.0  # seconds the video holds still at ``start`` while this is spoken (extended description)
    fuller: Cue | None = None  # shortened or sped up to fit its pause: the whole line, held, for extended description

    @property
    def held(self) -> bool:
        return self.hold > 0


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Whether two shots' keys say the same thing: the text read may differ by OCR noise ("@" for "©")."""
    return a[:-1] == b[:-1] and difflib.SequenceMatcher(None, str(a[-1]), str(b[-1])).ratio() >= 0.9


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (all of it when it has one)."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)
    return parts[0] if parts else ""


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_FILLER = re.compile(r"^(?:(?:a|an|the) (?:picture|photo|photograph|image|close-up) of |there (?:is|are) )", re.I)
LATER_SENTENCES = 2  # after the first narration, a line says at most this many sentences (what changed)


def _clean_caption(caption: str) -> str:
    """A caption as a describer says it: without "a picture of" / "there is" in front."""
    return _FILLER.sub("", caption.strip())


def _people(count: int) -> str:
    return "a person" if count == 1 else f"{count} people"


def _similar(a: str, b: str) -> bool:
    """Two texts read from the screen that are the same but for OCR noise ("@" for "©")."""
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.9


class Writer:
    """Turns each shot's findings into a :class:`Line` that says what changed, as a describer would.

    The first line of a clip sets the scene in full; later ones say only what is new: a caption
    unlike the last one said, people named as they come back into view (known people by the name the
    gallery gives them, the same name every time), a change in the number of unknown faces, text on
    the screen read once, when it first appears. A shot with nothing new is not narrated, and no line
    repeats the one before it.
    """

    def __init__(self) -> None:
        self._last_key: tuple[object, ...] | None = None
        self._last_caption = ""
        self._last_people: frozenset[str] = frozenset()
        self._last_unknown = 0
        self._last_full = ""
        self._read: list[str] = []  # the on-screen texts read so far, normalized
        self.introduced: set[str] = set()

    def line(self, start: float, end: float, found: Findings) -> Line | None:
        """The line for a shot from ``start`` to ``end``, or ``None`` when it says nothing new
        (nothing found, or nothing the listener has not heard)."""
        key = found.key()
        if self._last_key is not None and _same(key, self._last_key):
            return None
        self._last_key = key
        first = not self._last_full
        if found.language != "en":
            # The describer translated its own sentences; names in them cannot be picked out.
            full = found.spoken.strip()
            if not full or full == self._last_full:
                return None
            self._last_full = full
            return Line(start, end, full, first_sentence(full))
        parts = []
        caption = _clean_caption(found.caption or "")
        if caption and caption.lower() != self._last_caption.lower():
            parts.append(_sentence(caption))
            self._last_caption = caption
        people = frozenset(found.people)
        back = [name for name in found.people if name not in self._last_people]  # new, or back in view
        self.introduced.update(found.people)
        self._last_people = people
        if back:
            unknown = found.unknown_faces if found.unknown_faces != self._last_unknown else 0
            others = "" if not unknown else " and another person" if unknown == 1 else f" and {unknown} other people"
            parts.append(_sentence(_names(back) + others))
        elif found.unknown_faces and found.unknown_faces != self._last_unknown and not caption:
            count = found.unknown_faces
            if people:  # beside someone named: "another person"
                parts.append("Another person." if count == 1 else f"{count} other people.")
            else:
                parts.append(_sentence(_people(count)))
        self._last_unknown = found.unknown_faces
        short = parts[0] if parts else ""
        text = re.sub(r"\s+", " ", found.text_found or "").strip()
        if text and not any(_similar(text.lower(), seen) for seen in self._read):
            self._read.append(text.lower())
            parts.append(_sentence(f"On screen: {text}"))
            # Without a caption or names, the short form is the text's first line.
            first_line = (found.text_found or "").strip().splitlines()[0].strip()
            short = short or _sentence(f"On screen: {first_line}")
        if not first:
            parts = parts[:LATER_SENTENCES]
        full = " ".join(parts)
        if not full or full == self._last_full:
            return None
        self._last_full = full
        return Line(start, end, full, short or full)


class Placer:
    """Places lines, in order, in the gaps of the dialogue (greedy: each as early as it fits)."""

    def __init__(self, gaps: Sequence[Interval], *, max_speed: float = MAX_SPEED,
                 allow_overlap: bool = False, hold: bool = False) -> None:
        self.gaps = sorted(gaps)
        self.max_speed = max_speed
        self.allow_overlap = allow_overlap
        self.hold = hold
        self._free_from = 0.0

    def variants(self, line: Line) -> list[tuple[str, float]]:
        """(text, speed) to try, best first: full, short, then the short one as fast as allowed."""
        out = [(line.full, 1.0)]
        if line.short and line.short != line.full:
            out.append((line.short, 1.0))
        out.append((line.short or line.full, self.max_speed))
        return out

    def place(self, line: Line) -> Cue | None:
        """The cue for ``line`` (its ``durations`` must hold each text's length at speed 1), or
        ``None`` when it fits in no gap near its shot (always a cue with ``allow_overlap`` or ``hold``)."""
        earliest = max(line.start - LEAD_S, self._free_from, 0.0)
        latest = line.end + LATE_S
        for a, b in self.gaps:
            if b <= earliest or a >= latest:
                continue
            start = max(a, earliest)
            for text, speed in self.variants(line):
                length = line.durations[text] / speed
                if start + length <= b:
                    fuller = None
                    if self.hold and (text, speed) != (line.full, 1.0):  # extended description says it all
                        whole = line.durations[line.full]
                        fuller = Cue(start, start + whole, line.full, 1.0, hold=whole + 2 * HOLD_PAD_S)
                    return self._taken(Cue(start, start + length, text, speed, fuller=fuller))
            if a > latest:
                break
        if self.hold and not self.allow_overlap:
            return self._held(line)
        if not self.allow_overlap:
            return None
        start = max(line.start, self._free_from)
        text, speed = self.variants(line)[-1]
        length = line.durations[text] / speed
        return self._taken(Cue(start, start + length, text, speed, overlaps=True))

    def _taken(self, cue: Cue) -> Cue:
        self._free_from = cue.end + BREATH_S
        return cue

    def _held(self, line: Line) -> Cue:
        """The full line, spoken while the video holds: where a speaker stops inside the shot, else at its cut."""
        start = max(line.start, self._free_from)
        ends_of_speech = [a for a, _b in self.gaps if start <= a <= line.end]
        if ends_of_speech:
            start = ends_of_speech[0]
        length = line.durations[line.full]
        self._free_from = start + 0.05  # the dialogue resumes where it stopped: the next pause is free
        return Cue(start, start + length, line.full, 1.0, hold=length + 2 * HOLD_PAD_S)


def overlap_s(cues: Sequence[Cue], speech: Sequence[Interval]) -> float:
    """Seconds of narration that fall on speech (0 when every cue is in a gap)."""
    return sum(max(0.0, min(c.end, b) - max(c.start, a)) for c in cues for a, b in speech)
