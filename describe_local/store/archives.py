"""Unpacking a model archive (zip or tar) with bounds on what it may write.

An archive says how big its files are before anything is written; those sizes are checked
first (each file, the whole, and the whole against the archive's own size: a model's weights
hardly compress, so a high ratio is a bomb, not a model), then against the free disk. While
writing, the bytes that really come out are counted, and the run stops at the declared size:
a header that lies is caught at its first extra byte. Members are written one by one as plain
files and folders; nothing else (links, devices) is ever made.
"""

from __future__ import annotations

import errno
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from describe_local.errors import ArchiveTooLarge, NotAModel

MAX_UNPACKED = 64 * 2**30  # bytes, the whole archive unpacked: more than any model we use
MAX_MEMBERS = 100_000
MAX_RATIO = 100  # unpacked / packed, for archives bigger than RATIO_FROM once unpacked
RATIO_FROM = 64 * 2**20  # small archives of text (configs, vocabularies) may compress well
FREE_MARGIN = 256 * 2**20  # left free on the disk after unpacking
CHUNK = 1024 * 1024
# What the standard library's readers raise on a damaged archive (an IndexError or TypeError
# from zipfile or gzip on a cut or garbled header, among others): all one NotAModel.
_DAMAGED = (EOFError, zlib.error, lzma.LZMAError, ValueError, IndexError, TypeError, OSError)


class Limits:
    """The bounds of one archive: its size on disk and the room where it is unpacked."""

    def __init__(self, archive: Path, dest: Path, *, upfront: bool) -> None:
        self.archive = archive
        self.upfront = upfront  # every size is declared before any byte is written (zip)
        self.packed = max(archive.stat().st_size, 1)
        self.dest = dest
        self.declared = 0
        self.members = 0

    def declare(self, name: str, size: int) -> None:
        """Count a member that says it holds ``size`` bytes; refuse it when that is too much."""
        self.members += 1
        self.declared += max(size, 0)
        what = f"{self.archive.name}: "
        if self.members > MAX_MEMBERS:
            raise ArchiveTooLarge(f"{what}more than {MAX_MEMBERS} entries; refused (not a model archive)")
        if self.declared > MAX_UNPACKED:
            raise ArchiveTooLarge(f"{what}unpacks to over {MAX_UNPACKED // 2**30} GB ({name}); refused")
        if self.declared > RATIO_FROM and self.declared > MAX_RATIO * self.packed:
            raise ArchiveTooLarge(
                f"{what}unpacks to {self.declared // 2**20} MB from {self.packed // 2**20 or '<1'} MB "
                f"(over {MAX_RATIO} times its size, at {name}): an archive bomb, not a model; refused")
        free = shutil.disk_usage(self.dest if self.dest.exists() else self.dest.parent).free
        needed = self.declared if self.upfront else size  # a stream's earlier members are on disk already
        if needed + FREE_MARGIN > free:
            raise ArchiveTooLarge(f"{what}needs {needed // 2**20} MB but the disk has {free // 2**20} MB free "
                                  "(and keeps some to spare); free some space and import again")


def extract_zip(path: Path, dest: Path) -> None:
    """Unpack the zip ``path`` into the new folder ``dest`` within the limits."""
    if not zipfile.is_zipfile(path):
        raise NotAModel(f"{path.name} is not a zip archive")
    limits = Limits(path, dest, upfront=True)
    dest.mkdir()
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:  # every size is checked before any byte is written
                check_member(path, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise NotAModel(f"{path.name} contains a symbolic link ({info.filename}); refused")
                limits.declare(info.filename, info.file_size)
            for info in infos:
                target = _target(dest, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                with archive.open(info) as source:
                    _write(path, info.filename, source, target, info.file_size)
    except (*_DAMAGED, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (None, errno.EINVAL):
            raise  # the disk's own failure, not the archive's (EINVAL: a seek to an offset it made up)
        raise NotAModel(f"{path.name} is not a readable zip archive ({exc})") from None


def extract_tar(path: Path, dest: Path) -> None:
    """Unpack the tar ``path`` (plain or compressed) into the new folder ``dest`` within the
    limits, as a stream: each member's size is checked before its bytes are read."""
    limits = Limits(path, dest, upfront=False)
    dest.mkdir()
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in _members(archive):
                check_member(path, member.name)
                if not (member.isfile() or member.isdir()):
                    raise NotAModel(f"{path.name} contains {member.name}, which is not a plain file; refused")
                limits.declare(member.name, member.size)
                target = _target(dest, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                source = archive.extractfile(member)
                if source is None:
                    raise NotAModel(f"{path.name}: {member.name} cannot be read; refused")
                _write(path, member.name, source, target, member.size)
    except (*_DAMAGED, tarfile.TarError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (None, errno.EINVAL):
            raise  # the disk's own failure, not the archive's
        raise NotAModel(f"{path.name} is not a readable tar archive ({exc})") from None


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    member = archive.next()
    while member is not None:
        yield member
        member = archive.next()


def check_member(archive: Path, member: str) -> None:
    """Refuse archive entries that would land outside the folder they are extracted into."""
    parts = PurePosixPath(member.replace("\\", "/"))
    if parts.is_absolute() or ".." in parts.parts or (parts.parts and ":" in parts.parts[0]) or "\0" in member:
        raise NotAModel(f"{archive.name} contains an unsafe path ({member}); refused")


def _target(dest: Path, member: str) -> Path:
    parts = [p for p in PurePosixPath(member.replace("\\", "/")).parts if p not in ("", ".")]
    return dest.joinpath(*parts) if parts else dest


def _write(archive: Path, name: str, source: IO[bytes], target: Path, declared: int) -> None:
    """Copy a member's bytes into a new file, stopping at the first byte past ``declared``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with open(target, "xb") as out:
            while chunk := source.read(min(CHUNK, declared - written + 1)):
                written += len(chunk)
                if written > declared:
                    raise ArchiveTooLarge(f"{archive.name}: {name} holds more than the {declared} bytes "
                                          "its header says; refused (the archive is damaged or hostile)")
                out.write(chunk)
    except FileExistsError:
        raise NotAModel(f"{archive.name} holds {name} twice; refused") from None
    except IsADirectoryError:
        raise NotAModel(f"{archive.name} holds {name} as both a file and a folder; refused") from None
    if written < declared:
        raise NotAModel(f"{archive.name}: {name} is shorter than its header says; copy the archive again")
    os.chmod(target, 0o644)
