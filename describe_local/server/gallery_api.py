"""The known-faces gallery over HTTP: list, add a person with photos, remove. Admin only.

A batch of photos is taken photo by photo: the good ones are added and each refused one is
named with its reason (no face, several faces, not an image, too many pixels) in the answer,
so that one bad photo among ten costs the user one photo, not ten. Only when none is added is
the answer an error.

Photos to add are written to a private staging folder, ``state_dir/staging``,
for as long as the gallery checks and copies them; it is emptied after each
enrolment, whatever happens, and at every start of the server in case the
process died in the middle of one.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from describe_local.errors import FacesUnavailable, GalleryError, PersonNotFound
from describe_local.images import suffix_for
from describe_local.server.deps import AdminState, Job, Ready, job_form, ready
from describe_local.server.state import ServerState
from describe_local.server.uploads import BadUpload, Part, multipart_schema
from describe_local.settings import Settings

if TYPE_CHECKING:
    from describe_local.gallery import Gallery
    from describe_local.pipeline import Describer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/gallery")
STAGING = "staging"  # in state_dir
LEGACY_STAGING = ".upload-*"  # where earlier versions staged, inside the gallery


class Person(BaseModel):
    name: str
    photos: int


class PeopleResponse(BaseModel):
    people: list[Person]


class RefusedPhoto(BaseModel):
    photo: str  # its file name as uploaded
    reason: str  # in words: "no face found", "2 faces found", "not an image"


class AddedResponse(BaseModel):
    name: str
    added: int
    photos: int
    refused: list[RefusedPhoto] = []  # the photos of the batch not added, with why; left out when none


class RemovedResponse(BaseModel):
    name: str
    removed_photos: int


_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {401: {"description": "the admin token is needed"}}


def _gallery(state: ServerState) -> Gallery:
    """The one gallery object of this server: it keeps the face models it loads for enrolment."""
    from describe_local.gallery import open_gallery  # the face code loads on first use, not at start

    with state.lock:
        if state.gallery is None:
            state.gallery = open_gallery(state.settings)
        return state.gallery


def _list_people(state: ServerState) -> list[Person]:
    gallery = _gallery(state)
    return [Person(name=name, photos=len(gallery.photo_paths(name))) for name in gallery.people()]


@router.get("/people", response_model=PeopleResponse, responses=_AUTH_RESPONSES)
async def list_people(state: AdminState) -> PeopleResponse:
    """Everyone in the gallery, with how many photos each has."""
    return PeopleResponse(people=await run_in_threadpool(_list_people, state))


def _faces_loaded(describer: Describer) -> None:
    if not describer.status()["faces"].loaded:
        raise FacesUnavailable("face recognition is not loaded on this server, so no one can be added")


_ADD_SCHEMA = multipart_schema(["name", "photos"], {
    "name": {"type": "string", "description": "the name to speak"},
    "photos": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "photos of this person, each showing only their face",
    },
})


@router.post(
    "/people",
    status_code=201,
    response_model=AddedResponse,
    response_model_exclude_defaults=True,  # ``refused`` only when a photo was
    openapi_extra=_ADD_SCHEMA,
    responses={**_AUTH_RESPONSES, 422: {"description": "every photo was refused: `detail`, and `refused`"}},
)
async def add_person(
    job: Annotated[Job, Depends(job_form(admin_only=True, needs=_faces_loaded))],
) -> AddedResponse | JSONResponse:
    """Add a person (or more photos of one). Each photo must show exactly one face: those that do
    are added, the others are listed in ``refused`` with the reason. None added is a 422 whose
    ``detail`` names each, with ``refused`` as in a 201."""
    state, form = job.state, job.form
    name = form.text("name")
    photos = form.files("photos") or form.files("photo")
    if not name:
        raise BadUpload("give the person's name (form field 'name')")
    if not photos:
        raise BadUpload("give at least one photo of the person (form field 'photos')")
    added, refused = await state.jobs.run(_enrol, state, name, photos)
    log.info("gallery: added %d photo(s), refused %d", added, len(refused))
    if not added:  # the error, with each photo's reason as a value too (the page words them)
        error = GalleryError(_none_added(name, refused))
        return JSONResponse({"detail": str(error), "refused": [r.model_dump() for r in refused]},
                            status_code=error.http_status)
    people = await run_in_threadpool(_list_people, state)
    person = next((p for p in people if p.name.casefold() == name.strip().casefold()), None)
    return AddedResponse(
        name=person.name if person else name, added=added, photos=person.photos if person else added, refused=refused
    )


@router.delete("/people/{name}", response_model=RemovedResponse, responses=_AUTH_RESPONSES)
async def remove_person(name: str, let_in: Annotated[Ready, Depends(ready(admin_only=True))]) -> RemovedResponse:
    """Remove a person and their photos from the gallery."""
    state = let_in.state
    known = await run_in_threadpool(_list_people, state)
    match = next((p.name for p in known if p.name.casefold() == name.casefold()), None)
    if match is None:
        raise PersonNotFound("there is no one of that name in the gallery")
    removed = await state.jobs.run(_remove, state, match)
    log.info("gallery: removed a person (%d photos)", removed)
    return RemovedResponse(name=match, removed_photos=removed)


# -- in the worker thread: serialised with describing, so the recogniser never changes mid-photo.


def _enrol(state: ServerState, name: str, photos: list[Part]) -> tuple[int, list[RefusedPhoto]]:
    """Add each photo on its own; returns how many were added and those refused. Raises
    :class:`GalleryError` for what is not one photo's fault (the name, the folder)."""
    gallery = _gallery(state)
    name = gallery.resolve_name(name)  # a name it refuses is said once, not once per photo
    gallery.folder.mkdir(parents=True, exist_ok=True)
    # The gallery adds from files: stage the uploads, owner-only, where start-up cleans.
    root = Path(state.settings.state_dir) / STAGING
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="enrol-", dir=root))
    added = 0
    refused: list[RefusedPhoto] = []
    try:
        staged: list[tuple[Path, str]] = []
        for i, part in enumerate(photos, 1):
            path = staging / _staged_name(part, i)
            path.write_bytes(part.data)
            staged.append((path, part.filename or f"photo {i}"))
        for path, shown in staged:
            try:
                added += len(gallery.add(name, [path]))
            except GalleryError as exc:
                reason = _refusal(str(exc), path)
                if reason is None:  # not this photo's fault: the next would fail the same way
                    raise GalleryError(_with_upload_names(str(exc), staged)) from None
                refused.append(RefusedPhoto(photo=shown, reason=reason))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if added:
            _refresh_recognizer(state)
    return added, refused


