"""Alt text for the web: one short sentence a screen reader speaks in place of an image.

Not the spoken description (``say/compose.py``): alt text is read in the middle of a page, so it
is one concise sentence, at most ``max_chars`` characters (125 by default, what screen-reader
guidance suggests), that never starts "image of" or "picture of" (the screen reader already
says "image"). The caption comes first; then a count of people; then the text in the image
where it stands out (a sign, a poster's headline), quoted. People are counted, not named,
unless ``names`` is asked for: a public page must not leak the names in a private gallery.

:func:`alt_text` is a pure function over what the describer found (a :class:`Findings`,
e.g. a ``Description``); it returns :class:`AltText`: the ``alt``, a ``long_description``
for ``aria-describedby`` or a ``<figcaption>``, and ``partial`` when a stage (the caption,
most often, when no caption model is installed) did not contribute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from describe_local.results import Findings, Status
from describe_local.wording import NUMBER_WORDS, join_names, speakable

__all__ = ["DEFAULT_MAX_CHARS", "MAX_CHARS_RANGE", "AltText", "alt_text", "shorten"]

DEFAULT_MAX_CHARS = 125
MAX_CHARS_RANGE = (20, 1000)  # what the CLI and the API accept for max_chars
MIN_LINE_CONFIDENCE = 0.9  # OCR lines read less surely are left out of the alt (noise on photos)
TEXT_CHARS = 60  # the most of an image's own text one alt quotes
MAX_TEXT_BLOCKS = 3
SMALL_PRINT = 0.5  # text blocks under this share of the tallest block's line height do not matter
LONG_TEXT_CHARS = 600  # the most of an image's text the long description quotes
ELLIPSIS = "…"

# A caption's lead-in that says what a screen reader says already ("image", "graphic").
_LEAD_IN = re.compile(
    r"^\s*(?:there\s+(?:is|are)\s+|(?:this|it)\s+is\s+)?"
    r"(?:(?:an?|the)\s+)?(?:(?:close[- ]?up|black[- ]and[- ]white|blurry|colou?r|old)\s+)*"
    r"(?:image|picture|photo|photograph|pic|snapshot)\s+(?:of|showing|that\s+shows|depicting)(?:\s+|$)",
    re.IGNORECASE,
)
_THERE_IS = re.compile(r"^\s*there\s+(?:is|are)\s+", re.IGNORECASE)
# Things that carry text: the text is quoted right after them ("a sign reading 'EXIT' on a wall").
_CARRIERS = re.compile(
    r"\b(?:signs?|posters?|banners?|billboards?|plaques?|placards?|notices?|labels?|chalkboard|whiteboard|"
    r"menus?|screens?|t-shirts?|shirts?|book\s+covers?|covers?|stickers?|cards?|flyers?|newspapers?|"
    r"magazines?|receipts?|documents?|pages?|letters?|boards?)\b",
    re.IGNORECASE,
)
# Words by which a caption already says there are people (plural: it also says how many, roughly).
_ONE_PERSON = re.compile(r"\b(?:man|woman|person|boy|girl|child|kid|baby|guy|lady|player|skier|surfer|"
                         r"skateboarder|snowboarder|rider|chef|worker)\b", re.IGNORECASE)
_PEOPLE = re.compile(r"\b(?:people|men|women|persons|boys|girls|children|kids|guys|ladies|players|group|"
                     r"crowd|couple|family|team|friends|skiers|surfers|riders|workers)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class AltText:
    """Alt text for one image.

    ``alt``: one sentence of at most ``max_chars`` characters, or ``""`` when nothing was found
    to say (never to be written as ``alt=""``, which marks an image as decorative).
    ``long_description``: every finding in full sentences, for ``aria-describedby`` or a caption.
    ``partial``: a stage did not run (no caption model, or one failed), so ``alt`` says less
    than it could.
    """

    alt: str
    long_description: str
    partial: bool


def alt_text(findings: Findings, max_chars: int = DEFAULT_MAX_CHARS, names: bool = False) -> AltText:
    """Alt text for what the describer found in one image (see the module's rules).

    ``findings``: the describer's result (``caption``, ``people``, ``unknown_faces``,
    ``text_found``, ``text_lines``, ``errors``). ``max_chars``: the longest ``alt``, cut at
    a word with "…" where even the shortest wording is longer. ``names``: name the known
    people (off by default; they are counted instead).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    caption = clean_caption(findings.caption)
    known = list(findings.people) if names else []
    others = max(0, int(findings.unknown_faces)) + (0 if names else len(findings.people))
    blocks = salient_text(findings.text_lines, findings.text_found)
    if caption:
        blocks = [b for b in blocks if not _words(b) <= _words(caption)]  # the caption says it already
    people = _people_phrase(known, others if known or not _says_how_many(caption, others) else 0)
    alt = _fit(caption, people, blocks, max_chars)
    partial = caption is None or any(state.status is not Status.OK for state in findings.stages.values())
    return AltText(alt, _long_description(caption, known, others, findings.text_found), partial)


