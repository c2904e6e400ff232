"""The ASGI app: the page, the API, the audio, and the docs, all from this one process.

``create_app(settings)`` loads the models in the background at start-up (the
health endpoint says ``loading`` until they are ready); tests and benchmarks
pass an already loaded ``describer`` to share it between apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from describe_local import __version__
from describe_local.errors import DescribeLocalError, ImageError
from describe_local.images import SEND_A_PHOTO
from describe_local.live_text import LiveTextSessions
from describe_local.server import alt_text_api, ask_api, describe_api, gallery_api, live_api, live_text_api, trust_api
from describe_local.server.auth import ADMIN
from describe_local.server.deps import client_address
from describe_local.server.guard import PAGE_CSP, Guard
from describe_local.server.logs import AccessLog
from describe_local.server.photo_memory import PhotoMemory
from describe_local.server.redact import redact_paths, redact_tree, server_folders
from describe_local.server.state import ServerState
from describe_local.settings import Settings

if TYPE_CHECKING:
    from describe_local.pipeline import Describer

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SWEEP_EVERY_S = 15.0
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")  # fastapi-offline's defaults
DOCS_ASSETS = "/static-offline-docs"  # where fastapi-offline serves Swagger UI's files
# Our theme over Swagger UI's (its greys fail WCAG contrast) and names for its form fields.
DOCS_HEAD = b'<link rel="stylesheet" href="/static/docs.css">\n<script src="/static/docs.js" defer></script>\n</head>'

# The pages load nothing from anywhere else (guard.py adds the other security headers).
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Cache-Control": "no-cache",  # revalidate, so the service worker and browser see updates
}


class Health(BaseModel):
    status: str
    version: str
    models: dict[str, dict[str, Any]]
    error: str | None = None
    queue: dict[str, int]
    describe_needs_token: bool
    audio_clips: int
    uptime_s: float


def create_app(
    settings: Settings, describer: Describer | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """The web app. Without ``describer``, the models load in the background at start-up.
    ``clock`` (Unix seconds) dates signed audio URLs; tests pass one they can move."""
    state = ServerState.create(settings, describer, clock)
    photos = PhotoMemory(ttl_s=settings.ask_ttl_s, max_photos=settings.ask_max_photos, clock=clock)
    shared = PhotoMemory(ttl_s=ask_api.SHARE_TTL_S, max_photos=max(1, settings.max_queue), clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gallery_api.clean_staging(settings)  # photos left by a crash during an enrolment
        if state.describer is None:
            state.load_in_background()
        sweeper = asyncio.create_task(_sweep_audio(state))
        try:
            yield
        finally:
            sweeper.cancel()
            photos.forget_all()
            shared.forget_all()
            state.close()

    app = FastAPIOffline(
        title="describe-local",
        version=__version__,
        description=(
            "Describe a photo out loud, offline: a caption, the people you know and any text "
            "in the picture, as text and as a spoken MP3 at a signed, expiring URL."
        ),
        lifespan=lifespan,
        docs_url=None,  # our own /docs below: Swagger UI with a theme that passes WCAG contrast
        favicon_url="/static/icons/icon.svg",
        static_url=DOCS_ASSETS,
        # Swagger UI would send the spec's URL to validator.swagger.io: nothing leaves the machine.
        # No deep links: in Swagger UI they are links nested in buttons, and tiny targets.
        swagger_ui_parameters={"validatorUrl": None, "deepLinking": False},
    )
    app.state.server = state
    app.state.photos = photos  # described photos, for questions (ask_api)
    app.state.shared = shared  # photos shared to the app, waiting for the page (ask_api)
    app.state.live_text = LiveTextSessions()  # each page's live-text session (live_text_api)
    app.add_middleware(AccessLog)
    # Outermost, around Starlette's error middleware too, so that every response has its headers.
    inner = app.build_middleware_stack
    app.build_middleware_stack = lambda: Guard(  # type: ignore[method-assign]
        inner(), settings.allowed_hosts, DOCS_PATHS, bound_host=settings.host, trusted_proxies=settings.trusted_proxies
    )
    _add_error_handlers(app)
    app.include_router(describe_api.router)
    app.include_router(live_api.router)
    app.include_router(live_text_api.router)
    app.include_router(alt_text_api.router)
    app.include_router(ask_api.router)
    app.include_router(gallery_api.router)
    app.include_router(trust_api.router)  # /trust: the HTTPS authority for phones (serve --https)
    _add_pages(app)
    _add_docs(app)

    @app.get("/api/health", response_model=Health)
    async def health(request: Request) -> Health:
        """Readiness (``loading``, ``ready``, ``failed``) and which models are loaded.

        The details name the server's folders: only with the admin token."""
        models, error = state.models(), state.load_error
        if state.gate.role(request.headers.get("authorization"), client_address(request)) != ADMIN:
            folders = server_folders(settings)
            models, error = redact_tree(models, folders), error and redact_paths(error, folders)
        return Health(
            status=state.status,
            version=__version__,
            models=models,
            error=error,
            queue={"pending": state.jobs.pending, "max": state.jobs.max_pending},
            describe_needs_token=settings.require_token_for_describe,
            audio_clips=state.audio.sweep(),
            uptime_s=round(time.time() - state.started, 1),
        )

    @app.get("/api/languages")
    async def languages() -> dict[str, Any]:
        """The languages descriptions can be spoken in, and the default."""
        return {"default": settings.lang, "languages": _languages(state)}

    return app


