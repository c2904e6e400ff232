"""Finding the ``<img>`` tags of an HTML page, with what the page says around them.

Pure logic over a page's text, no files and no models. Python's :class:`html.parser.HTMLParser`
finds each start tag and its exact source text (``getpos()`` and ``get_starttag_text()``), so
that ``pages.insert_alts`` can edit a tag byte for byte. Besides each ``<img>`` and its image
candidates, the scan keeps what the W3C alt decision tree asks about (``alt_text/decide.py``):
the link or button an image sits in and whatever else that holds, the ``<figcaption>`` of its
``<figure>``, and the page's ``<title>``, first ``<h1>`` and ``lang``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from describe_local.errors import PageError

__all__ = ["Candidate", "Container", "ImgTag", "ScannedPage", "check_parse_work", "find_images", "parse_srcset",
           "scan_page"]

# Elements whose content is text even though it may look like tags.
_TEXT_ONLY = {"textarea", "title"}
_RAW = {"script", "style"}  # html.parser hands their content over as text: never page text
# Python's html.parser rescans from each tag start to the tag's end: a page of many tag starts
# that never end (``<a<a<a...``) costs it the square of its size. The scan it would do is summed
# first, in one pass, and a page whose sum is over this budget is refused before it is parsed.
PARSE_WORK_PER_CHAR = 16
PARSE_WORK_FLOOR = 4_000_000
_MARKUP_START = re.compile(r"<(?:[a-zA-Z/!?])")
_RAW_TEXT_START = re.compile(r"<(script|style)(?=[\s/>])", re.IGNORECASE)
MAX_KEPT_TEXT = 2000  # the most text kept of one link, caption or title (enough to name it)
# Files a page needs to show as it does (for a copy holding only the changed pages).
_NEEDS = {"link": ("href",), "script": ("src",), "source": ("src",), "video": ("src", "poster"),
          "audio": ("src",), "track": ("src",), "input": ("src",)}


@dataclass(frozen=True)
class Candidate:
    """One image source of an ``<img>``: its URL and its ``srcset`` descriptor (``w`` width or
    ``x`` density; ``src`` counts as ``1x``)."""

    url: str
    kind: str  # "w" or "x"
    value: float


@dataclass
class Container:
    """The ``<a href>`` or ``<button>`` around an image: its ``href`` (links), its own name
    (``aria-label`` or ``title``), its text (whitespace made single) and how many images it holds."""

    kind: str  # "link" or "button"
    href: str | None = None
    label: str = ""
    text: str = ""
    images: int = 0

    @property
    def image_only(self) -> bool:
        """The image is all the link or button holds: its alt is the control's name."""
        return self.images == 1 and not self.text


@dataclass
class ImgTag:
    """An ``<img>`` start tag: where it is (``offset``: the ``<`` in the page's text; ``line``,
    1-based), its source text and attributes (lower-case names, the first of a repeated name
    wins as in browsers), the ``<base href>`` before it, and its candidates: the ``<source
    srcset>`` of an enclosing ``<picture>``, then its own ``srcset``, then its ``src``.
    ``container``: the link or button it is in; ``caption``: its figure's ``<figcaption>`` text."""

    offset: int
    line: int
    tag_text: str
    attrs: dict[str, str | None]
    base_href: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    container: Container | None = None
    caption: str | None = None

    @property
    def has_alt(self) -> bool:
        return "alt" in self.attrs

    @property
    def src(self) -> str | None:
        """The URL the tag names first: ``src``, else the first candidate's."""
        src = (self.attrs.get("src") or "").strip()
        return src or (self.candidates[0].url if self.candidates else None)


@dataclass
class ScannedPage:
    """A page's images and what names the page: its ``<title>``, first ``<h1>``, ``<html lang>``,
    and the URLs of the other files it shows (stylesheets, scripts, media)."""

    images: list[ImgTag]
    title: str = ""
    heading: str = ""
    lang: str = ""
    needs: list[str] = field(default_factory=list)


def find_images(text: str) -> list[ImgTag]:
    """Every ``<img>`` start tag of a page's text, in source order (see :func:`scan_page`)."""
    return scan_page(text).images