def clean_caption(caption: str | None) -> str | None:
    """A model's caption without "image of"-style lead-ins, one line, first letter capitalised."""
    if not caption:
        return None
    text = " ".join(caption.split())
    text = _THERE_IS.sub("", _LEAD_IN.sub("", text)).strip().rstrip(".")
    return _capitalised(text) or None


def salient_text(lines: Sequence[Mapping[str, Any]], text_found: str | None = None) -> list[str]:
    """The image's text that stands out, in reading order: a block (a sign, a headline) per item.

    ``lines``: the describer's ``text_lines`` (``text``, ``box``, ``confidence``, ``block``);
    without them, each line of ``text_found`` is a block. Left out: lines read less surely than
    :data:`MIN_LINE_CONFIDENCE` (a block's quote ends at the first such line after it began:
    joining across a gap makes nonsense), lines under two letters or digits, lines mostly
    quoted already (a sign read twice), and blocks of small print beside much larger text.
    At most :data:`MAX_TEXT_BLOCKS` blocks within :data:`TEXT_CHARS` (the first may be longer).
    """
    if not lines and text_found:
        lines = [{"text": t, "block": i} for i, t in enumerate(text_found.splitlines())]
    blocks: dict[Any, list[str | None]] = {}  # None: a line read too unsurely
    heights: dict[Any, float] = {}
    for line in lines:
        text = " ".join(str(line.get("text", "")).split()).strip(" :;,'\"‘’“”")
        confidence = line.get("confidence")
        if sum(c.isalnum() for c in text) < 2:
            continue
        block = line.get("block", 0)
        unsure = confidence is not None and confidence < MIN_LINE_CONFIDENCE
        blocks.setdefault(block, []).append(None if unsure else text)
        box = line.get("box") or ()
        height = float(box[3]) - float(box[1]) if len(box) == 4 and not unsure else 0.0
        heights[block] = max(heights.get(block, 0.0), height)
    tallest = max(heights.values(), default=0.0)
    chosen: list[str] = []
    quoted: set[str] = set()
    squashed = ""  # all quoted so far, letters and digits only: "SPEE D LIMIT" was said as "SPEED LIMIT"
    for block, texts in blocks.items():
        if heights[block] < tallest * SMALL_PRINT:
            continue
        kept: list[str] = []
        squashed += "|"
        for text in texts:
            if text is None:
                if kept:
                    break
                continue
            words = _words(text)
            if _squash(text) in squashed or len(words & quoted) * 2 >= len(words):
                continue
            if kept and len(" ".join(kept)) + 1 + len(text) > TEXT_CHARS:
                break
            kept.append(text)
            quoted |= words
            squashed += _squash(text)
        joined = " ".join(kept)
        if not joined:
            continue
        if chosen and sum(map(len, chosen)) + len(joined) > TEXT_CHARS:
            break
        chosen.append(joined)
        if len(chosen) == MAX_TEXT_BLOCKS:
            break
    return chosen


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending "…" when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 3:  # a word boundary not too far back; else cut inside the word
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—'\"(") + ELLIPSIS


