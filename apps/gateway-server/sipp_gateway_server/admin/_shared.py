"""Where the console's shared data lives: this process, or Redis for every replica.

Three things are shared when ``[state] backend = "redis"``:

* **live controls**: one Redis hash of overrides (field -> JSON value) and a
  ``_version`` counter bumped by every change in the same Lua script; every
  replica polls the version once a second and re-applies the overrides when
  it moved, so a change made on one replica's console holds on all of them
  within a second;
* **the audit list**: a capped Redis list, newest first;
* **statistics**: each replica publishes its snapshot (:mod:`._stats`) every
  few seconds under its own key with an expiry of a little over an hour, and
  registers itself in a sorted set by time; the console merges every
  snapshot it finds (a replica that died still counts for the hour it
  served, which is what a chart of that hour should show).

The memory backend is the same interface over dicts, for one process.
Every Redis failure surfaces as :class:`.._state.StateUnavailable`.
"""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol, TypeVar

import anyio

from .._state import StateUnavailable

__all__ = ["AUDIT_SIZE", "MemoryShared", "RedisShared", "Shared"]

AUDIT_SIZE: Final = 500
_SNAPSHOT_SECONDS: Final = 3700
_T = TypeVar("_T")

_SET_CONTROL: Final = """
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return redis.call('HINCRBY', KEYS[1], '_version', 1)
"""


class Shared(Protocol):
    def open(self) -> Any: ...

    async def controls(self) -> tuple[int, dict[str, Any]]:
        """The overrides' version and the overrides (field -> value)."""
        ...

    async def set_control(self, field: str, value: Any) -> int:
        """Set (or, with ``None``, remove) one override; the new version."""
        ...

    async def add_audit(self, entry: dict[str, Any]) -> None: ...

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries, newest first."""
        ...

    async def publish(self, replica: str, snapshot: dict[str, Any], now: float) -> None: ...

    async def snapshots(self, now: float) -> list[dict[str, Any]]:
        """Every replica's latest snapshot from the last hour (this one's included)."""
        ...


class MemoryShared:
    """One process: the overrides, audit list and this replica's snapshot in memory."""

    def __init__(self) -> None:
        self._controls: dict[str, Any] = {}
        self._version = 0
        self._audit: collections.deque[dict[str, Any]] = collections.deque(maxlen=AUDIT_SIZE)
        self._snapshot: dict[str, Any] | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[MemoryShared]:
        yield self

    async def controls(self) -> tuple[int, dict[str, Any]]:
        return self._version, dict(self._controls)

    async def set_control(self, field: str, value: Any) -> int:
        if value is None:
            self._controls.pop(field, None)
        else:
            self._controls[field] = value
        self._version += 1
        return self._version

    async def add_audit(self, entry: dict[str, Any]) -> None:
        self._audit.appendleft(entry)

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        return list(self._audit)[:limit]

    async def publish(self, replica: str, snapshot: dict[str, Any], now: float) -> None:
        self._snapshot = snapshot

    async def snapshots(self, now: float) -> list[dict[str, Any]]:
        return [] if self._snapshot is None else [self._snapshot]


class RedisShared:
    """The same, in Redis under ``<key_prefix>admin:``, for every replica."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix + "admin:"
        self._client: Any = None

    def __repr__(self) -> str:  # never the URL: it may hold a password
        return f"<RedisShared prefix={self._prefix!r}>"

    @asynccontextmanager
    async def open(self) -> AsyncIterator[RedisShared]:
        import coredis  # only when Redis is configured

        client: coredis.Redis[str] = coredis.Redis.from_url(
            self._url,
            decode_responses=True,
            connect_timeout=5.0,
            max_connections=8,
            retry_policy=coredis.retry.NoRetryPolicy(),
        )
        async with client:
            self._client = client
            self._set = client.register_script(_SET_CONTROL)
            try:
                yield self
            finally:
                self._client = None

    async def _call(self, request: Awaitable[_T]) -> _T:
        from coredis.exceptions import RedisError

        if self._client is None:
            raise StateUnavailable("Redis is not connected")
        try:
            return await request
        except (RedisError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            raise StateUnavailable(f"Redis: {type(exc).__name__}: {exc}") from None

    async def controls(self) -> tuple[int, dict[str, Any]]:
        raw = await self._call(self._client.hgetall(self._prefix + "controls"))
        version = int(raw.pop("_version", 0))
        return version, {field: json.loads(value) for field, value in raw.items()}

    async def set_control(self, field: str, value: Any) -> int:
        encoded = "" if value is None else json.dumps(value)
        keys = [self._prefix + "controls"]
        return int(await self._call(self._set(keys=keys, args=[field, encoded])))

    async def add_audit(self, entry: dict[str, Any]) -> None:
        key = self._prefix + "audit"
        await self._call(self._client.lpush(key, [json.dumps(entry)]))
        await self._call(self._client.ltrim(key, 0, AUDIT_SIZE - 1))

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        raw = await self._call(self._client.lrange(self._prefix + "audit", 0, limit - 1))
        return [json.loads(item) for item in raw]

    async def publish(self, replica: str, snapshot: dict[str, Any], now: float) -> None:
        client = self._client
        key = f"{self._prefix}snapshot:{replica}"
        await self._call(client.set(key, json.dumps(snapshot), ex=_SNAPSHOT_SECONDS))
        await self._call(client.zadd(self._prefix + "replicas", {replica: now}))

    async def snapshots(self, now: float) -> list[dict[str, Any]]:
        client = self._client
        replicas_key = self._prefix + "replicas"
        await self._call(client.zremrangebyscore(replicas_key, "-inf", now - _SNAPSHOT_SECONDS))
        replicas = await self._call(client.zrangebyscore(replicas_key, now - 3600, "+inf"))
        if not replicas:
            return []
        keys = [f"{self._prefix}snapshot:{replica}" for replica in replicas]
        raw = await self._call(client.mget(keys))
        return [json.loads(item) for item in raw if item]
