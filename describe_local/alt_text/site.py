"""Alt text for a static site on disk: what each page's images need, and the pages' new bytes.

The ``alt-text`` command (``cli/alt_text_pages.py``) works in steps, so that an interrupted
run leaves no page half-written and each image is described once however often it appears:

1. :func:`plan_page` reads and scans a page and finds, for each ``<img>``, the local file it
   shows: its ``src`` (or, with ``srcset`` or ``<picture>``, the largest local candidate)
   resolved against the page, within the site's folder. Remote (``http(s):``, ``//``) and
   ``data:`` sources are listed as skipped and never fetched.
2. :func:`decide_site` applies the alt decision tree (``alt_text/decide.py``) to every image,
   knowing the whole site: the alts repeated over many images, the titles of linked pages.
3. The command describes every image that needs it, once.
4. :func:`finish_page` writes the alts (``pages.insert_alts``) and reports each image.

``alt=""`` marks an image as decorative and is kept, as is any alt a person wrote that is not a
placeholder. Symbolic links never take the run out of the site: an image whose real path lies
outside the site's real folder is skipped (and said), never described (``alt_text/files.py``).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from describe_local.alt_text.decide import NEEDS_DESCRIBING, Choices, Decision, Rule, decide, link_alt
from describe_local.alt_text.files import (  # noqa: F401 (the site's file helpers, from here as before)
    copy_atomic,
    copy_link,
    holds_pages,
    is_page,
    link_inside,
    site_files,
    write_atomic,
)
from describe_local.alt_text.language import in_page_language
from describe_local.alt_text.pages import (
    Candidate,
    DecodedPage,
    Edit,
    ImgTag,
    ScannedPage,
    alt_attribute,
    decode_page,
    insert_alts,
    scan_page,
)
from describe_local.alt_text.placeholders import repeated_alts
from describe_local.alt_text.wording import AltText
from describe_local.errors import DescribeLocalError, PageError
from describe_local.images import PHOTO_FORMATS

FILLED, KEPT, DECORATIVE, SKIPPED = Rule.DESCRIBE.value, Rule.KEPT.value, Rule.DECORATIVE.value, Rule.SKIPPED.value
MARK, MARK_PARTIAL = "describe-local", "describe-local partial"  # data-alt-generated, with --mark
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a bigger .html file is not a page a person wrote
NAME_MAX, PATH_MAX = 255, 4096  # Linux's limits, in bytes, for one name and a whole path
OUTSIDE_LINK = "a symbolic link out of the site folder (not described)"
ENGLISH = "en"


@dataclass
class ImageReport:
    """What happened to one ``<img>``: ``status`` is a :class:`Rule`'s value (filled: described;
    kept; decorative; link named; link described; captioned; spacer; skipped, ``reason`` says
    why). ``old_alt`` and ``placeholder``: a placeholder alt and why it says nothing. A written
    one has its ``alt``, and the exact ``attribute`` inserted at byte ``offset`` of the page;
    ``generated``: its alt was written by describe-local (now, or marked by an earlier run)."""

    line: int
    src: str | None
    status: str
    image: str | None = None
    alt: str | None = None
    old_alt: str | None = None
    placeholder: str | None = None
    long_description: str | None = None
    partial: bool = False
    generated: bool = False
    reason: str | None = None
    offset: int | None = None
    attribute: str | None = None


@dataclass
class PlanOptions:
    """The run's choices for writing: the decision tree's, ``mark`` (``data-alt-generated``), and
    the languages the describer can translate into (``Describer.languages()``), for the report."""

    choices: Choices = field(default_factory=Choices)
    mark: bool = False
    translations: frozenset[str] = frozenset()
    # English texts into a language (``Describer.translate``): generated alts in the page's own language.
    translate: Callable[[list[str], str], list[str]] | None = None


@dataclass
class PagePlan:
    """A page read and scanned: each ``<img>``'s file (or why none), and its decision."""

    page: Path
    root: Path
    raw: bytes = b""
    decoded: DecodedPage | None = None
    scanned: ScannedPage | None = None
    found: list[Path | str] = field(default_factory=list)  # per tag: its file, or why none
    decisions: list[Decision] = field(default_factory=list)
    error: str | None = None

    @property
    def tags(self) -> list[ImgTag]:
        return self.scanned.images if self.scanned else []

    @property
    def lang(self) -> str:
        return self.scanned.lang if self.scanned else ""

    def images(self) -> list[Path]:
        """The files this page needs described (all its images without an alt, before
        :func:`decide_site`)."""
        if not self.decisions:
            return [f for tag, f in zip(self.tags, self.found, strict=True) if not tag.has_alt and isinstance(f, Path)]
        return [d.image for d in self.decisions if d.rule in NEEDS_DESCRIBING and d.image is not None]


