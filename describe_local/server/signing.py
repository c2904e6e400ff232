"""Signed, expiring URLs for the audio, as an S3 pre-signed URL works.

The signature is an HMAC-SHA256 over the path and the expiry time with a
secret that only the server knows, so a URL cannot be changed to reach another
file or to live longer. The secret is made fresh at each start: the audio lives
in memory and dies with the process anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from describe_local.errors import SignatureError


@dataclass(frozen=True)
class UrlSigner:
    """Makes and checks signed URLs: ``path?expires=UNIX_TIME&sig=HEX``."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    clock: Callable[[], float] = time.time  # Unix seconds; tests pass their own

    def signature(self, path: str, expires: int) -> str:
        """The HMAC of ``path`` and ``expires`` as hex."""
        message = f"{path}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def sign(self, path: str, ttl_s: float, *, now: float | None = None) -> str:
        """``path`` with its expiry time and signature as query parameters."""
        return self.sign_until(path, int((self.clock() if now is None else now) + ttl_s))

    def sign_until(self, path: str, expires: int) -> str:
        """``path`` signed to work until ``expires`` (Unix seconds)."""
        query = urlencode({"expires": expires, "sig": self.signature(path, expires)})
        return f"{path}?{query}"

    def verify(self, path: str, expires: str | None, sig: str | None, *, now: float | None = None) -> None:
        """Raise :class:`SignatureError` unless ``sig`` signs ``path`` and has not expired."""
        if not expires or not sig:
            raise SignatureError("this link is not signed; describe the photo again for a new one")
        try:
            expiry = int(expires)
        except ValueError:
            raise SignatureError("this link is damaged; describe the photo again for a new one") from None
        # Compare the signature first, in constant time, so that a forged
        # expiry learns nothing from the answer.
        expected = self.signature(path, expiry).encode()
        if not hmac.compare_digest(expected, sig.lower().encode("utf-8", "replace")):
            raise SignatureError("this link is damaged; describe the photo again for a new one")
        if (self.clock() if now is None else now) >= expiry:
            raise SignatureError("this link has expired; describe the photo again for a new one")
