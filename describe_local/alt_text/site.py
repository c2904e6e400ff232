"""Alt text for a static site on disk: which images each page needs described, and the pages written.

The ``alt-text`` command (``cli/alt_text.py``) works in three steps, so that an interrupted
run leaves no page half-written and each image is described once however often it appears:

1. :func:`plan_page` reads a page and, for each ``<img>`` with no ``alt`` attribute, finds the
   local file to describe: its ``src`` (or, with ``srcset`` or ``<picture>``, the largest local
   candidate) resolved against the page, within the site's folder. Remote (``http(s):``, ``//``)
   and ``data:`` sources are listed as skipped and never fetched.
2. The command describes every image found, once.
3. :func:`finish_page` inserts the alt texts (``pages.insert_alts``) and reports each image;
   :func:`write_atomic` writes a page through a temporary file and a rename.

``alt=""`` marks an image as decorative and is kept, as is any alt already there.

Symbolic links never take the run out of the site: an image whose real path lies outside the
site's real folder is skipped (and said), never described; in a copy (``-o``) a link that stays
inside the site is made again as a link (:func:`copy_link`), one that leads out is skipped
(:func:`link_inside`), and no file is ever copied through a link.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from describe_local.alt_text.pages import (
    Candidate,
    DecodedPage,
    ImgTag,
    alt_attribute,
    decode_page,
    find_images,
    insert_alts,
)
from describe_local.alt_text.wording import AltText
from describe_local.errors import DescribeLocalError, OutputError, PageError
from describe_local.images import PHOTO_FORMATS

HTML_SUFFIXES = frozenset({".html", ".htm"})
SKIP_FOLDERS = frozenset({".git", ".hg", ".svn"})  # version control is not part of a site's copy
FILLED, KEPT, DECORATIVE, SKIPPED = "filled", "kept", "decorative", "skipped"
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a bigger .html file is not a page a person wrote
NAME_MAX, PATH_MAX = 255, 4096  # Linux's limits, in bytes, for one name and a whole path
OUTSIDE_LINK = "a symbolic link out of the site folder (not described)"


@dataclass
class ImageReport:
    """What happened to one ``<img>``: ``status`` is filled, kept (it had an alt), decorative
    (``alt=""``) or skipped (``reason`` says why). A filled one says which file was described,
    the alt, and the exact ``attribute`` inserted at byte ``offset`` of the original page."""

    line: int
    src: str | None
    status: str
    image: str | None = None
    alt: str | None = None
    long_description: str | None = None
    partial: bool = False
    reason: str | None = None
    offset: int | None = None
    attribute: str | None = None


@dataclass
class PagePlan:
    """A page read and parsed: each ``<img>`` without alt with the file to describe, or why not."""

    page: Path
    root: Path
    raw: bytes = b""
    decoded: DecodedPage | None = None
    tags: list[ImgTag] = field(default_factory=list)
    wanted: dict[int, Path | str] = field(default_factory=dict)  # tag index -> image, or a skip reason
    error: str | None = None

    def images(self) -> list[Path]:
        """The files this page needs described."""
        return [target for target in self.wanted.values() if isinstance(target, Path)]


@dataclass
class PageReport:
    """One page: where it went, whether it changed, its encoding, and each ``<img>``."""

    page: str
    output: str | None = None
    changed: bool = False
    encoding: str | None = None
    images: list[ImageReport] = field(default_factory=list)
    error: str | None = None


def is_page(path: Path) -> bool:
    return path.suffix.lower() in HTML_SUFFIXES


def holds_pages(folder: Path) -> bool:
    """Whether ``folder`` (or a folder in it) holds an HTML page: it is then a site."""
    return any(is_page(path) for path in site_files(folder))


def site_files(root: Path) -> Iterator[Path]:
    """Every file of a site folder, sorted, leaving out version-control folders; a symbolic link
    (to a file or a folder) is given as itself and never followed."""
    for folder, subfolders, files in os.walk(root):
        links = [d for d in subfolders if os.path.islink(os.path.join(folder, d))]
        subfolders[:] = sorted(d for d in subfolders if d not in SKIP_FOLDERS and d not in links)
        for name in sorted(files + links):
            yield Path(folder) / name


def link_inside(link: Path, root: Path) -> Path | None:
    """Where the symbolic link ``link`` really leads, when that is inside the site ``root``
    (links through links resolved); None when it leads out of it, or nowhere."""
    try:
        real = Path(os.path.realpath(link))
        inside = real.is_relative_to(os.path.realpath(root)) and os.path.lexists(real)
    except (OSError, ValueError):
        return None
    return real if inside else None


def plan_page(page: Path, root: Path) -> PagePlan:
    """Read and parse ``page`` (inside the site folder ``root``) and find what to describe."""
    plan = PagePlan(page, root)
    try:
        with open(page, "rb") as fh:
            plan.raw = fh.read(MAX_PAGE_BYTES + 1)
        if len(plan.raw) > MAX_PAGE_BYTES:
            raise PageError(f"it is over {MAX_PAGE_BYTES // 2**20} MB, more than a web page holds; "
                            "split it or leave it out")
        plan.decoded = decode_page(plan.raw)
        plan.tags = find_images(plan.decoded.text)
    except OSError as exc:
        plan.error = f"cannot read it: {exc.strerror or exc}"
        return plan
    except DescribeLocalError as exc:
        plan.error = str(exc)
        plan.decoded = None
        return plan
    for index, tag in enumerate(plan.tags):
        if not tag.has_alt:
            plan.wanted[index] = choose_image(tag, page, root)
    return plan


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
    return max(local, key=lambda c: (_pixels(c[1]), c[0].kind == "w", c[0].value))[1]


def resolve(url: str, page: Path, root: Path, base_href: str | None = None) -> Path | str:
    """The file ``url`` names on disk, relative to ``page`` (or to ``root`` for ``/...``), or why
    it names none: remote, a ``data:`` URL, another scheme, outside the site, not found."""
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
    target = root / path.lstrip("/") if path.startswith("/") else page.parent / path
    too_long = _too_long(target)
    if too_long:
        return too_long
    # First by the path as written: a page must not "../" its way beside the site; then by
    # where it really leads: a symbolic link must not take it there either.
    written = Path(os.path.normpath(os.path.abspath(target)))
    if not written.is_relative_to(os.path.normpath(os.path.abspath(root))):
        return "outside the site folder"
    try:
        real = Path(os.path.realpath(written))
        if not real.is_relative_to(os.path.realpath(root)):
            return OUTSIDE_LINK
        if not real.is_file():
            return "not found"
    except (OSError, ValueError) as exc:
        return f"cannot be read: {getattr(exc, 'strerror', None) or exc}"
    return real  # the file itself, so that a link swapped later cannot change what is described


def _too_long(path: Path) -> str | None:
    """Why ``path`` cannot be a file name on this system (a name over 255 bytes, a path over
    4096), or None."""
    encoded = os.fsencode(os.path.abspath(path))
    if len(encoded) >= PATH_MAX:
        return f"its path is longer than the file system allows ({len(encoded)} bytes; not described)"
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > NAME_MAX:
        return f"a file name in it is longer than the file system allows ({longest} bytes; not described)"
    return None


def finish_page(plan: PagePlan, described: Mapping[Path, AltText | str]) -> tuple[bytes | None, PageReport]:
    """The page's new bytes (None when nothing changed) and its report; ``described`` maps
    each image to its alt text, or to why it could not be described."""
    report = PageReport(str(plan.page), error=plan.error,
                        encoding=plan.decoded.encoding if plan.decoded else None)
    if plan.decoded is None:
        return None, report
    edits: list[tuple[ImgTag, str]] = []
    filled: list[ImageReport] = []
    for index, tag in enumerate(plan.tags):
        item = ImageReport(tag.line, tag.src, SKIPPED)
        target = plan.wanted.get(index)
        if tag.has_alt:
            item.status = DECORATIVE if not (tag.attrs["alt"] or "").strip() else KEPT
            item.alt = tag.attrs["alt"] or ""
        elif isinstance(target, Path):
            item.image = str(target)
            result = described.get(target, "not described")
            if isinstance(result, str):
                item.reason = result
            elif not result.alt:
                item.reason = "nothing found to say" + (" (no caption model)" if result.partial else "")
                item.partial = result.partial
            else:
                item.status, item.alt, item.partial = FILLED, result.alt, result.partial
                item.long_description = result.long_description
                item.attribute = alt_attribute(result.alt)
                edits.append((tag, result.alt))
                filled.append(item)
        else:
            item.reason = str(target)
        report.images.append(item)
    if not edits:
        return None, report
    try:
        data, offsets = insert_alts(plan.raw, plan.decoded, edits)
    except DescribeLocalError as exc:
        report.error = str(exc)
        for item in filled:
            item.status, item.reason, item.attribute = SKIPPED, str(exc), None
        return None, report
    for item, offset in zip(filled, offsets, strict=True):
        item.offset = offset
    report.changed = True
    return data, report


@contextlib.contextmanager
def _replacing(target: Path, failed: str) -> Iterator[Path]:
    """A temporary name beside ``target`` for the body to fill; then renamed over ``target``, so
    that ``target`` changes whole or not at all. An ``OSError`` becomes :class:`OutputError`
    (``failed``, then the reason); the temporary name never stays behind."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"{failed}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_atomic(path: Path, data: bytes, *, like: Path | None = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file, then a rename), with the
    permissions of ``like`` when given. Raises :class:`OutputError` (one line)."""
    with _replacing(path, f"cannot write {path}") as tmp:
        with open(tmp, "xb") as fh:
            fh.write(data)
        if like is not None:
            shutil.copymode(like, tmp)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a regular file (contents, permissions, times) whole or not at all, never through a
    symbolic link (``source`` is opened with ``O_NOFOLLOW``). Raises :class:`OutputError`."""
    with _replacing(target, f"cannot copy {source} to {target}") as tmp:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as src:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                raise OutputError(f"cannot copy {source}: it is not a regular file")
            with open(tmp, "xb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            shutil.copystat(source, tmp, follow_symlinks=False)


def copy_link(link: Path, real: Path, target: Path) -> str:
    """Make ``target`` a symbolic link that leads, within the copy, where ``link`` leads within
    the site (``real``, from :func:`link_inside`): relative, so the copy holds together wherever
    it goes. Returns what the new link holds. Raises :class:`OutputError`."""
    relative = os.path.relpath(real, os.path.realpath(link.parent))
    with _replacing(target, f"cannot make the link {target}") as tmp:
        os.symlink(relative, tmp)
    return relative


def _pixels(path: Path) -> int:
    """The pixel count in an image file's header (only our photo decoders read it), or 0."""
    from PIL import Image

    try:
        with Image.open(path, formats=PHOTO_FORMATS) as img:
            return int(img.width) * int(img.height)
    except Exception:  # not an image we read: compared by its descriptor instead
        return 0