@dataclass
class PageReport:
    """One page: where it went, whether it changed, its encoding and language, and each ``<img>``."""

    page: str
    output: str | None = None
    changed: bool = False
    encoding: str | None = None
    lang: str | None = None
    note: str | None = None
    images: list[ImageReport] = field(default_factory=list)
    error: str | None = None


def plan_page(page: Path, root: Path, *, files: bool = True) -> PagePlan:
    """Read and scan ``page`` (inside the site folder ``root``) and find each image's file;
    ``files=False`` (an audit): only the path each image names, without looking at the disk."""
    plan = PagePlan(page, root)
    try:
        with open(page, "rb") as fh:
            plan.raw = fh.read(MAX_PAGE_BYTES + 1)
        if len(plan.raw) > MAX_PAGE_BYTES:
            raise PageError(f"it is over {MAX_PAGE_BYTES // 2**20} MB, more than a web page holds; "
                            "split it or leave it out")
        plan.decoded = decode_page(plan.raw)
        plan.scanned = scan_page(plan.decoded.text)
    except OSError as exc:
        plan.error = f"cannot read it: {exc.strerror or exc}"
        return plan
    except DescribeLocalError as exc:
        plan.error = str(exc)
        plan.decoded = None
        return plan
    plan.found = [choose_image(tag, page, root) if files else named_path(tag, page, root) for tag in plan.tags]
    return plan


def named_path(tag: ImgTag, page: Path, root: Path) -> Path | str:
    """The path an image's ``src`` names (absolute, not looked up), or why it names none; what
    tells images apart in an audit, at no cost in file-system calls."""
    parts = urlsplit(urljoin(tag.base_href, tag.src or "") if tag.base_href else (tag.src or ""))
    if parts.scheme or parts.netloc or not parts.path:
        return "not a local image"
    path = unquote(parts.path)
    base = os.fspath(root) if path.startswith("/") else os.path.dirname(os.fspath(page))
    return Path(os.path.normpath(os.path.join(_absolute(base), path.lstrip("/"))))


def decide_site(plans: list[PagePlan], choices: Choices) -> None:
    """Each image's :class:`Decision`, knowing the whole site: an alt given to many different
    images is a placeholder, and a linked image is named by the page it links to."""
    uses = ((tag.attrs["alt"] or "", found if isinstance(found, Path) else tag.src)
            for plan in plans for tag, found in zip(plan.tags, plan.found, strict=True) if tag.has_alt)
    repeated = repeated_alts(uses)
    names = PageNames({plan.page.resolve(): plan.scanned for plan in plans if plan.scanned})
    for plan in plans:
        plan.decisions = [decide(tag, found, choices, repeated=repeated,
                                 name_of=lambda href, tag=tag, plan=plan: names.name(href, tag, plan))
                          for tag, found in zip(plan.tags, plan.found, strict=True)]