# -- wording ------------------------------------------------------------------------------------


def _fit(caption: str | None, people: str, blocks: list[str], max_chars: int) -> str:
    """The richest wording within ``max_chars``: fewer text blocks first, then a shorter quote,
    then no text, then no count of people; a caption too long on its own is cut at a word."""
    for count in range(len(blocks), 0, -1):
        alt = _sentence(caption, people, blocks[:count])
        if len(alt) <= max_chars:
            return alt
    if blocks:
        room = max_chars - len(_sentence(caption, people, [""]))
        if room >= 8:  # a quote shorter than this says too little
            return _sentence(caption, people, [shorten(blocks[0], room)])
        if not caption and not people:
            return shorten(_sentence(None, "", blocks[:1]), max_chars)
    alt = _sentence(caption, people, [])
    if len(alt) > max_chars and caption:
        alt = _sentence(caption, "", [])
    return shorten(alt, max_chars)


def _sentence(caption: str | None, people: str, blocks: list[str]) -> str:
    """One sentence: the caption (or the people, or the text) first, the rest after "with"."""
    quoted = ", ".join(f"'{b}'" for b in blocks)
    if caption:
        head, extras = caption, [people] if people else []
        if quoted:
            carrier = _CARRIERS.search(caption)
            if carrier:  # "A man holding a sign reading 'STOP' in a park"
                head = f"{caption[: carrier.end()]} reading {quoted}{caption[carrier.end():]}"
            else:
                extras.append(f"the text {quoted}")
        text = head + (", with " + " and ".join(extras) if extras else "")
    elif people:
        text = people + (f" with the text {quoted}" if quoted else "")
    elif quoted:
        text = f"Text reading {quoted}"
    else:
        return ""
    return _capitalised(_with_stop(text))


def _says_how_many(caption: str | None, people: int) -> bool:
    """Whether ``caption`` says as much as a count of ``people`` would: it speaks of a group
    ("people", "a crowd"), or of one person ("a man") and there is one."""
    if not caption:
        return False
    return bool(_PEOPLE.search(caption)) or (people < 2 and bool(_ONE_PERSON.search(caption)))


def _people_phrase(known: list[str], others: int) -> str:
    """'two people', 'Ada Lovelace and one other person', '' (for nobody)."""
    if not known:
        return _count(others) if others else ""
    if not others:
        return join_names(known)
    rest = f"{_number(others)} other {'person' if others == 1 else 'people'}"
    return join_names([*known, rest])


def _long_description(caption: str | None, known: list[str], others: int, text_found: str | None) -> str:
    """Every finding in whole sentences (names only when ``known`` holds them)."""
    sentences = [_with_stop(caption)] if caption else []
    total = len(known) + others
    if known:
        sentences.append(_with_stop(f"People: {_people_phrase(known, others)}"))
    elif total:
        be = "is" if total == 1 else "are"
        sentences.append(f"There {be} {_count(total)} in the image.")
    spoken = speakable(text_found or "")
    if spoken:
        sentences.append(_with_stop(f"Text in the image: '{shorten(spoken, LONG_TEXT_CHARS)}'"))
    return " ".join(sentences)


def _count(n: int) -> str:
    return f"{_number(n)} {'person' if n == 1 else 'people'}"


def _number(n: int) -> str:
    return NUMBER_WORDS[n] if 0 < n < len(NUMBER_WORDS) else str(n)


def _with_stop(text: str) -> str:
    """``text`` ending in a full stop, unless it ends in one already (inside a quote too)."""
    bare = text.rstrip("'\"’”)")
    return text if bare.endswith((".", "?", "!", ELLIPSIS)) else text + "."


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def _squash(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())
