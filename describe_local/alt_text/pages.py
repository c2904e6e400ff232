"""Finding the ``<img>`` tags of an HTML page and adding ``alt`` to them, byte for byte.

Pure logic over a page's bytes, no files and no models: the ``alt-text`` command
(``cli/alt_text.py``, with ``alt_text/site.py``) reads pages and describes images around it.

A page is never re-serialised. ``alt_text/parsing.py`` finds each start tag and its exact
source text; the new attribute is inserted right after the tag's name (``<img`` → ``<img
alt="..."``), an ``alt`` being replaced (a placeholder) is taken out of that tag, and every
other byte of the page is kept. The page keeps its encoding (a byte-order mark, else ``<meta charset>``
in its first 1024 bytes, else UTF-8); an alt's characters that the encoding lacks are
written as character references.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass

from describe_local.alt_text.parsing import (
    Candidate,
    ImgTag,
    ScannedPage,
    check_parse_work,
    find_images,
    parse_srcset,
    scan_page,
)
from describe_local.errors import PageError

__all__ = ["MARK_ATTRIBUTE", "Candidate", "DecodedPage", "Edit", "ImgTag", "ScannedPage", "alt_attribute",
           "attribute_spans", "check_parse_work", "decode_page", "find_images", "insert_alts", "parse_srcset",
           "scan_page"]

PRESCAN_BYTES = 1024  # where the HTML standard looks for <meta charset>
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# The HTML standard decodes these labels as windows-1252 (a superset that keeps every byte).
_AS_WINDOWS_1252 = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "ascii", "us-ascii", "cp819", "ibm819"}
MARK_ATTRIBUTE = "data-alt-generated"  # says a machine wrote the alt (``--mark``)
# html.parser's own patterns for a start tag's name and attributes (Python 3.11), so that an
# attribute is found where the parser found it.
_TAG_NAME = re.compile(r"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*")
_ATTRIBUTE = re.compile(r"((?<=['\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*"
                        r"('[^']*'|\"[^\"]*\"|(?!['\"])[^>\s]*))?(?:\s|/(?!>))*")


@dataclass(frozen=True)
class DecodedPage:
    """A page's text and how to get its bytes back: ``encoding`` (a Python codec name), the
    byte-order mark it starts with (``b""`` for none) and where the encoding came from."""

    text: str
    encoding: str
    bom: bytes
    source: str  # "bom", "meta" or "default"


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


def alt_attribute(alt: str, mark: str | None = None) -> str:
    """`` alt="..."`` with ``alt`` escaped for a double-quoted attribute (on one line), and with
    ``mark`` the ``data-alt-generated`` attribute after it."""
    attribute = f' alt="{_escaped(" ".join(alt.split()))}"'
    return attribute + (f' {MARK_ATTRIBUTE}="{_escaped(mark)}"' if mark else "")


@dataclass(frozen=True)
class Edit:
    """A new ``alt`` for one ``<img>`` (and, with ``mark``, ``data-alt-generated``): an ``alt``
    or ``data-alt-generated`` the tag had is taken out, the new ones go right after ``<img``."""

    tag: ImgTag
    alt: str
    mark: str | None = None


def insert_alts(raw: bytes, page: DecodedPage, edits: Iterable[Edit | tuple[ImgTag, str]]) -> tuple[bytes, list[int]]:
    """``raw`` with each edit's ``alt`` (and mark) right after its tag name, replacing the tag's own.

    Returns the new bytes and, for each edit in order of position, the byte offset in ``raw``
    where its attribute went in; nothing outside the edited tags changes.
    """
    out: list[bytes] = [page.bom]
    offsets: list[int] = []
    char_at, byte_at = 0, len(page.bom)
    for edit in sorted((e if isinstance(e, Edit) else Edit(*e) for e in edits), key=lambda e: e.tag.offset):
        tag = edit.tag
        cut = tag.offset + 1 + len("img")
        end = tag.offset + len(tag.tag_text)
        if page.text[tag.offset:cut].lower() != "<img" or page.text[tag.offset:end] != tag.tag_text:
            raise ValueError(f"no <img at offset {tag.offset}")
        segment = page.text[char_at:end].encode(page.encoding, "surrogateescape")
        if raw[byte_at:byte_at + len(segment)] != segment:  # a stateful encoding: never guess
            raise PageError(f"its encoding ({page.encoding}) cannot be edited without changing other bytes")
        head = page.text[char_at:cut].encode(page.encoding, "surrogateescape")
        out.append(head)
        offsets.append(byte_at + len(head))
        out.append(alt_attribute(edit.alt, edit.mark).encode(page.encoding, "xmlcharrefreplace"))
        rest = tag.tag_text[len("<img"):]
        for start, stop in sorted(attribute_spans(tag.tag_text, ("alt", MARK_ATTRIBUTE)), reverse=True):
            rest = rest[:start - len("<img")] + rest[stop - len("<img"):]
        out.append(rest.encode(page.encoding, "surrogateescape"))
        byte_at += len(segment)
        char_at = end
    out.append(raw[byte_at:])
    return b"".join(out), offsets


def attribute_spans(tag_text: str, names: Iterable[str]) -> list[tuple[int, int]]:
    """Where in a start tag's text the first attribute of each of ``names`` is (with the white
    space after it), found the way html.parser finds attributes."""
    wanted = {name.lower() for name in names}
    found: dict[str, tuple[int, int]] = {}
    match = _TAG_NAME.match(tag_text, 1)
    at = match.end() if match else len(tag_text)
    while at < len(tag_text):
        attr = _ATTRIBUTE.match(tag_text, at)
        if attr is None:
            break
        name = attr.group(1).lower()
        if name in wanted and name not in found:
            found[name] = (attr.start(), attr.end())
        at = attr.end()
    return list(found.values())


def _escaped(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


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
