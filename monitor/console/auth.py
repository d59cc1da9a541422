"""Console sessions: a signed cookie naming the token a person signed in with, and the
CSRF token every console form carries.

The cookie holds a random session id, the SHA-256 of the token (never the token) and the
issue time, signed with HMAC-SHA256. The role is not in the cookie: it is looked up from
the token hash in the current settings on every request, so removing a token from the
configuration ends its sessions at once. The signing key is ``DRIFTWARDEN_CONSOLE_SECRET``
when set, else derived from the configured tokens (every replica derives the same key, and
changing the tokens invalidates every session); with no tokens at all there is nothing to
sign in with and the key is random per process (the anonymous session only anchors CSRF).

The CSRF token is an HMAC of the session id: a page served to this session can show it,
another site cannot compute it, and it changes with every sign-in.

>>> keys = SessionKeys(b"k" * 32)
>>> s = new_session(None, now=1000.0)
>>> keys.verify(keys.sign(s), now=1001.0) == s
True
>>> keys.verify(keys.sign(s) + "x", now=1001.0) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from monitor.settings import Settings

COOKIE: Final = "dw_console"
MAX_AGE_S: Final = 12 * 3600  # a working day; then sign in again
ConsoleRole = Literal["read", "control"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(hashed: str) -> str:
    """The audit actor of a signed-in person: the API's ``token:<8 hex>`` for that token."""
    return f"token:{hashed[:8]}"


@dataclass(frozen=True, slots=True)
class Session:
    sid: str  # random, one per sign-in (and one per anonymous visitor)
    token_sha: str | None  # None: not signed in
    issued: float


def new_session(token: str | None, now: float) -> Session:
    return Session(secrets.token_urlsafe(18), token_hash(token) if token else None, now)


@dataclass(frozen=True, slots=True)
class SessionKeys:
    key: bytes

    def _mac(self, message: bytes) -> str:
        digest = hmac.new(self.key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, session: Session) -> str:
        body = json.dumps(
            {"sid": session.sid, "tok": session.token_sha, "iat": session.issued},
            separators=(",", ":"),
        ).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}"

    def verify(self, value: str | None, now: float) -> Session | None:
        """The session in a cookie value, or None if it is forged, malformed or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(data["sid"]), data["tok"], float(data["iat"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= now - session.issued <= MAX_AGE_S:
            return None
        return session

    def csrf(self, session: Session) -> str:
        return self._mac(b"csrf:" + session.sid.encode())

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf(session), given or "")


_RANDOM_KEY: Final = secrets.token_bytes(32)


def keys_for(settings: Settings) -> SessionKeys:
    if settings.console_secret:
        return SessionKeys(hashlib.sha256(settings.console_secret.encode()).digest())
    if not settings.has_tokens:
        return SessionKeys(_RANDOM_KEY)
    tokens = sorted({*settings.ingest_tokens, *settings.read_tokens, *settings.control_tokens})
    material = "\0".join(["driftwarden-console", *tokens]).encode()
    return SessionKeys(hashlib.sha256(material).digest())


def role_of(settings: Settings, token_sha: str | None) -> ConsoleRole | None:
    """The strongest console role of a token (by its hash) in the current settings; an
    ingest-only token reads nothing, so it signs nobody in."""
    if token_sha is None:
        return None
    if any(hmac.compare_digest(token_hash(t), token_sha) for t in settings.control_tokens):
        return "control"
    if any(hmac.compare_digest(token_hash(t), token_sha) for t in settings.read_tokens):
        return "read"
    return None


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a console page and what they may do."""

    session: Session
    role: ConsoleRole | None  # None: not signed in
    open_access: bool  # no tokens configured: everyone may read and control (as the API)

    @property
    def can_read(self) -> bool:
        return self.open_access or self.role is not None

    @property
    def can_control(self) -> bool:
        return self.open_access or self.role == "control"

    @property
    def actor(self) -> str:
        if self.session.token_sha is not None and self.role is not None:
            return actor_for(self.session.token_sha)
        return "anonymous"


def viewer_for(settings: Settings, session: Session) -> Viewer:
    return Viewer(session, role_of(settings, session.token_sha), not settings.has_tokens)
