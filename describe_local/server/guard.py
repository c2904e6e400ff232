"""The outermost layer of the app: the Host allow-list and the security headers of every response.

It wraps the whole middleware stack (see ``app.py``), Starlette's own error
middleware included, so that even an unexpected 500 carries the headers.

- ``allowed_hosts``: a request whose ``Host`` is not one this server answers to
  gets 400. Against DNS rebinding, where a web page on another name (the
  attacker's, pointed at a LAN address) reaches this server through the
  visitor's browser: such a request carries the attacker's name. Empty (the
  default): this machine's own names (``localhost``, its host name and
  ``NAME.local``), the loopback addresses, the address it was told to listen
  on and the address each request came to (with ``--host 0.0.0.0``, whichever
  interface the phone reached). A list: exactly those. ``*``: any.
- ``trusted_proxies`` (addresses, CIDR blocks; empty: none): a request whose
  socket comes from one of them is counted (wrong-token limit, logs) against
  the client its ``X-Forwarded-For`` names: the rightmost address there that
  is not itself a trusted proxy. From anyone else the header is ignored, so a
  guesser cannot dodge the limit by making up addresses.
- Every response: ``nosniff``, ``no-referrer``, no framing, same-origin only,
  and a Content-Security-Policy: the pages set their own (``PAGE_CSP``); JSON,
  audio and files get one that allows nothing (``API_CSP``); the offline API
  docs may run exactly the inline scripts they hold, by hash (``docs_csp``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from describe_local.errors import BadHost, ConfigError
from describe_local.server.certificate import ANY_ADDRESS, machine_names

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
ANY_HOST = "*"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def host_name(host: str) -> str:
    """The name or address in a ``Host`` header value, without its port or brackets, lowercase."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def own_names(bound_host: str) -> frozenset[str]:
    """The names a server listening on ``bound_host`` answers to by default (besides the address a
    request came to): loopback, this machine's names, and ``bound_host`` itself unless it is "any"."""
    names = {*LOOPBACK_NAMES, *machine_names()}
    if bound_host not in ANY_ADDRESS:
        names.add(_address_key(bound_host.strip("[]").lower()))
    return frozenset(names)


def _address_key(name: str) -> str:
    """An address written one way (an IPv4 address a dual-stack socket reports as ``::ffff:a.b.c.d``
    as itself); a name as it is."""
    try:
        return str(_ip(name))
    except ValueError:
        return name


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(text)
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def parse_proxies(trusted_proxies: str) -> list[IPNetwork]:
    """``"10.0.0.2, 172.16.0.0/12"`` as networks (:class:`ConfigError` for one that is not)."""
    networks = []
    for entry in (e.strip() for e in trusted_proxies.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(f"setting trusted_proxies: {entry!r} is not an address or CIDR block "
                              "(e.g. 10.0.0.2 or 172.16.0.0/12)") from None  # fmt: skip
    return networks


def forwarded_client(peer: str, forwarded_for: str, proxies: list[IPNetwork]) -> str:
    """The client a request from ``peer`` came for: ``peer`` itself unless it is a trusted proxy; then
    the rightmost address in ``forwarded_for`` that is not a trusted proxy (each proxy appends the
    address it heard from, so the ones left of that are the client's to make up)."""
    if not _trusted(peer, proxies):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            address = str(ipaddress.ip_address(hop.strip("[]")))
        except ValueError:
            return peer  # a hop we cannot read: count the proxy, not whatever is left of it
        if not _trusted(address, proxies):
            return address
    return peer


def _trusted(address: str, proxies: list[IPNetwork]) -> bool:
    try:
        ip = _ip(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in proxies)


class Guard:
    """ASGI middleware: refuse foreign Host headers, take the client from a trusted proxy's header,
    add the security headers to every response."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: str = "",
        docs_paths: Iterable[str] = (),
        *,
        bound_host: str = "127.0.0.1",
        trusted_proxies: str = "",
    ) -> None:
        self.app = app
        self.allowed = parse_hosts(allowed_hosts)
        self.any_host = ANY_HOST in self.allowed
        self.own = own_names(bound_host)
        self.proxies = parse_proxies(trusted_proxies)
        self.docs_paths = frozenset(docs_paths)

    def answers(self, scope: Scope, host: str) -> bool:
        """Whether this server answers a request of ``scope`` whose ``Host`` header is ``host``."""
        if self.any_host:
            return True
        if self.allowed:
            return host_allowed(host, self.allowed)
        name = _address_key(host_name(host))
        if not name:  # HTTP/1.0 without a Host: no browser sends that, so no page can rebind it
            return True
        server = scope.get("server") or ("",)
        return name in self.own or name.endswith(".localhost") or name == _address_key(str(server[0]).lower())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not self.answers(scope, headers.get(b"host", b"").decode("latin-1")):
            log.info("refused a request for a host name this server does not answer to")
            await _refuse_host(send)
            return
        if self.proxies and scope.get("client"):
            peer, port = scope["client"]
            chain = ",".join(v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-forwarded-for")
            client = forwarded_client(peer, chain, self.proxies)
            if client != peer:
                scope = {**scope, "client": (client, port)}
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
    message = ("this server does not answer to that host name; open it at its own address, or add the name "
               "to the allowed_hosts setting")
    body = json.dumps({"detail": str(BadHost(message))}).encode()
    start = {
        "type": "http.response.start",
        "status": BadHost.http_status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(_add_headers(start, API_CSP))
    await send({"type": "http.response.body", "body": body})
