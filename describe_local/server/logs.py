"""What the server logs: timings and statuses, never image content, description text or names.

Unless debug logging is on, the only per-request line is :class:`AccessLog`'s,
and loggers known to mention people by name are held at WARNING.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Loggers whose INFO lines name people (e.g. "added 2 photos of NAME").
LOGGERS_WITH_NAMES = ("describe_local.see.faces.gallery",)


def keep_names_out_of_logs(debug: bool) -> None:
    """Hold the loggers that name people at WARNING unless ``debug``."""
    for name in LOGGERS_WITH_NAMES:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)


class AccessLog:
    """One log line per request: method, route *template*, status and time.

    The route template (``/api/gallery/people/{name}``) rather than the path
    keeps names and signatures out of the logs; uvicorn's own access log is
    off unless debugging.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            where = getattr(route, "path", None)
            if where is None:
                path = scope.get("path", "")
                # Static assets have no private part; any other path might (a name).
                where = path if path.startswith(("/static/", "/static-offline-docs/")) else "(no route)"
            log.info("%s %s %d %.0f ms", scope["method"], where, status, (time.perf_counter() - t0) * 1000)
