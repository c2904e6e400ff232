"""The known-faces gallery: one folder per person, the folder's name is the spoken name.

::

    known_faces/
        Zoë Saldaña/
            beach.jpg
            passport.heic
        Jack/
            IMG_0042.jpg
        .encodings.json      <- cache, rebuilt whenever it is stale or unreadable

People can be added with ``describe-local faces add`` or by hand (make a
folder, drop photos in). Each photo must show exactly one face: ``add``
refuses any other; a photo put in by hand that shows no face or several is
skipped with a warning and listed by ``describe-local faces list``.

Encodings are cached in ``.encodings.json``, keyed by the photo's path
relative to the gallery, with its size, mtime and ctime; when those differ the
file's SHA-256 decides whether it really changed. A photo added, replaced or
deleted by hand is therefore noticed on the next load, and a cache that
cannot be read is rebuilt from the photos.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from describe_local.errors import DescribeLocalError, GalleryError
from describe_local.images import image_limits, is_image_path, load_photo, suffix_for
from describe_local.names import real_name, undecodable_escaped
from describe_local.see.faces.encodings_cache import CACHE_NAME, EncodingCache, sha256, stat_key
from describe_local.see.faces.naming import check_name

if TYPE_CHECKING:
    from describe_local.see.faces.detect import FaceModels
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

@dataclass
class GalleryPhoto:
    """One photo in the gallery and what the face models made of it."""

    person: str
    path: Path
    faces: int  # faces found; only a photo with exactly one is used
    encoding: np.ndarray | None = None  # 128 numbers when ``faces == 1``
    error: str | None = None  # why the photo could not be read, if it could not

    @property
    def usable(self) -> bool:
        return self.encoding is not None

    @property
    def problem(self) -> str | None:
        """Why this photo is skipped, in words; ``None`` if it is used."""
        if self.error:
            return self.error
        if self.faces == 0:
            return "no face found"
        if self.faces > 1:
            return f"{self.faces} faces found"
        return None


@dataclass
class Gallery:
    """The known-faces folder. Cheap to open; face models load only when encodings are needed."""

    folder: Path
    settings: Settings  # passed down from the caller, never reloaded here
    _models: FaceModels | None = field(default=None, repr=False)

    @classmethod
    def open(cls, folder: Path, settings: Settings, models: FaceModels | None = None) -> Gallery:
        """The gallery at ``folder``; the folder need not exist until someone is added.
        Its photos are decoded and encoded with ``settings`` (the caller's, never reloaded)."""
        folder = Path(folder).expanduser()
        if folder.exists() and not folder.is_dir():
            raise GalleryError(f"the gallery {folder} is not a folder; point --gallery at a folder")
        return cls(folder=folder, settings=settings, _models=models)

    @property
    def cache_path(self) -> Path:
        return self.folder / CACHE_NAME

    def _cache(self) -> EncodingCache:
        return EncodingCache(self.folder, self._params())

    # -- reading ---------------------------------------------------------------

    def people(self) -> list[str]:
        """Everyone in the gallery (the non-hidden subfolders), sorted. A folder name that is not
        UTF-8 is given escaped (``Jos\\xe9``, :func:`~describe_local.names.undecodable_escaped`):
        every name the gallery gives out is text that JSON, speech and URLs take, and each
        method here takes it back."""
        return sorted((undecodable_escaped(n) for n in self._folders()), key=lambda n: (n.casefold(), n))

    def _folders(self) -> list[str]:
        """The people's folder names as they are on disk."""
        if not self.folder.is_dir():
            return []
        return [p.name for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def _person(self, name: str) -> Path:
        """The folder of the person :meth:`people` calls ``name``."""
        return self.folder / (real_name(name, self._folders()) or name)

    def photo_paths(self, name: str) -> list[Path]:
        """The image files in a person's folder (other files are ignored)."""
        person = self._person(name)
        if not person.is_dir():
            return []
        return sorted(p for p in person.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_path(p))

    def photos(self, models: FaceModels | None = None) -> list[GalleryPhoto]:
        """Every photo in the gallery with its face count and encoding; refreshes the cache."""
        cache = self._cache().read()
        fresh: dict[str, dict[str, Any]] = {}
        result: list[GalleryPhoto] = []
        for name in self.people():
            for path in self.photo_paths(name):
                key = path.relative_to(self.folder).as_posix()
                entry = self._entry_for(path, cache.get(key), models)
                fresh[key] = entry
                result.append(_photo_from_entry(name, path, entry))
        if fresh != cache:
            self._cache().write(fresh)
        return result

    def known_encodings(self, models: FaceModels | None = None) -> tuple[list[str], np.ndarray]:
        """``(names, N x 128 array)``: one row per usable photo, ``names[i]`` is its person."""
        photos = self.photos(models)
        for photo in photos:
            if not photo.usable:
                log.warning("a gallery photo was skipped: %s (debug logging names it)", photo.problem)
                log.debug("gallery photo %s skipped", photo.path.relative_to(self.folder))
        usable = [p for p in photos if p.usable]
        if not self.folder.is_dir():
            log.warning("the gallery folder %s does not exist: no one will be recognised", self.folder)
        names = [p.person for p in usable]
        if not usable:
            return names, np.empty((0, 128), dtype=np.float64)
        return names, np.stack([p.encoding for p in usable])

    # -- changing --------------------------------------------------------------

    def add(self, name: str, photos: list[Path]) -> list[Path]:
        """Copy photos of one person into the gallery; returns where they now are.

        Every photo must show exactly one face. If any is refused, nothing is
        copied and :class:`GalleryError` names each refused file. A photo
        already in the person's folder (same content) is not copied twice.
        """
        name = self.resolve_name(name)
        if not photos:
            raise GalleryError(f"give at least one photo of {name}")
        models = self._face_models()
        checked: list[tuple[Path, dict[str, Any]]] = []
        refused: list[str] = []
        for source in photos:
            source = Path(source)
            try:
                entry = self._encode(source, models)
            except DescribeLocalError as exc:
                refused.append(str(exc))
                continue
            if entry["faces"] != 1:
                what = "no face found" if entry["faces"] == 0 else f"{entry['faces']} faces found"
                refused.append(f"{source}: {what}")
                continue
            checked.append((source, entry))
        if refused:
            lead = "refused the photo" if len(photos) == 1 else f"refused {len(refused)} of {len(photos)} photos"
            raise GalleryError(
                f"{lead} (nothing was added; each photo must show only {name}'s face): " + "; ".join(refused)
            )

        person = self._person(name)
        new_person = not person.is_dir()
        try:
            person.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"cannot create {person}: {exc.strerror}") from None
        cache_file = self._cache()
        # One change at a time: another `faces add` waits here, then sees these photos in the cache.
        with cache_file.locked():
            # Refresh first, so that photos changed by hand are not taken for the new ones.
            self.photos(models)
            cache = cache_file.read()
            existing = {entry.get("sha256"): key for key, entry in cache.items() if key.startswith(f"{name}/")}
            added: list[Path] = []
            copied: list[Path] = []
            try:
                for source, entry in checked:
                    if entry["sha256"] in existing:
                        added.append(self.folder / existing[entry["sha256"]])
                        continue
                    target, written = _copy_atomically(source, person, _gallery_filename(source))
                    copied.append(target)
                    if written != entry["sha256"]:  # the encoding would describe another photo
                        raise GalleryError(f"{source} changed while it was being added; add it again")
                    key = target.relative_to(self.folder).as_posix()
                    cache[key] = {**entry, **stat_key(target)}  # the file as written, not the source
                    existing[entry["sha256"]] = key
                    added.append(target)
            except (GalleryError, OSError) as exc:
                # All or nothing: take back what was copied before the failure.
                for path in copied:
                    with contextlib.suppress(OSError):
                        path.unlink()
                if new_person:
                    with contextlib.suppress(OSError):
                        person.rmdir()  # fails, as it should, if another add put photos there meanwhile
                if isinstance(exc, GalleryError):
                    raise
                raise GalleryError(f"cannot add photos to {person}: {exc.strerror}") from None
            cache_file.write(cache)
        log.debug("added %d photo(s) of %s to %s", len(added), name, self.folder)
        return added

    def remove(self, name: str) -> int:
        """Delete a person's folder and photos; returns how many photos went with it. ``name`` is a
        folder :meth:`people` lists, whatever its name (one made by hand may hold characters that
        :func:`check_name` refuses), or a name :meth:`resolve_name` accepts; never one outside."""
        if name not in self.people():
            name = self.resolve_name(name)
        person = self._person(name)
        if person.is_symlink():
            person.unlink()  # a link made by hand: drop the link, leave what it points to alone
            count = 0
        elif person.is_dir():
            count = len(self.photo_paths(name))
            try:
                shutil.rmtree(person)
            except OSError as exc:
                raise GalleryError(f"cannot remove {person}: {exc.strerror}") from None
        else:
            raise GalleryError(f"there is no {name!r} in the gallery {self.folder}; see: describe-local faces list")
        cache_file = self._cache()
        with cache_file.locked():
            cache = cache_file.read()
            cache_file.write({k: v for k, v in cache.items() if not k.startswith(f"{person.name}/")})
        log.debug("removed %s (%d photos) from %s", name, count, self.folder)
        return count

    # -- internals -------------------------------------------------------------

    def resolve_name(self, name: str) -> str:
        """The checked name (see :func:`check_name`), spelt as an existing person's folder
        if one differs from it only in case, so "zoë saldaña" adds to "Zoë Saldaña"."""
        name = check_name(name)
        for existing in self.people():
            if unicodedata.normalize("NFC", existing).casefold() == name.casefold():
                return existing
        return name

    def _face_models(self, models: FaceModels | None = None) -> FaceModels:
        if models is not None:
            return models
        if self._models is None:
            from describe_local.see.faces.detect import FaceModels

            self._models = FaceModels.load()
        return self._models

    def _params(self) -> dict[str, Any]:
        """What the encodings depend on; a cache made with other values is stale."""
        return {"max_side": self.settings.face_max_side, "upsample": self.settings.face_upsample}

    def _entry_for(self, path: Path, cached: dict[str, Any] | None, models: FaceModels | None) -> dict[str, Any]:
        """The cache entry for a gallery photo: reused when the file is unchanged, else recomputed."""
        if cached is not None:
            try:
                stat = stat_key(path)
            except OSError:
                stat = None
            if stat is not None and all(cached.get(k) == v for k, v in stat.items()):
                return cached
            # Touched, copied with its times, or moved: the content decides.
            if stat is not None and cached.get("sha256") == sha256(path):
                return {**cached, **stat}
        try:
            entry = self._encode(path, self._face_models(models))
        except DescribeLocalError as exc:
            entry = {"faces": 0, "error": str(exc).removeprefix(f"{path}: "), "sha256": None}
        with contextlib.suppress(OSError):
            entry.update(stat_key(path))
        return entry

    def _encode(self, path: Path, models: FaceModels) -> dict[str, Any]:
        """Detect and encode the faces in one photo, as a cache entry (without stat fields)."""
        from describe_local.see.faces.detect import find_faces

        photo = load_photo(path, **image_limits(self.settings))
        _boxes, encodings = find_faces(models, photo, self.settings.face_max_side, self.settings.face_upsample)
        entry: dict[str, Any] = {"faces": len(encodings), "sha256": sha256(path)}
        if len(encodings) == 1:
            entry["encoding"] = [float(v) for v in encodings[0]]
        return entry


def _photo_from_entry(person: str, path: Path, entry: dict[str, Any]) -> GalleryPhoto:
    encoding = entry.get("encoding")
    return GalleryPhoto(
        person=person,
        path=path,
        faces=entry["faces"],
        encoding=np.array(encoding, dtype=np.float64) if encoding is not None else None,
        error=entry.get("error"),
    )


def _gallery_filename(source: Path) -> str:
    """The source's file name, with an image suffix added if it has none we recognise.

    Only files with an image suffix count as gallery photos, so a photo named
    ``IMG_0042`` or ``face.jfif`` would otherwise be copied in and then ignored.
    """
    if is_image_path(source):
        return source.name
    return source.name + suffix_for(source)


def _copy_atomically(source: Path, folder: Path, filename: str) -> tuple[Path, str]:
    """Copy ``source`` into ``folder`` as ``filename`` or the first free name after it; returns
    where it went and the SHA-256 of the bytes written, or raises :class:`GalleryError`. The bytes
    go to a hidden temporary name of this process's own, then appear whole under a name no file
    had (a hard link fails rather than replace what another ``add`` put there)."""
    tmp = folder / f".adding-{os.getpid()}-{secrets.token_hex(6)}.tmp"
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, tmp.open("xb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
        target = _claim_free_name(tmp, folder, filename)
    except OSError as exc:
        raise GalleryError(f"cannot copy {source} into the gallery: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return target, digest.hexdigest()


def _claim_free_name(tmp: Path, folder: Path, filename: str) -> Path:
    """Give the finished file ``tmp`` the first free name of ``filename``, ``stem-2.ext``,
    ``stem-3.ext``... in ``folder``, never over another file."""
    name = Path(filename).name.lstrip(".") or "photo.jpg"
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 100_000):
        target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            os.link(tmp, target)
            return target
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some USB disks): claim the name, then move into it
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, target)
            return target
    raise GalleryError(f"no free file name for {filename} in {folder}")
