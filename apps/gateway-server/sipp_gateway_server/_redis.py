"""Shared state in Redis, over a tiny RESP2 client written on ``anyio`` streams.

Why not the ``redis`` package: ``redis.asyncio`` runs on asyncio only, and
the gateway also runs on trio (under hypercorn). Its sync client in a worker
thread would work on both, but costs a thread hop per call and competes
with model loads for anyio's 40 worker threads. The gateway needs four
commands (``EVALSHA``/``EVAL``, ``AUTH``, ``SELECT``, ``PING``), so a
~100-line RESP client over ``anyio.connect_tcp`` is backend-neutral, has no
dependency, and costs one round trip per request phase.

Every operation is one Lua script, so replicas see exact counts:

* rate limits: GCRA over all of a request's keys, all-or-nothing, using the
  Redis server's clock (``TIME``), so replicas' clocks never matter;
* admission: one sorted set per key, members are a request's lease id with
  an expiry score. A lease is renewed while the request runs and expires by
  itself when a replica dies, so a crashed gateway never holds slots for good.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc

from ._config import RateLimit
from ._state import Lease, StateUnavailable

__all__ = ["RedisState", "RespPool"]

LEASE_SECONDS: Final = 30.0

_RATE: Final = b"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then
    if allow_at - now > wait then wait = allow_at - now end
  end
  tats[i] = new_tat
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(tats[i]), 'PX', math.ceil((tats[i] - now) * 1000) + 1000)
end
return '0'
"""

_ACQUIRE: Final = b"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local member = ARGV[1]
local expires = now + tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expires, member)
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
end
return 0
"""

_RELEASE: Final = b"""
for i, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0
"""

_RENEW: Final = b"""
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', expires, ARGV[i + 1])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 0
"""


class RedisReplyError(Exception):
    pass


class _Connection:
    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def call(self, *args: bytes | str | int | float) -> Any:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        await self.stream.send(b"".join(parts))
        return await self._reply()

    async def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            self.buffer += await self.stream.receive()

    async def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            self.buffer += await self.stream.receive()
        data = bytes(self.buffer[:size])
        del self.buffer[: size + 2]
        return data

    async def _reply(self) -> Any:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise RedisReplyError(rest.decode(errors="replace"))
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else await self._exactly(size)
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [await self._reply() for _ in range(count)]
        raise StateUnavailable(f"unexpected Redis reply type {kind!r}")


class RespPool:
    """A few pooled connections to one Redis server; a connection in doubt is dropped."""

    def __init__(self, url: str, *, size: int = 16) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._db = int(parts.path.strip("/") or 0)
        self._free: list[_Connection] = []
        self._limiter = anyio.CapacityLimiter(size)
        self._scripts: dict[bytes, bytes] = {}

    def __repr__(self) -> str:  # the URL may hold a password
        return f"RespPool({self._host}:{self._port}/{self._db})"

    async def _connect(self) -> _Connection:
        stream = await anyio.connect_tcp(self._host, self._port)
        connection = _Connection(stream)
        try:
            if self._password is not None:
                auth = [self._username, self._password] if self._username else [self._password]
                await connection.call(b"AUTH", *auth)
            if self._db:
                await connection.call(b"SELECT", self._db)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
        return connection

    async def call(self, *args: bytes | str | int | float) -> Any:
        async with self._limiter:
            try:
                connection = self._free.pop() if self._free else await self._connect()
            except OSError as exc:
                raise StateUnavailable(f"cannot reach Redis: {exc}") from exc
            try:
                result = await connection.call(*args)
            except RedisReplyError:
                self._free.append(connection)  # the connection is still in sync
                raise
            except BaseException as exc:
                await anyio.aclose_forcefully(connection.stream)
                if isinstance(exc, (OSError, anyio.BrokenResourceError, anyio.EndOfStream)):
                    raise StateUnavailable(f"Redis connection failed: {exc!r}") from exc
                raise
            self._free.append(connection)
            return result

    async def script(self, source: bytes, keys: Sequence[str], args: Sequence[Any]) -> Any:
        digest = self._scripts.get(source)
        if digest is None:
            digest = self._scripts[source] = hashlib.sha1(source).hexdigest().encode()
        try:
            return await self.call(b"EVALSHA", digest, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise StateUnavailable(f"Redis script failed: {exc}") from exc
            return await self.call(b"EVAL", source, len(keys), *keys, *args)

    async def aclose(self) -> None:
        free, self._free = self._free, []
        for connection in free:
            await anyio.aclose_forcefully(connection.stream)


class RedisState:
    """Counters in Redis, exact across every gateway replica that shares the server."""

    def __init__(self, url: str, prefix: str) -> None:
        self._pool = RespPool(url)
        self._prefix = prefix
        self._held: dict[str, Lease] = {}
        self._local: dict[str, int] = {}
        self._instance = os.urandom(6).hex()

    async def start(self) -> None:
        if await self._pool.call(b"PING") != b"PONG":
            raise StateUnavailable("Redis did not answer PING")

    async def hit(self, limits: Sequence[tuple[str, RateLimit]]) -> float | None:
        keys = [f"{self._prefix}rate:{key}" for key, _ in limits]
        args: list[float | int] = []
        for _, limit in limits:
            args += [60.0 / limit.requests_per_minute, limit.burst]
        wait = float(await self._pool.script(_RATE, keys, args))
        return wait if wait > 0 else None

    async def acquire(self, slots: Sequence[tuple[str, int]], member: str) -> Lease | str:
        keys = [f"{self._prefix}slots:{key}" for key, _ in slots]
        member = f"{self._instance}:{member}"
        full = await self._pool.script(
            _ACQUIRE, keys, [member, LEASE_SECONDS, *(limit for _, limit in slots)]
        )
        if full:
            return slots[int(full) - 1][0]
        lease = Lease([key for key, _ in slots], member, keys)
        self._held[member] = lease
        for key in lease.names:
            self._local[key] = self._local.get(key, 0) + 1
        return lease

    async def release(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        self._held.pop(lease.member, None)
        for key in lease.names:
            self._local[key] -= 1
        with anyio.CancelScope(shield=True):
            await self._pool.script(_RELEASE, list(lease.keys), [lease.member])

    async def renew(self) -> None:
        """Extend every lease this replica holds (run every ``LEASE_SECONDS / 3``)."""
        for lease in list(self._held.values()):
            await self._pool.script(
                _RENEW, list(lease.keys), [LEASE_SECONDS, *([lease.member] * len(lease.keys))]
            )

    def in_flight(self, key: str) -> int:
        return self._local.get(key, 0)

    async def aclose(self) -> None:
        await self._pool.aclose()