def _languages(state: ServerState) -> list[dict[str, str]]:
    """English, plus every language with both a translation model and a voice installed."""
    found: dict[str, str] = {"en": "English"}
    if state.describer is not None:
        found.update({info.code: info.name for info in state.describer.languages() if info.ready})
    return [{"code": code, "name": name} for code, name in sorted(found.items(), key=lambda kv: kv[1])]


async def _sweep_audio(state: ServerState) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        state.audio.sweep()


def _add_pages(app: FastAPI) -> None:
    def page(name: str, media_type: str | None = None) -> Any:
        async def serve() -> FileResponse:
            return FileResponse(STATIC / name, media_type=media_type, headers=PAGE_HEADERS)

        return serve

    app.get("/", include_in_schema=False)(page("index.html"))
    app.get("/gallery", include_in_schema=False)(page("gallery.html"))
    # The service worker lives at the root so that its scope covers every page.
    app.get("/sw.js", include_in_schema=False)(page("sw.js", "text/javascript"))
    app.get("/manifest.webmanifest", include_in_schema=False)(
        page("manifest.webmanifest", "application/manifest+json")
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _add_docs(app: FastAPI) -> None:
    """Swagger UI from this server (fastapi-offline's files), in English and in our theme."""
    redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} · API",
            oauth2_redirect_url=redirect,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="/static/icons/icon.svg",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        html = bytes(page.body).replace(b"<html>", b'<html lang="en">', 1).replace(b"</head>", DOCS_HEAD, 1)
        return HTMLResponse(html)

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _user_message(exc: Exception) -> str:
    """The error's one line, phrased for someone who sent a photo rather than a file path."""
    message = str(exc)
    if isinstance(exc, ImageError):
        message = message.removeprefix("<upload>: ").removeprefix("<bytes>: ")
        if exc.__class__ is ImageError and "limit" not in message and SEND_A_PHOTO not in message:
            message += f"; {SEND_A_PHOTO}"  # the formats, said once, as images.py lists them
    return message


def _add_error_handlers(app: FastAPI) -> None:
    async def known_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DescribeLocalError)
        status = exc.http_status
        headers = {}
        if exc.retry_after:  # 503 busy or loading, 429 too many wrong tokens
            headers["Retry-After"] = str(exc.retry_after)
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        log.info("refused a request: %s %s", status, type(exc).__name__)
        message = _user_message(exc)
        if not getattr(request.state, "admin", False):  # set by the routes that checked the admin token
            message = redact_paths(message, server_folders(request.app.state.server.settings))
        return JSONResponse({"detail": message}, status_code=status, headers=headers)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in errors) or "request"
        return JSONResponse({"detail": f"the request is malformed ({where})"}, status_code=422)

    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.error("unexpected %s while answering a request", type(exc).__name__, exc_info=exc)
        return JSONResponse(
            {"detail": "something went wrong on the server; please try again"}, status_code=500
        )

    app.add_exception_handler(DescribeLocalError, known_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
