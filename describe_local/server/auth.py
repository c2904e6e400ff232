"""Access tokens: the admin token (gallery) and, optionally, a token for describing.

Each token is made at the first start that needs it, shown once to whoever
started the server, and only its hash is kept, in ``state_dir/tokens.json``.
The tokens are 192 random bits, so a plain SHA-256 is enough: a slow password
hash protects guessable secrets, and these cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from describe_local.errors import AuthError, DescribeLocalError

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


def bearer_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization: Bearer TOKEN`` header, if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