class PageNames:
    """The name of a local page a link leads to: its ``<title>``, else its first ``<h1>``; pages
    not in the run are read once, when a link needs them."""

    def __init__(self, scanned: dict[Path, ScannedPage]) -> None:
        self.scanned: dict[Path, ScannedPage | None] = dict(scanned)

    def name(self, href: str, tag: ImgTag, plan: PagePlan) -> str | None:
        if not urlsplit(href).path:  # "#top", "?q=": this very page
            return None
        target = resolve(href, plan.page, plan.root, tag.base_href, folders=True)
        if not isinstance(target, Path):
            return None
        if target.is_dir():
            target = next((target / n for n in ("index.html", "index.htm") if (target / n).is_file()), target)
        if not is_page(target):
            return None
        if target not in self.scanned:
            other = plan_page(target, plan.root)
            self.scanned[target] = other.scanned
        scanned = self.scanned[target]
        return (scanned.title or scanned.heading or None) if scanned else None


def choose_image(tag: ImgTag, page: Path, root: Path) -> Path | str:
    """The local file to describe for ``tag``: the largest of its local candidates (by pixels
    where the headers can be read, else by descriptor), or the reason there is none."""
    if not tag.candidates:
        return "no src"
    local: list[tuple[Candidate, Path]] = []
    reasons: list[str] = []
    for candidate in tag.candidates:
        found = resolve(candidate.url, page, root, tag.base_href)
        if isinstance(found, Path):
            local.append((candidate, found))
        else:
            reasons.append(found)
    if not local:
        return reasons[-1]  # the reason of src, the fallback every browser would use
    if len({path for _, path in local}) == 1:
        return local[0][1]
    return max(local, key=lambda c: (_pixels(c[1]), c[0].kind == "w", c[0].value))[1]


def resolve(url: str, page: Path, root: Path, base_href: str | None = None, *, folders: bool = False) -> Path | str:
    """The file ``url`` names on disk, relative to ``page`` (or to ``root`` for ``/...``), or why
    it names none: remote, a ``data:`` URL, another scheme, outside the site, not found.
    ``folders``: a folder counts as found too (a link to ``about/``)."""
    url = url.strip()
    if base_href:
        url = urljoin(base_href, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") or parts.netloc:
        return "remote image (not fetched)"
    if scheme == "data":
        return "data: URL (not described)"
    if scheme:
        return f"{scheme}: URL (not described)"
    path = unquote(parts.path)
    if not path:
        return "empty src"
    if "\0" in path:
        return "a file name with a NUL character (not described)"
    base = os.fspath(root) if path.startswith("/") else os.path.dirname(os.fspath(page))
    # First by the path as written: a page must not "../" its way beside the site; then by
    # where it really leads: a symbolic link must not take it there either. (Strings, not
    # Paths, and each folder's real path once: a site has many more images than folders.)
    written = os.path.normpath(os.path.join(_absolute(base), path.lstrip("/") if path.startswith("/") else path))
    too_long = _too_long(written)
    if too_long:
        return too_long
    root_written, root_real = _root(_absolute(os.fspath(root)))
    if not _inside(written, root_written):
        return "outside the site folder"
    try:
        folder, name = os.path.split(written)
        info = os.lstat(written)
        real = os.path.realpath(written) if stat.S_ISLNK(info.st_mode) else os.path.join(_real_folder(folder), name)
        if not _inside(real, root_real):
            return OUTSIDE_LINK
        if real != written:
            info = os.stat(real)
        if not (stat.S_ISREG(info.st_mode) or (folders and stat.S_ISDIR(info.st_mode))):
            return "not found"
    except PermissionError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except (OSError, ValueError):
        return "not found"
    return Path(real)  # the file itself, so that a link swapped later cannot change what is described


def _absolute(folder: str) -> str:
    return folder if os.path.isabs(folder) else os.path.abspath(folder)


@functools.lru_cache(maxsize=64)
def _root(root: str) -> tuple[str, str]:
    """A site folder (absolute) as written and as it really is."""
    written = os.path.normpath(root)
    return written, os.path.realpath(written)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=8192)
def _real_folder(folder: str) -> str:
    """A folder's real path (links resolved), once per run and folder."""
    return os.path.realpath(folder)


