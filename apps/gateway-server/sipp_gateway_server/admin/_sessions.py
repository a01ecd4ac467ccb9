"""Console login: the password check, sessions, CSRF tokens, and login rate limits.

* The password (from the environment variable ``[admin] password_env``) is
  kept only as its SHA-256 digest; an attempt is hashed and compared with
  ``hmac.compare_digest``, so the comparison takes the same time wherever
  the attempt differs and the plain password is not held in memory.
* A session id is 32 random bytes, created at login and never taken from
  the request: a cookie planted before login (session fixation) names no
  session and is replaced by the new one. Sessions are looked up by the
  SHA-256 of their id, expire ``session_ttl`` seconds after their last use,
  and are bounded in number (the oldest goes first).
* Each session has its own CSRF token (another 32 random bytes), returned
  by the login and by ``GET <path>/api/session``; every write must send it
  in the ``X-CSRF-Token`` header. A cross-site page can neither read it nor
  send the cookie (``SameSite=Strict``).
* Login attempts are rate limited per client address (GCRA, the gateway's
  own algorithm); failures and refusals are counted for the console.

Sessions live in this process: behind a load balancer, pin the management
listener (it is not meant to be balanced) or log in per replica.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from .._config import RateLimit
from .._state import gcra

__all__ = ["LoginLimited", "Session", "Sessions"]

MAX_SESSIONS: Final = 256
_MAX_TRACKED: Final = 10_000


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    who: str
    created: float
    last_used: float

    @property
    def label(self) -> str:
        """A short name for the audit list: never the id itself, which is a credential."""
        return hashlib.sha256(self.id.encode()).hexdigest()[:8]


class LoginLimited(Exception):
    """Too many login attempts from one address; ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many login attempts")
        self.retry_after = retry_after


class Sessions:
    """The console's sessions, in this process."""

    def __init__(self, password: str, ttl: float, login_limit: RateLimit) -> None:
        self._password = _digest(password)
        self._ttl = ttl
        self._limit = login_limit
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()
        self._attempts: dict[str, float] = {}
        self._clock = time.monotonic
        self.counts = {"succeeded": 0, "failed": 0, "limited": 0}

    @property
    def ttl(self) -> float:
        return self._ttl

    def login(self, password: str, client: str) -> Session | None:
        """A new session when ``password`` is right, else ``None``; raises :class:`LoginLimited`."""
        now = self._clock()
        retry, tat = gcra(self._attempts.get(client, now), now, self._limit)
        if retry is not None:
            self.counts["limited"] += 1
            raise LoginLimited(retry)
        self._attempts[client] = tat
        if len(self._attempts) > _MAX_TRACKED:  # forget addresses whose budget is full again
            self._attempts = {k: v for k, v in self._attempts.items() if v > now}
        if not hmac.compare_digest(_digest(password), self._password):
            self.counts["failed"] += 1
            return None
        self.counts["succeeded"] += 1
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), client, now, now)
        self._sessions[_digest(session.id)] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its expiry slides), or ``None``."""
        if not session_id or len(session_id) > 256:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_used > self._ttl:
            del self._sessions[key]
            return None
        session.last_used = now
        self._sessions.move_to_end(key)
        return session

    def logout(self, session: Session) -> None:
        self._sessions.pop(_digest(session.id), None)

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(_digest(token), _digest(session.csrf))
