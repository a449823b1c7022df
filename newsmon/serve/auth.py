"""Who may use the inbox: users and API keys from the environment, and the CSRF token.

* ``NEWSMON_INBOX_USERS``: ``name:hash,name:hash``; each hash made by
  ``newsmon serve hash-password`` (PBKDF2-SHA256 from the standard library, salted, 600 000
  iterations: OWASP's figure for it; no extra dependency for a handful of analysts).
* ``NEWSMON_INBOX_API_KEYS``: ``name:key,name:key``; sent as ``Authorization: Bearer KEY``
  (the name is who the actions are logged as).
* ``NEWSMON_INBOX_SECRET``: signs the session cookie (itsdangerous, through Starlette's
  SessionMiddleware). Without it a random one is drawn at start: sessions end on restart.

CSRF: a synchronizer token kept in the signed session and sent in every form; a POST whose
form token does not match is refused. Our own ten lines rather than a package: the session is
already signed, so the token cannot be planted by another site, and the CSRF middlewares for
Starlette are small single-maintainer projects. Requests authenticated by API key carry no
cookie a browser would add on its own, so they need no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

ITERATIONS = 600_000
SCHEME = "pbkdf2_sha256"


class AuthConfigError(ValueError):
    """The users or keys in the environment cannot be read."""


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = ITERATIONS) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (base64), for ``NEWSMON_INBOX_USERS``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.urlsafe_b64encode
    return f"{SCHEME}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded`` (made by :func:`hash_password`)."""
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        want = base64.urlsafe_b64decode(digest)
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.urlsafe_b64decode(salt),
                                  int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(want, got)


def _pairs(raw: str, what: str) -> dict[str, str]:
    out = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise AuthConfigError(f"{what}: expected name:value, got {item.split(':')[0]!r}...")
        out[name.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Credentials:
    """The users (name -> password hash) and API keys (key -> name) the inbox accepts."""

    users: Mapping[str, str] = field(default_factory=dict)
    api_keys: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """Read ``NEWSMON_INBOX_USERS`` and ``NEWSMON_INBOX_API_KEYS``; at least one of them
        must name someone, or nobody could ever get in."""
        env = os.environ if env is None else env
        users = _pairs(env.get("NEWSMON_INBOX_USERS", ""), "NEWSMON_INBOX_USERS")
        keys = _pairs(env.get("NEWSMON_INBOX_API_KEYS", ""), "NEWSMON_INBOX_API_KEYS")
        for name, encoded in users.items():
            if not encoded.startswith(SCHEME + "$") or encoded.count("$") != 3:
                raise AuthConfigError(f"NEWSMON_INBOX_USERS: {name}: not a hash from "
                                      "`newsmon serve hash-password`")
        if not users and not keys:
            raise AuthConfigError("no users or API keys: set NEWSMON_INBOX_USERS "
                                  "(name:hash) or NEWSMON_INBOX_API_KEYS (name:key)")
        return cls(users=users, api_keys={key: name for name, key in keys.items()})

    def login(self, name: str, password: str) -> bool:
        encoded = self.users.get(name)
        if encoded is None:
            # The same work for an unknown name, so timing does not tell which names exist.
            verify_password(password, hash_password("x", salt=b"0" * 16))
            return False
        return verify_password(password, encoded)

    def api_user(self, authorization: str | None) -> str | None:
        """The name behind an ``Authorization: Bearer KEY`` header, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        given = authorization.removeprefix("Bearer ").strip().encode()
        for key, name in self.api_keys.items():
            if hmac.compare_digest(key.encode(), given):
                return name
        return None


def csrf_token(session: dict[str, object]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: Mapping[str, object], sent: object) -> bool:
    """True if the form's token is the session's."""
    token = session.get("csrf")
    return (isinstance(token, str) and isinstance(sent, str)
            and hmac.compare_digest(token.encode(), sent.encode()))
