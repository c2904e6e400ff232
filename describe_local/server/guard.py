"""The outermost layer of the app: the Host allow-list and the security headers of every response.

It wraps the whole middleware stack (see ``app.py``), Starlette's own error
middleware included, so that even an unexpected 500 carries the headers.

- ``allowed_hosts`` (comma-separated; empty: any): a request whose ``Host`` is
  not listed gets 400. Against DNS rebinding, where a web page on another
  name reaches this server through the visitor's browser.
- Every response: ``nosniff``, ``no-referrer``, no framing, same-origin only,
  and a Content-Security-Policy: the pages set their own (``PAGE_CSP``); JSON,
  audio and files get one that allows nothing (``API_CSP``); the offline API
  docs may run exactly the inline scripts they hold, by hash (``docs_csp``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from describe_local.errors import BadHost

log = logging.getLogger(__name__)

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
API_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
    b"cross-origin-resource-policy": b"same-origin",
}
CSP = b"content-security-policy"
MAX_DOCS_HTML = 256 * 1024  # the docs pages are a few kB; anything larger goes out with API_CSP
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def docs_csp(html: bytes) -> str:
    """The policy of a docs page (Swagger UI, ReDoc): its own inline scripts by hash, and
    inline styles, data: images and blob: workers, which those libraries need."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


def parse_hosts(allowed_hosts: str) -> list[str]:
    """``"a.home, 192.168.1.5:8000, *.lan"`` as a list of lowercase entries."""
    return [h.strip().lower() for h in allowed_hosts.split(",") if h.strip()]


def host_allowed(host: str, allowed: list[str]) -> bool:
    """True when the ``Host`` header value ``host`` matches an entry of ``allowed`` (with or without
    its port; ``*.name`` matches any name under ``name``)."""
    host = host.strip().lower()
    name = host
    if host.startswith("["):  # [::1]:8000
        name = host[: host.find("]") + 1] or host
    elif host.count(":") == 1 and host.rsplit(":", 1)[1].isdigit():
        name = host.rsplit(":", 1)[0]
    return any(entry in (host, name) or (entry.startswith("*.") and name.endswith(entry[1:])) for entry in allowed)


class Guard:
    """ASGI middleware: refuse foreign Host headers, add the security headers to every response."""

    def __init__(self, app: ASGIApp, allowed_hosts: str = "", docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = parse_hosts(allowed_hosts)
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self.allowed):
                log.info("refused a request for a host not in allowed_hosts")
                await _refuse_host(send)
                return
        if scope["path"] in self.docs_paths:
            await self.app(scope, receive, _DocsSender(send))
        else:
            await self.app(scope, receive, _secured(send))


def _add_headers(message: Message, csp: str) -> Message:
    """``message`` (an ``http.response.start``) with the security headers it lacks."""
    headers = list(message.get("headers", []))
    present = {name.lower() for name, _ in headers}
    headers += [(name, value) for name, value in SECURITY_HEADERS.items() if name not in present]
    if CSP not in present:
        headers.append((CSP, csp.encode("latin-1")))
    return {**message, "headers": headers}


def _secured(send: Send) -> Send:
    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _add_headers(message, API_CSP)
        await send(message)

    return secured


class _DocsSender:
    """Holds back a docs page until its body is in, to put the hashes of its scripts in its policy."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body", False) and len(self.body) <= MAX_DOCS_HTML:
            return
        html = bytes(self.body)
        csp = docs_csp(html) if len(html) <= MAX_DOCS_HTML else API_CSP
        start, self.start, self.body = self.start, None, bytearray()
        await self.send(_add_headers(start, csp))
        await self.send({**message, "body": html})


async def _refuse_host(send: Send) -> None:
    body = json.dumps({"detail": str(BadHost("this server does not answer to that host name"))}).encode()
    start = {
        "type": "http.response.start",
        "status": BadHost.http_status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(_add_headers(start, API_CSP))
    await send({"type": "http.response.body", "body": body})