def _too_long(path: Path | str) -> str | None:
    """Why ``path`` cannot be a file name on this system (a name over 255 bytes, a path over
    4096), or None."""
    encoded = os.fsencode(os.path.abspath(path))
    if len(encoded) <= NAME_MAX:  # the usual case: neither limit can be reached
        return None
    if len(encoded) >= PATH_MAX:
        return f"its path is longer than the file system allows ({len(encoded)} bytes; not described)"
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > NAME_MAX:
        return f"a file name in it is longer than the file system allows ({longest} bytes; not described)"
    return None


def finish_page(plan: PagePlan, described: Mapping[Path, AltText | str],
                options: PlanOptions | None = None) -> tuple[bytes | None, PageReport]:
    """The page's new bytes (None when nothing changed) and its report; ``described`` maps each
    image to its alt text, or to why it could not be described. Decides the page on its own
    (:func:`decide_site` for a whole site) when that was not done."""
    options = options or PlanOptions()
    report = PageReport(str(plan.page), error=plan.error, encoding=plan.decoded.encoding if plan.decoded else None,
                        lang=plan.lang or None)
    if plan.decoded is None:
        return None, report
    if not plan.decisions:
        decide_site([plan], options.choices)
    edits: list[Edit] = []
    written: list[ImageReport] = []
    for tag, decision in zip(plan.tags, plan.decisions, strict=True):
        report.images.append(_image_report(tag, decision, described))
    if plan.lang and plan.lang.split("-")[0].lower() != ENGLISH:
        report.note = in_page_language(report.images, plan.lang, options.translations, options.translate)
    for tag, item in zip(plan.tags, report.images, strict=True):
        if item.attribute is not None:
            edits.append(Edit(tag, item.alt or "", (MARK_PARTIAL if item.partial else MARK) if options.mark else None))
            item.attribute = alt_attribute(item.alt or "", edits[-1].mark)
            written.append(item)
    if not edits:
        return None, report
    try:
        data, offsets = insert_alts(plan.raw, plan.decoded, edits)
    except DescribeLocalError as exc:
        report.error = str(exc)
        for item in written:
            item.status, item.reason, item.attribute, item.generated = SKIPPED, str(exc), None, False
        return None, report
    for item, offset in zip(written, offsets, strict=True):
        item.offset = offset
    report.changed = True
    return data, report


def _image_report(tag: ImgTag, decision: Decision, described: Mapping[Path, AltText | str]) -> ImageReport:
    """One image's report; ``attribute`` is set (to anything) when an alt is to be written."""
    item = ImageReport(tag.line, tag.src, decision.rule.value, reason=decision.reason, old_alt=decision.old_alt,
                       placeholder=decision.placeholder.value if decision.placeholder else None,
                       generated=decision.generated)
    item.image = str(decision.image) if decision.image is not None else None
    if decision.rule in (Rule.KEPT, Rule.DECORATIVE, Rule.SKIPPED):
        item.alt = decision.alt
        return item
    if decision.rule in NEEDS_DESCRIBING and decision.image is not None:
        result = described.get(decision.image, "not described")
        if isinstance(result, str) or not result.alt:
            item.status = SKIPPED
            if isinstance(result, str):
                item.reason = result
            else:
                item.reason = "nothing found to say" + (" (no caption model)" if result.partial else "")
                item.partial = result.partial
            return item
        kind = tag.container.kind if tag.container else "link"
        item.alt = result.alt if decision.rule is Rule.DESCRIBE else link_alt(result.alt, kind)
        item.long_description, item.partial = result.long_description, result.partial
    else:
        item.alt = decision.alt or ""
    item.generated, item.attribute = True, ""
    return item


def _pixels(path: Path) -> int:
    """The pixel count in an image file's header (only our photo decoders read it), or 0."""
    from PIL import Image

    try:
        with Image.open(path, formats=PHOTO_FORMATS) as img:
            return int(img.width) * int(img.height)
    except Exception:  # not an image we read: compared by its descriptor instead
        return 0
