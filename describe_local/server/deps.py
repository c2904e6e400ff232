"""What the routes share before their own work: the server's state, the token, a ready
describer, room in the work queue, and the multipart form, always in that order.

The order is the point: a wrong token is refused before anything else, a server still
loading says so before the queue is looked at, and a full queue answers 503 (with
Retry-After) before a large upload is read. A route takes it as one dependency::

    async def describe(job: Annotated[Job, Depends(job_form())]) -> ...: ...

``job_form`` reads the form by hand (:mod:`~describe_local.server.uploads`: in memory, within
limits), so FastAPI never sees form parameters: each route documents its fields with
``openapi_extra=uploads.multipart_schema(...)``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at
# run time, and those of the dependencies made in ``ready`` and ``job_form`` name their
# arguments, which only the closure sees.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request

from describe_local.errors import NotReady
from describe_local.server.auth import ADMIN, DESCRIBE
from describe_local.server.photo_memory import PhotoMemory
from describe_local.server.state import ServerState
from describe_local.server.uploads import Form, read_form

if TYPE_CHECKING:
    from describe_local.pipeline import Describer


def server_state(request: Request) -> ServerState:
    """The state of this app (``app.state.server``, made by ``create_app``)."""
    return request.app.state.server


def photo_memory(request: Request) -> PhotoMemory:
    """The described photos kept for questions (``app.state.photos``, made by ``create_app``)."""
    return request.app.state.photos


def shared_memory(request: Request) -> PhotoMemory:
    """Photos shared to the app, waiting for the page (``app.state.shared``)."""
    return request.app.state.shared


def client_address(request: Request) -> str:
    """The address of the socket the request came on (never a header the client could choose)."""
    return request.client.host if request.client else "unknown"


State = Annotated[ServerState, Depends(server_state)]
Authorization = Annotated[str | None, Header(include_in_schema=False)]


def describe_token(request: Request, state: State, authorization: Authorization = None) -> bool:
    """Whether the request came with the admin token. Where describing needs a token (the
    ``require_token_for_describe`` setting), one of the two is required: :class:`AuthError` (401)
    or, after too many wrong ones, :class:`TooManyAttempts` (429)."""
    if not state.settings.require_token_for_describe:
        return False
    admin = state.gate.require(authorization, client_address(request), DESCRIBE, ADMIN) == ADMIN
    request.state.admin = admin  # the error handler shows paths to the admin only
    return admin


def admin_token(request: Request, state: State, authorization: Authorization = None) -> bool:
    """The admin token, always required (401, or 429 after too many wrong ones); True."""
    state.gate.require(authorization, client_address(request), ADMIN)
    request.state.admin = True  # error bodies may name the server's folders
    return True


def _admin_state(state: State, _admin: Annotated[bool, Depends(admin_token)]) -> ServerState:
    return state


AdminState = Annotated[ServerState, Depends(_admin_state)]  # for a request with the admin token


def ready_describer(state: ServerState) -> "Describer":
    """The loaded describer, or :class:`NotReady` (503) while it loads or if it failed."""
    if state.describer is not None:
        return state.describer
    if state.load_error:
        raise NotReady(f"the server could not load its models: {state.load_error}", None)
    raise NotReady("the server is still loading its models; try again in a few seconds", 5)


@dataclass
class Ready:
    """A request let in: the server's state, its describer (loaded), and whether the admin sent it."""

    state: ServerState
    describer: "Describer"
    admin: bool


@dataclass
class Job(Ready):
    """A request admitted to the work queue, with its multipart form read."""

    form: Form


def ready(*, admin_only: bool = False) -> Callable[..., Ready]:
    """A dependency: the token (the admin's with ``admin_only``, else as describing needs),
    then the describer, which must be loaded (:class:`NotReady`, 503)."""
    token = admin_token if admin_only else describe_token

    def dependency(state: State, admin: Annotated[bool, Depends(token)]) -> Ready:
        return Ready(state, ready_describer(state), admin)

    return dependency


def job_form(
    *,
    admin_only: bool = False,
    max_bytes: int | None = None,
    needs: Callable[["Describer"], None] | None = None,
) -> Callable[..., Awaitable[Job]]:
    """A dependency: :func:`ready`, then ``needs(describer)`` (a stage the route cannot do
    without; it raises), then room in the queue (:class:`QueueFull`, 503 with Retry-After), then
    the multipart form, at most ``max_bytes`` (the ``max_upload_bytes`` setting by default)."""

    async def dependency(request: Request, let_in: Annotated[Ready, Depends(ready(admin_only=admin_only))]) -> Job:
        state = let_in.state
        if needs is not None:
            needs(let_in.describer)
        state.jobs.check_room()  # refuse before reading a large upload
        limit = state.settings.max_upload_bytes if max_bytes is None else max_bytes
        form = await read_form(request, limit, state.settings.request_timeout_s)
        return Job(state, let_in.describer, let_in.admin, form)

    return dependency
