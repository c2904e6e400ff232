"""Access tokens: the admin token (gallery) and, optionally, a token for describing.

Each token is made at the first start that needs it, shown once to whoever
started the server, and only its hash is kept, in ``state_dir/tokens.json``.
The tokens are 192 random bits, so a plain SHA-256 is enough: a slow password
hash protects guessable secrets, and these cannot be guessed. Guessing is
still held back (:class:`Gate`): after ``token_failures_per_minute`` wrong
tokens from one address, that address gets 429 for the rest of the minute.
The address is the request's client: its socket's, or behind a proxy listed in
``trusted_proxies`` the one that proxy reports (``guard.py`` sets it), so that
one guesser behind a reverse proxy does not lock everyone else out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from describe_local.errors import AuthError, ConfigError, DescribeLocalError, TooManyAttempts

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.json"
ADMIN = "admin"
DESCRIBE = "describe"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass
class TokenStore:
    """Hashes of the server's tokens, by role, kept in a small JSON file."""

    path: Path
    hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, state_dir: Path) -> TokenStore:
        """Read the token hashes from ``state_dir`` (none yet is fine)."""
        path = Path(state_dir) / TOKENS_FILE
        try:
            hashes = json.loads(path.read_text())
        except FileNotFoundError:
            hashes = {}
        except (OSError, ValueError) as exc:
            raise DescribeLocalError(
                f"cannot read {path}: {exc}; delete it to make new tokens"
            ) from None
        return cls(path, {str(k): str(v) for k, v in hashes.items()})

    def ensure(self, role: str) -> str | None:
        """Make a token for ``role`` if it has none; return the new token, or None if one exists."""
        if role in self.hashes:
            return None
        return self.reset(role)

    def reset(self, role: str) -> str:
        """Make a new token for ``role`` (the old one stops working) and return it."""
        token = secrets.token_urlsafe(24)
        self.hashes[role] = _digest(token)
        self._save()
        log.info("made a new %s token", role)
        return token

    def check(self, role: str, token: str | None) -> bool:
        """True when ``token`` is the token of ``role``."""
        expected = self.hashes.get(role)
        if not expected or not token:
            return False
        return hmac.compare_digest(expected, _digest(token))

    def require(self, token: str | None, *roles: str) -> None:
        """Raise :class:`AuthError` unless ``token`` belongs to one of ``roles``."""
        if not any(self.check(role, token) for role in roles):
            what = "the admin token" if roles == (ADMIN,) else "an access token"
            raise AuthError(f"this needs {what}: enter it on the page (it was shown when the server first started)")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # Owner-only: even hashes are nobody else's business.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.hashes, fh, indent=2)
        os.replace(tmp, self.path)


@dataclass
class AttemptLimiter:
    """Wrong tokens per client address in a sliding window; at most ``per_window`` are let through."""

    per_window: int
    window_s: float = 60.0
    max_clients: int = 10_000  # addresses remembered; the longest quiet are forgotten first
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.per_window < 1:
            raise ConfigError("token_failures_per_minute must be at least 1")

    def check(self, client: str) -> None:
        """Raise :class:`TooManyAttempts` while ``client`` has used up its wrong tokens."""
        with self._lock:
            recent = self._recent(client, self.clock())
            if len(recent) < self.per_window:
                return
            wait = max(1, math.ceil(recent[0] + self.window_s - self.clock()))
        raise TooManyAttempts(f"too many wrong tokens; try again in {wait} s", wait)

    def failed(self, client: str) -> None:
        """Count a wrong token from ``client``."""
        with self._lock:
            now = self.clock()
            recent = self._recent(client, now)
            recent.append(now)
            if len(recent) == self.per_window:  # once per lock-out, not per refused guess
                log.warning("%d wrong tokens from one address in a minute: holding it back", self.per_window)
            self._failures[client] = recent
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float]:
        recent = self._failures.get(client, deque(maxlen=self.per_window))
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if not recent:
            self._failures.pop(client, None)
        return recent


@dataclass
class Gate:
    """The server's tokens, with a limit on wrong ones per client address."""

    tokens: TokenStore
    attempts: AttemptLimiter

    def require(self, authorization: str | None, client: str, *roles: str) -> str:
        """The role of the bearer token in ``authorization``, which must be one of ``roles``.

        Raises :class:`AuthError` (401) for no token or a wrong one, and
        :class:`TooManyAttempts` (429) once ``client`` has sent too many wrong
        ones: then even the right token is not tried. No token is not a guess.
        """
        token = bearer_token(authorization)
        if token is not None:
            self.attempts.check(client)
        for role in roles:
            if self.tokens.check(role, token):
                return role
        if token is not None:
            self.attempts.failed(client)
        self.tokens.require(None, *roles)  # raises the AuthError that names what is needed
        raise AssertionError("unreachable")

    def role(self, authorization: str | None, client: str) -> str | None:
        """The role of the token in ``authorization``, or None: no token, a wrong one (counted),
        or a client held back. Never raises, for endpoints anyone may call."""
        try:
            return self.require(authorization, client, ADMIN, DESCRIBE)
        except (AuthError, TooManyAttempts):
            return None


def bearer_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization: Bearer TOKEN`` header, if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
