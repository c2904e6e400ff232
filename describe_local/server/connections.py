"""Every connection has a deadline, and there are only so many connections.

uvicorn's h11 protocol times out an idle keep-alive connection, but not a
request head that never ends ("slowloris"): a socket that sends
``GET / HTTP/1.1\\r\\nHost: x\\r\\n`` and nothing more is kept for ever, and a
thousand of them exhaust the process's file descriptors. Nothing at the ASGI
level can help, since the app is only called once the head is complete; so the
guard is a subclass of uvicorn's :class:`H11Protocol` with one timer per phase
of a connection:

- ``idle``: waiting for a request head (a new or a kept-alive connection):
  ``header_timeout_s``, counted from the start of the wait, not reset by data;
- ``body``: the head is in, the body is not: ``request_timeout_s`` plus a grace
  (the route's own time budget answers 408 first, see ``uploads.read_body``);
- ``busy``: the request is in and the answer not yet sent: the same bound, so a
  client that never reads its answer cannot hold the connection either.

A body must keep coming: after ``BODY_GRACE_S`` one that averages less than
``min_upload_bytes_per_s`` is a trickle and is closed, and one client address may
send at most ``max_uploads_per_client`` bodies at once (more are closed as they
start), so that slow senders cannot take every connection for the length of the
route's time budget.

Beyond ``max_connections`` open connections, a new one closes the connection
that has been idle longest, else the slowest body; when there is neither it is
refused with a 503. A connection opened less than ``HEAD_GRACE_S`` ago is idle
only because its head is on the way, so a body is closed before it is. uvicorn's
``limit_concurrency`` was not enough: it answers 503 only once a head is
complete, so it neither frees the sockets of incomplete heads nor lets anyone
in while they are held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from describe_local.errors import ConfigError
from describe_local.settings import Settings

log = logging.getLogger(__name__)

WARN_EVERY_S = 60.0  # a flood would otherwise write a log line per socket
GRACE_S = 5.0  # past the route's own time budget, so that its answer goes out first
REFUSAL_LINGER_S = 1.0  # a refused socket is read and dropped this long, so the client sees the 503, not a reset
RETRY_AFTER_S = 2
BODY_GRACE_S = 5.0  # a body's first seconds are not judged for speed (a phone waking its radio)
RATE_CHECK_S = 1.0  # how often a body's speed is checked
HEAD_GRACE_S = 1.0  # a client sends its head at once: a newer idle connection is not evicted before a body


def _refusal() -> bytes:
    body = json.dumps({"detail": "the server has too many open connections; try again in a few seconds"}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


REFUSAL = _refusal()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline in every phase and a cap on open connections.

    Made per server by :func:`guarded_protocol`, which sets the class attributes.
    """

    header_timeout_s: float = 10.0
    request_timeout_s: float = 120.0
    max_connections: int = 100
    max_uploads_per_client: int = 16
    min_upload_bytes_per_s: int = 1024
    lingering: int = 0  # refused connections still draining, for all instances of the class
    warned_at: float = float("-inf")  # loop time of the last warning about closed or refused connections

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._rate_timer: asyncio.TimerHandle | None = None
        self._phase = ""
        self._since = self.loop.time()
        self._body_bytes = 0
        self._refused = False
        if len(self.connections) > self.max_connections and not self._make_room():
            self._refuse()
            return
        self._update_phase()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped: closing with unread data would reset the connection
        if self._phase == "body":
            self._body_bytes += len(data)
        super().data_received(data)
        self._update_phase()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update_phase()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._refused:
            self._refused = False
            type(self).lingering -= 1
        super().connection_lost(exc)

    # -- phases and their deadlines -------------------------------------------------------------

    def _phase_now(self) -> str:
        if self.cycle is None or self.cycle.response_complete:
            return "idle"
        return "body" if self.conn.their_state is h11.SEND_BODY else "busy"

    def _update_phase(self) -> None:
        """Start the deadline of the phase the connection has just entered (none if unchanged)."""
        if self.transport.is_closing():
            self._cancel()
            return
        phase = self._phase_now()
        if phase == self._phase:
            return
        self._phase, self._since = phase, self.loop.time()
        limit = self.header_timeout_s if phase == "idle" else self.request_timeout_s + GRACE_S
        self._cancel()
        self._timer = self.loop.call_later(limit, self._expire, phase)
        if phase == "body":
            self._body_bytes = 0
            if self._uploads_from_here() > self.max_uploads_per_client:
                self._warn(f"closed an upload: over {self.max_uploads_per_client} at once from one address")
                self._close()
                return
            self._rate_timer = self.loop.call_later(BODY_GRACE_S, self._check_rate)

    def _check_rate(self) -> None:
        """Close a body that trickles (see the module's docstring); else look again in a moment."""
        self._rate_timer = None
        if self.transport.is_closing() or self._phase_now() != "body":
            return
        if self._body_rate() < self.min_upload_bytes_per_s:
            self._warn(f"closed an upload slower than {self.min_upload_bytes_per_s} bytes/s")
            self._close()
            return
        self._rate_timer = self.loop.call_later(RATE_CHECK_S, self._check_rate)

    def _body_rate(self) -> float:
        return self._body_bytes / max(self.loop.time() - self._since, 1e-3)

    def _uploads_from_here(self) -> int:
        peer = self._peer()
        return sum(1 for c in self.connections
                   if isinstance(c, GuardedH11Protocol) and c._phase == "body" and not c.transport.is_closing()
                   and c._peer() == peer)

    def _peer(self) -> str | None:
        address = self.transport.get_extra_info("peername")
        return str(address[0]) if isinstance(address, tuple) and address else None

    def _close(self) -> None:
        self._cancel()
        self.transport.close()
        self.connections.discard(self)  # counted out now, not when the loop gets to it

    def _expire(self, phase: str) -> None:
        self._timer = None
        if self.transport.is_closing() or phase != self._phase_now():
            return
        self._warn(f"closed a connection that sent no {'request' if phase == 'idle' else phase} in time")
        self.transport.close()

    def _warn(self, message: str) -> None:
        """Log ``message`` at WARNING, or at DEBUG when a warning went out in the last minute."""
        cls, now = type(self), self.loop.time()
        if now - cls.warned_at >= WARN_EVERY_S:
            cls.warned_at = now
            log.warning("%s (more like it go to the debug log for %.0f s)", message, WARN_EVERY_S)
        else:
            log.debug("%s", message)

    def _cancel(self) -> None:
        for timer in (self._timer, self._rate_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._rate_timer = None

    # -- the cap ----------------------------------------------------------------------------------

    def _make_room(self) -> bool:
        """Close the connection idle the longest, else the slowest body, to make room for this one;
        False when every other connection is working on an answer."""
        others = [c for c in self.connections
                  if isinstance(c, GuardedH11Protocol) and c is not self and not c.transport.is_closing()]
        idle = [c for c in others if c._phase == "idle"]
        bodies = [c for c in others if c._phase == "body"]
        oldest = min(idle, key=lambda c: c._since, default=None)
        # A head only on its way (newer than HEAD_GRACE_S) is kept while there is a body to close instead.
        if oldest is not None and (not bodies or self.loop.time() - oldest._since >= HEAD_GRACE_S):
            oldest._close()
            self._warn(f"over {self.max_connections} connections: closed the one idle longest")
            return True
        if bodies:
            min(bodies, key=lambda c: c._body_rate())._close()
            self._warn(f"over {self.max_connections} connections: closed the slowest upload")
            return True
        return False

    def _refuse(self) -> None:
        """Answer 503 before reading anything, and close."""
        self._warn(f"refused a connection: {len(self.connections) - 1} are open, all busy")
        self.connections.discard(self)
        self.transport.write(REFUSAL)
        cls = type(self)
        if cls.lingering >= self.max_connections:  # a flood: drop at once, even if that resets
            self.transport.close()
            return
        self._refused = True
        cls.lingering += 1
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(REFUSAL_LINGER_S, self.transport.close)


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with the limits of ``settings`` (one class per server)."""
    if settings.header_timeout_s <= 0 or settings.request_timeout_s <= 0:
        raise ConfigError("header_timeout_s and request_timeout_s must be positive")
    if settings.max_connections < 1:
        raise ConfigError("max_connections must be at least 1")
    attributes = {
        "header_timeout_s": float(settings.header_timeout_s),
        "request_timeout_s": float(settings.request_timeout_s),
        "max_connections": int(settings.max_connections),
        "max_uploads_per_client": int(settings.max_uploads_per_client),
        "min_upload_bytes_per_s": int(settings.min_upload_bytes_per_s),
        "lingering": 0,
        "warned_at": float("-inf"),
    }
    return type("ServerH11Protocol", (GuardedH11Protocol,), attributes)


def ensure_fd_headroom(max_connections: int) -> None:
    """Raise the soft limit on open files to what ``max_connections`` may need (held, plus a batch
    being accepted, plus the models' own), or warn when the hard limit does not allow it."""
    needed = 2 * max_connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            log.warning("only %d open files are allowed; %d connections may need %d", target, max_connections, needed)


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration every server of this app runs with (``serve``, tests, benchmarks).

    ``options`` are passed on (host, port, access_log, ...).
    """
    ensure_fd_headroom(settings.max_connections)
    defaults: dict[str, Any] = {
        "http": guarded_protocol(settings),
        "ws": "none",  # no WebSocket routes: no upgrades
        "lifespan": "on",
        "log_config": None,  # keep the caller's logging set-up
        "access_log": False,  # it shows full paths (names, signatures); see logs.AccessLog
        # Clients are told apart by their socket address (token limits), never by a header they send.
        "proxy_headers": False,
        "server_header": False,
        # asyncio accepts up to ``backlog`` sockets at a time before any of them reaches the
        # protocol (and its cap): at uvicorn's 2048 a flood ran out of file descriptors first.
        "backlog": settings.max_connections,
    }
    return uvicorn.Config(app, **{**defaults, **options})
