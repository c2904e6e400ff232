"""A static site's files on disk: which files it holds, symbolic links that must not take a
run out of it, and writes that leave a file whole or untouched.

Symbolic links never take the run out of the site: in a copy (``-o``) a link that stays inside
the site is made again as a link (:func:`copy_link`), one that leads out is skipped
(:func:`link_inside`), and no file is ever copied through a link.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from describe_local.errors import OutputError

HTML_SUFFIXES = frozenset({".html", ".htm"})
SKIP_FOLDERS = frozenset({".git", ".hg", ".svn"})  # version control is not part of a site's copy


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
