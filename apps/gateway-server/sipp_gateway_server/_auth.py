"""Who is calling: static tokens, short-lived JWTs, and the client's address.

Static tokens are compared in constant time: the presented token is hashed
(SHA-256) and its digest compared with *every* configured digest with
``hmac.compare_digest``, so neither the position of a mismatch nor which
token matched shows in the timing. A token shaped like a JWT (three
base64url parts) is verified by :class:`._jwt.TokenVerifier`; a verified JWT
is cached until its expiry (bounded), so a browser streaming many requests
pays for the signature check once.

The client IP is the peer address, or a forwarding header *only* when the
peer is one of ``trusted_proxies`` (otherwise anyone could pick their own
rate-limit bucket or dodge the blocklist). The ASGI server's own
forwarded-header handling is off (see ``_serve.py``): this is the only
place that reads those headers.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from ._config import GatewayConfig, RateLimit, TokenLimit
from ._jwt import TokenRejected, TokenVerifier

__all__ = ["AuthError", "Authenticator", "ClientAddress", "Principal", "canonical"]

_CACHE_LIMIT: Final = 4096
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its label, allowlist (``None`` = all) and rate limit."""

    caller: str
    targets: frozenset[str] | None
    rate_limit: RateLimit | None
    expires: float = float("inf")
    token_limit: TokenLimit | None = None

    def may_use(self, target: str) -> bool:
        return self.targets is None or target in self.targets


class AuthError(Exception):
    """401 ``authentication``: the message is safe to send (never the token)."""


class Authenticator:
    def __init__(self, config: GatewayConfig, tokens: dict[int, str], keys: dict[str, str]) -> None:
        self._static: list[tuple[bytes, Principal]] = []
        for index, token in enumerate(config.tokens):
            value = tokens.get(index)
            if value is None:
                continue
            allowed = frozenset(token.targets) if token.targets else None
            principal = Principal(
                token.caller, allowed, token.rate_limit, token_limit=token.token_limit
            )
            self._static.append((hashlib.sha256(value.encode()).digest(), principal))
        self._verifier = TokenVerifier(
            {
                key.key_id: (keys[key.key_id], key.audience, key.max_lifetime)
                for key in config.signing_keys
                if key.key_id in keys
            }
        )
        self._key_limits = {key.key_id: key.rate_limit for key in config.signing_keys}
        self._key_tokens = {key.key_id: key.token_limit for key in config.signing_keys}
        self._cache: dict[str, Principal] = {}

    def authenticate(self, authorization: bytes | None) -> Principal:
        if not authorization:
            raise AuthError("missing Authorization: Bearer header")
        scheme, _, token_bytes = authorization.partition(b" ")
        token = token_bytes.strip()
        if scheme.lower() != b"bearer" or not token:
            raise AuthError("malformed Authorization header: expected Bearer <token>")
        digest = hashlib.sha256(token).digest()
        found: Principal | None = None
        for expected, principal in self._static:
            if hmac.compare_digest(digest, expected) and found is None:
                found = principal
        if found is not None:
            return found
        if self._verifier and token.count(b".") == 2:
            return self._verify_jwt(token.decode("latin-1"))
        raise AuthError("invalid token")

    def _verify_jwt(self, token: str) -> Principal:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires > now:
                return cached
            del self._cache[token]
            raise AuthError("token expired")
        try:
            claims = self._verifier.verify(token)
        except TokenRejected as exc:
            raise AuthError(str(exc)) from exc
        principal = Principal(
            claims.caller,
            claims.targets,
            self._key_limits.get(claims.key_id),
            claims.expires,
            self._key_tokens.get(claims.key_id),
        )
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.pop(next(iter(self._cache)))
        self._cache[token] = principal
        return principal


class ClientAddress:
    """The client IP under the ``[security]`` rules, and the blocklist check."""

    def __init__(self, source: str, trusted: Sequence[str], blocklist: Sequence[str]) -> None:
        self._header = {"x_forwarded_for": b"x-forwarded-for", "x_real_ip": b"x-real-ip"}.get(
            source
        )
        self._trusted: list[Network] = [ipaddress.ip_network(n, strict=False) for n in trusted]
        self._blocked: list[Network] = [ipaddress.ip_network(n, strict=False) for n in blocklist]
        # Parsing an address costs more than the rest of the checks: peers and
        # verdicts are remembered (bounded; the blocklist's cleared when it changes).
        self._peers: dict[str, str] = {}
        self._verdicts: dict[str, bool] = {}

    def resolve(self, peer: str, headers: Sequence[tuple[bytes, bytes]]) -> str:
        known = self._peers.get(peer)
        if known is None:
            known = _remember(self._peers, peer, canonical(peer))
        peer = known
        if self._header is None or not self._trusted or not _within(peer, self._trusted):
            return peer
        # Every line of the header, in order: HTTP says repeated lines mean one
        # comma-joined value, and reading only the first let a line the client
        # wrote itself stand in front of the one our proxy appended.
        lines = [v.decode("latin-1") for k, v in headers if k.lower() == self._header]
        if not lines:
            return peer
        if self._header == b"x-real-ip":
            if len(lines) != 1:
                return peer  # a proxy sets exactly one; two means one is forged
            candidate = lines[0].strip()
            return canonical(candidate) if _parse(candidate) is not None else peer
        # X-Forwarded-For: walk from the right, skipping our own trusted proxies.
        hops = [canonical(h.strip()) for h in ",".join(lines).split(",")]
        for hop in reversed(hops):
            if _parse(hop) is None:
                return peer
            if not _within(hop, self._trusted):
                return hop
        return hops[0] if hops and _parse(hops[0]) is not None else peer

    def set_blocklist(self, blocklist: Sequence[str]) -> None:
        """Replace the blocklist live (the admin console); the next request sees it."""
        self._blocked = [ipaddress.ip_network(n, strict=False) for n in blocklist]
        self._verdicts = {}

    def blocked(self, address: str) -> bool:
        if not self._blocked:
            return False
        verdict = self._verdicts.get(address)
        if verdict is None:
            verdict = _remember(self._verdicts, address, _within(address, self._blocked))
        return verdict


_T = TypeVar("_T")


def _remember(cache: dict[str, _T], key: str, value: _T) -> _T:
    """``cache[key] = value``, starting over when full (a scan from many addresses)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def canonical(address: str) -> str:
    """``address`` as rate-limit keys and the blocklist see it.

    An IPv4 client of a dual-stack (``[::]``) listener shows up as
    ``::ffff:a.b.c.d``; it is the IPv4 address ``a.b.c.d`` for every rule, or
    it would escape an IPv4 blocklist entry and get a rate-limit bucket of its
    own. Anything that is not an address is returned as it is (and matches
    no network).
    """
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        mapped = parsed.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(parsed)
    return address


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _within(address: str, networks: Sequence[Network]) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in network for network in networks)