def _refusal(message: str, path: Path) -> str | None:
    """Why the gallery refused the one photo at ``path``, from its message ("...: PATH: no face
    found"), or None when the message is not about that photo."""
    lead = f"{path}: "
    if lead not in message:
        return None
    return message.rsplit(lead, 1)[1].strip() or None


def _none_added(name: str, refused: list[RefusedPhoto]) -> str:
    lead = "the photo was refused" if len(refused) == 1 else f"all {len(refused)} photos were refused"
    each = "; ".join(f"{r.photo}: {r.reason}" for r in refused)
    return f"nothing was added, {lead}: {each}. Each photo must show only {name}'s face"


def _with_upload_names(message: str, staged: list[tuple[Path, str]]) -> str:
    """``message`` with the staging paths (the server's own) replaced by the uploaded names."""
    for path, shown in staged:
        message = message.replace(str(path), shown)
    return message


def clean_staging(settings: Settings) -> int:
    """Delete photos staged for enrolments that never finished (a crash); returns how many folders."""
    stale = [*(Path(settings.state_dir) / STAGING).glob("*"), *Path(settings.known_faces).glob(LEGACY_STAGING)]
    for folder in stale:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
    if stale:
        log.warning("deleted %d staging folder(s) left by an enrolment that did not finish", len(stale))
    return len(stale)


def _remove(state: ServerState, name: str) -> int:
    gallery = _gallery(state)
    count = gallery.remove(name)
    _refresh_recognizer(state)
    return count


def _refresh_recognizer(state: ServerState) -> None:
    """Make the describer see the gallery as it is now."""
    if state.describer is not None:
        state.describer.reload_gallery()


def _staged_name(part: Part, index: int) -> str:
    """A safe file name for an upload, with the suffix of its real format."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(part.filename or "").stem).strip("-")[:60] or "photo"
    return f"{index:02d}-{stem}{suffix_for(part.data)}"
