"""Finding the ``<img>`` tags of an HTML page and adding ``alt`` to them, byte for byte.

Pure logic over a page's bytes, no files and no models: the ``alt-text`` command
(``cli/alt_text.py``, with ``alt_text/site.py``) reads pages and describes images around it.

A page is never re-serialised. Python's :class:`html.parser.HTMLParser` finds each start
tag and its exact source text (``getpos()`` and ``get_starttag_text()``); the new attribute
is inserted right after the tag's name (``<img`` → ``<img alt="..."``), so every other byte
of the page is kept. The page keeps its encoding (a byte-order mark, else ``<meta charset>``
in its first 1024 bytes, else UTF-8); an alt's characters that the encoding lacks are
written as character references.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from describe_local.errors import PageError

__all__ = ["Candidate", "DecodedPage", "ImgTag", "alt_attribute", "check_parse_work", "decode_page",
           "find_images", "insert_alts", "parse_srcset"]

PRESCAN_BYTES = 1024  # where the HTML standard looks for <meta charset>
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# The HTML standard decodes these labels as windows-1252 (a superset that keeps every byte).
_AS_WINDOWS_1252 = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "ascii", "us-ascii", "cp819", "ibm819"}
# Elements whose content is text even though it may look like tags.
_TEXT_ONLY = {"textarea", "title"}
# Python's html.parser rescans from each tag start to the tag's end: a page of many tag starts
# that never end (``<a<a<a...``) costs it the square of its size. The scan it would do is summed
# first, in one pass, and a page whose sum is over this budget is refused before it is parsed.
PARSE_WORK_PER_CHAR = 16
PARSE_WORK_FLOOR = 4_000_000
_MARKUP_START = re.compile(r"<(?:[a-zA-Z/!?])")
_RAW_TEXT_START = re.compile(r"<(script|style)(?=[\s/>])", re.IGNORECASE)


@dataclass(frozen=True)
class DecodedPage:
    """A page's text and how to get its bytes back: ``encoding`` (a Python codec name), the
    byte-order mark it starts with (``b""`` for none) and where the encoding came from."""

    text: str
    encoding: str
    bom: bytes
    source: str  # "bom", "meta" or "default"


@dataclass(frozen=True)
class Candidate:
    """One image source of an ``<img>``: its URL and its ``srcset`` descriptor (``w`` width or
    ``x`` density; ``src`` counts as ``1x``)."""

    url: str
    kind: str  # "w" or "x"
    value: float


@dataclass
class ImgTag:
    """An ``<img>`` start tag: where it is (``offset``: the ``<`` in the page's text; ``line``,
    1-based), its source text and attributes (lower-case names, the first of a repeated name
    wins as in browsers), the ``<base href>`` before it, and its candidates: the ``<source
    srcset>`` of an enclosing ``<picture>``, then its own ``srcset``, then its ``src``."""

    offset: int
    line: int
    tag_text: str
    attrs: dict[str, str | None]
    base_href: str | None = None
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def has_alt(self) -> bool:
        return "alt" in self.attrs

    @property
    def src(self) -> str | None:
        """The URL the tag names first: ``src``, else the first candidate's."""
        src = (self.attrs.get("src") or "").strip()
        return src or (self.candidates[0].url if self.candidates else None)


def decode_page(raw: bytes) -> DecodedPage:
    """The text of a page and its encoding. Raises :class:`PageError` when the bytes would not
    come back the same from the text (a stateful encoding such as ISO-2022-JP)."""
    encoding, bom, source = _sniff(raw)
    body = raw[len(bom):]
    try:
        text = body.decode(encoding, "surrogateescape")
        same = text.encode(encoding, "surrogateescape") == body
    except (UnicodeError, LookupError):
        same = False
    if not same:
        raise PageError(f"its encoding ({encoding}) cannot be edited without changing other bytes")
    return DecodedPage(text, encoding, bom, source)


def find_images(text: str) -> list[ImgTag]:
    """Every ``<img>`` start tag of a page's text, in source order. Raises :class:`PageError`
    for a page that would take the parser too long (:func:`check_parse_work`) or that it
    cannot parse."""
    check_parse_work(text)
    finder = _ImgFinder(text)
    try:
        finder.feed(text)
        finder.close()
    except Exception as exc:  # html.parser's own failures (an AssertionError on "<![<!"): one line
        raise PageError(f"its HTML cannot be parsed ({type(exc).__name__} near "
                        f"line {finder.getpos()[0]}); fix the markup there") from None
    return finder.images


def check_parse_work(text: str) -> int:
    """The characters html.parser would scan for ``text``, summed over its tag starts (each to
    its ``>``, a comment to its ``-->``, ``<script>``/``<style>`` to their end tag), in time
    linear in the text. Raises :class:`PageError` when over the budget (a page of tags that
    never end)."""
    budget = PARSE_WORK_FLOOR + PARSE_WORK_PER_CHAR * len(text)
    size, work, cursor = len(text), 0, 0
    next_gt = next_comment_end = -1  # cached: tag starts only move forward
    while work <= budget:
        match = _MARKUP_START.search(text, cursor)
        if match is None:
            return work
        start = match.start()
        if text.startswith("<!--", start):
            if next_comment_end < start + 4:
                found = text.find("-->", start + 4)
                next_comment_end = found if found >= 0 else size
            work += next_comment_end - start
            cursor = next_comment_end + 3 if next_comment_end < size else start + 1
            continue
        if next_gt < start:
            found = text.find(">", start)
            next_gt = found if found >= 0 else size
        work += next_gt - start
        raw = _RAW_TEXT_START.match(text, start)
        if raw is not None and next_gt < size:
            closing = re.compile(rf"</{raw.group(1)}", re.IGNORECASE).search(text, next_gt)
            end = closing.start() if closing else size
            work += end - next_gt
            cursor = end if closing else size
        else:
            cursor = start + 1
    raise PageError("its markup has too many tags that never end (a '<' with no '>') to be "
                    "parsed in reasonable time; close them or remove the stray '<' characters")


