"""Short-lived gateway tokens: minting (for an application's route) and verifying.

A token is a standard JWT (RFC 7519) signed with HMAC-SHA256 by a key from
the gateway's ``[[signing_keys]]``; its header carries the key's ``kid`` so
the gateway picks the right key and keys can rotate (add the new key, mint
with it, remove the old one once its tokens have expired). Claims:

* ``sub`` — the caller label (metrics, logs, per-caller rate limit);
* ``targets`` — the public targets the token may use (``["*"]`` for all);
* ``aud`` — the gateway's audience (``sipp-gateway`` by default);
* ``iat``, ``nbf``, ``exp`` — issued at, not before, expiry (seconds).

PyJWT does the encoding and the signature, expiry, not-before and audience
checks: it is small, pure Python, and the reference implementation most
Python services already trust. Only ``HS256`` is accepted, so a token cannot
choose a weaker algorithm (``none``) or confuse a key type.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt

__all__ = ["TokenClaims", "TokenRejected", "mint_gateway_token", "verify_gateway_token"]

ALGORITHM: Final = "HS256"
DEFAULT_AUDIENCE: Final = "sipp-gateway"
#: Clock skew tolerated between the minting app and the gateway, in seconds.
LEEWAY: Final = 2.0


def mint_gateway_token(
    secret: str | bytes,
    *,
    key_id: str,
    caller: str,
    targets: Sequence[str],
    expires_in: float = 300.0,
    audience: str = DEFAULT_AUDIENCE,
    not_before: float | None = None,
    now: float | None = None,
) -> str:
    """Mint a short-lived gateway token for a browser or another untrusted client.

    Call it from your application's own authenticated route and hand the
    result to the client, which sends it as ``Authorization: Bearer <token>``::

        token = mint_gateway_token(
            os.environ["SIPP_SIGNING_KEY"], key_id="2026-11", caller="web-app",
            targets=["smol"], expires_in=600,
        )

    ``secret`` and ``key_id`` must match a ``[[signing_keys]]`` entry of the
    gateway; ``targets`` is the allowlist (``["*"]`` for every target);
    ``expires_in`` is in seconds (minutes are typical; the gateway refuses
    lifetimes above the key's ``max_lifetime``); ``not_before`` is an absolute
    UNIX time before which the token is refused.
    """
    if not caller:
        raise ValueError("caller must be a non-empty string")
    if isinstance(targets, str):
        raise TypeError("targets must be a sequence of target names, not a string")
    if not expires_in > 0:
        raise ValueError("expires_in must be positive")
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": caller,
        "targets": list(targets),
        "aud": audience,
        "iat": int(issued),
        "exp": int(issued + expires_in),
    }
    if not_before is not None:
        claims["nbf"] = int(not_before)
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": key_id})


@dataclass(frozen=True)
class TokenClaims:
    caller: str
    targets: frozenset[str] | None  # None = every target
    key_id: str
    expires: float


class TokenRejected(Exception):
    """A short-lived token failed verification; the message says why (no secret in it)."""


@dataclass(frozen=True)
class _Key:
    secret: bytes
    audience: str
    max_lifetime: float


class TokenVerifier:
    """Verifies minted tokens against the configured keys, by ``kid``."""

    def __init__(self, keys: Mapping[str, tuple[str, str, float]]) -> None:
        self._keys = {
            key_id: _Key(secret.encode(), audience, lifetime)
            for key_id, (secret, audience, lifetime) in keys.items()
        }

    def __bool__(self) -> bool:
        return bool(self._keys)

    def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected("malformed token") from exc
        key_id = header.get("kid")
        key = self._keys.get(key_id) if isinstance(key_id, str) else None
        if key is None:
            raise TokenRejected("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                audience=key.audience,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRejected("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected("token audience mismatch") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenRejected("token signature invalid") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected("invalid token") from exc
        return _claims(claims, key_id, key)  # type: ignore[arg-type]


def verify_gateway_token(token: str, verifier: TokenVerifier) -> TokenClaims:
    """Verify ``token``; :class:`TokenRejected` says why it is refused."""
    return verifier.verify(token)


def _claims(claims: dict[str, Any], key_id: str, key: _Key) -> TokenClaims:
    caller = claims.get("sub")
    targets = claims.get("targets")
    if not isinstance(caller, str) or not caller:
        raise TokenRejected("token has no caller")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise TokenRejected("token has no targets claim")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)):
        raise TokenRejected("invalid token")
    if exp - iat > key.max_lifetime:
        raise TokenRejected("token lifetime exceeds the key's max_lifetime")
    allowed = None if "*" in targets else frozenset(targets)
    return TokenClaims(caller=caller, targets=allowed, key_id=key_id, expires=float(exp))