def scan_page(text: str) -> ScannedPage:
    """The images of a page's text and what the page says around them. Raises
    :class:`PageError` for a page that would take the parser too long (:func:`check_parse_work`)
    or that it cannot parse."""
    check_parse_work(text)
    finder = _ImgFinder(text)
    try:
        finder.feed(text)
        finder.close()
    except Exception as exc:  # html.parser's own failures (an AssertionError on "<![<!"): one line
        raise PageError(f"its HTML cannot be parsed ({type(exc).__name__} near "
                        f"line {finder.getpos()[0]}); fix the markup there") from None
    finder.finish()
    return ScannedPage(finder.images, _one_line(finder.title), _one_line(finder.heading or ""), finder.lang,
                       finder.needs)


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


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_KEPT_TEXT]


@dataclass
class _Open:
    """An element the scan is inside of: a link or button, a figure, a figcaption, an h1."""

    tag: str
    container: Container | None = None
    text: list[str] = field(default_factory=list)
    images: list[ImgTag] = field(default_factory=list)
    caption: str | None = None
    size: int = 0


class _ImgFinder(HTMLParser):
    """Collects ``<img>`` tags with their offsets, ``<picture>`` sources, ``<base href>`` and the
    links, buttons and figures around them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        # HTMLParser counts lines by "\n" alone; so do these offsets.
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.images: list[ImgTag] = []
        self.pictures: list[list[Candidate]] = []
        self.base_href: str | None = None
        self.text_only: str | None = None  # inside <textarea> or <title>: tags there are text
        self.raw: str | None = None  # inside <script> or <style>
        self.open: list[_Open] = []
        self.title = ""
        self.heading: str | None = None
        self.lang = ""
        self.needs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.text_only is not None or self.raw is not None:
            return
        values: dict[str, str | None] = {}
        for name, value in attrs:
            values.setdefault(name.lower(), value)
        if tag in _TEXT_ONLY:
            self.text_only = tag
        elif tag in _RAW:
            self.raw = tag
        elif tag == "html" and not self.lang:
            self.lang = (values.get("lang") or "").strip()
        elif tag == "base" and self.base_href is None and values.get("href"):
            self.base_href = (values["href"] or "").strip()
        elif tag == "picture":
            self.pictures.append([])
        elif tag == "img":
            self._image(values)
        elif (tag == "a" and values.get("href") is not None) or tag == "button":
            label = (values.get("aria-label") or values.get("title") or "").strip()
            self.open.append(_Open(tag, Container("link" if tag == "a" else "button", values.get("href"), label)))
        elif tag in ("figure", "figcaption") or (tag == "h1" and self.heading is None):
            self.open.append(_Open(tag))
        if tag == "source" and self.pictures:
            self.pictures[-1].extend(parse_srcset(values.get("srcset") or ""))
        for name in _NEEDS.get(tag, ()):
            if values.get(name):
                self.needs.append((values[name] or "").strip())

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # <img/>, <source/>: no end tag to wait for
        if tag in _RAW and self.raw == tag:
            self.raw = None

    def handle_endtag(self, tag: str) -> None:
        if self.text_only is not None:
            if tag == self.text_only:
                self.text_only = None
            return
        if self.raw is not None:
            if tag == self.raw:
                self.raw = None
            return
        if tag == "picture" and self.pictures:
            self.pictures.pop()
        for depth in range(len(self.open) - 1, -1, -1):  # the nearest open one: markup is forgiving
            if self.open[depth].tag == tag:
                while len(self.open) > depth:
                    self._close(self.open.pop())
                break

    def handle_data(self, data: str) -> None:
        if self.raw is not None:
            return
        if self.text_only == "title":
            if len(self.title) < MAX_KEPT_TEXT:
                self.title += data
            return
        if self.text_only is not None or not self.open or not data.strip():
            return
        for element in self.open:
            if element.tag != "figure" and element.size < MAX_KEPT_TEXT:
                element.text.append(data)
                element.size += len(data)

    def finish(self) -> None:
        """Close what the page left open (a link to the end of the page)."""
        while self.open:
            self._close(self.open.pop())

    def _close(self, element: _Open) -> None:
        text = _one_line(" ".join(element.text))
        if element.container is not None:
            element.container.text = text
            element.container.images = len(element.images)
            for image in element.images:
                image.container = image.container or element.container
        elif element.tag == "figcaption":
            for outer in reversed(self.open):
                if outer.tag == "figure":
                    outer.caption = outer.caption or text
                    break
        elif element.tag == "figure":
            for image in element.images:
                image.caption = image.caption or element.caption or None
        elif element.tag == "h1":
            self.heading = text

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
        image = ImgTag(offset, line, tag_text, values, self.base_href, candidates)
        self.images.append(image)
        for element in self.open:
            if element.container is not None or element.tag == "figure":
                element.images.append(image)