def alt_attribute(alt: str) -> str:
    """`` alt="..."`` with ``alt`` escaped for a double-quoted attribute (on one line)."""
    value = " ".join(alt.split())
    value = value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return f' alt="{value}"'


def insert_alts(raw: bytes, page: DecodedPage, edits: Iterable[tuple[ImgTag, str]]) -> tuple[bytes, list[int]]:
    """``raw`` with each ``(tag, alt)`` of ``edits`` given ``alt`` right after its tag name.

    Returns the new bytes and, for each edit in order of position, the byte offset in ``raw``
    where its attribute went in; nothing else changes.
    """
    out: list[bytes] = [page.bom]
    offsets: list[int] = []
    char_at, byte_at = 0, len(page.bom)
    for tag, alt in sorted(edits, key=lambda e: e[0].offset):
        cut = tag.offset + 1 + len("img")
        if page.text[tag.offset:cut].lower() != "<img":
            raise ValueError(f"no <img at offset {tag.offset}")
        segment = page.text[char_at:cut].encode(page.encoding, "surrogateescape")
        if raw[byte_at:byte_at + len(segment)] != segment:  # a stateful encoding: never guess
            raise PageError(f"its encoding ({page.encoding}) cannot be edited without changing other bytes")
        out.append(segment)
        byte_at += len(segment)
        offsets.append(byte_at)
        out.append(alt_attribute(alt).encode(page.encoding, "xmlcharrefreplace"))
        char_at = cut
    out.append(raw[byte_at:])
    return b"".join(out), offsets


def parse_srcset(value: str) -> list[Candidate]:
    """The candidates of a ``srcset`` attribute (the HTML standard's parsing, simplified: a URL
    ends at white space; a comma ends a candidate outside parentheses)."""
    found: list[Candidate] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth, start = 0, i
            while i < n and (value[i] != "," or depth):
                depth += {"(": 1, ")": -1}.get(value[i], 0)
                i += 1
            descriptor = value[start:i].strip()
        if url:
            candidate = _candidate(url, descriptor)
            if candidate is not None:
                found.append(candidate)
    return found


def _candidate(url: str, descriptor: str) -> Candidate | None:
    """A candidate from its URL and descriptor ("640w", "2x", none: 1x); None when malformed."""
    kind, value = "x", 1.0
    for token in descriptor.split():
        unit, number = token[-1:].lower(), token[:-1]
        try:
            parsed = float(number)
        except ValueError:
            return None
        if unit in ("w", "x") and parsed > 0:
            kind, value = unit, parsed
    return Candidate(url, kind, value)


def _sniff(raw: bytes) -> tuple[str, bytes, str]:
    """(codec, BOM, source) of a page: its BOM, else ``<meta charset>``, else UTF-8."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding, bom, "bom"
    match = _META_CHARSET.search(raw[:PRESCAN_BYTES])
    if match:
        label = match.group(1).decode("ascii", "replace").strip().lower()
        if label.startswith("utf-16"):  # the standard: a page that says UTF-16 without a BOM is UTF-8
            return "utf-8", b"", "meta"
        if label in _AS_WINDOWS_1252:
            return "cp1252", b"", "meta"
        try:
            return codecs.lookup(label).name, b"", "meta"
        except LookupError:
            pass
    return "utf-8", b"", "default"


class _ImgFinder(HTMLParser):
    """Collects ``<img>`` tags with their offsets, ``<picture>`` sources and ``<base href>``."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        # HTMLParser counts lines by "\n" alone; so do these offsets.
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.images: list[ImgTag] = []
        self.pictures: list[list[Candidate]] = []
        self.base_href: str | None = None
        self.text_only: str | None = None  # inside <textarea> or <title>: tags there are text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.text_only is not None:
            return
        values: dict[str, str | None] = {}
        for name, value in attrs:
            values.setdefault(name.lower(), value)
        if tag in _TEXT_ONLY:
            self.text_only = tag
        elif tag == "base" and self.base_href is None and values.get("href"):
            self.base_href = (values["href"] or "").strip()
        elif tag == "picture":
            self.pictures.append([])
        elif tag == "source" and self.pictures:
            self.pictures[-1].extend(parse_srcset(values.get("srcset") or ""))
        elif tag == "img":
            self._image(values)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # <img/>, <source/>: no end tag to wait for

    def handle_endtag(self, tag: str) -> None:
        if self.text_only is not None:
            if tag == self.text_only:
                self.text_only = None
            return
        if tag == "picture" and self.pictures:
            self.pictures.pop()

    def _image(self, values: dict[str, str | None]) -> None:
        line, column = self.getpos()
        offset = self.line_starts[line - 1] + column
        tag_text = self.get_starttag_text() or ""
        if not self.text.startswith(tag_text, offset) or tag_text[:4].lower() != "<img":
            return  # not where the parser says: never edit a guess
        candidates = list(self.pictures[-1]) if self.pictures else []
        candidates += parse_srcset(values.get("srcset") or "")
        src = (values.get("src") or "").strip()
        if src:
            candidates.append(Candidate(src, "x", 1.0))
        self.images.append(ImgTag(offset, line, tag_text, values, self.base_href, candidates))

