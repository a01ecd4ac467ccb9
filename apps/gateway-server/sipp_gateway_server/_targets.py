"""The public targets: their configuration, the ``SippClient`` that runs them, and their runs.

The request path asks this part three things: does a target exist (and its
admission limit), start a run on it, and describe it for ``/v1/models``.
The drain asks it to cancel every run still going. The client is opened by
the application's lifecycle and handed in with :meth:`Targets.serve`.

Pools: a target whose descriptor asks for more than :data:`POOL_SIZE`
upstream connections (``max_connections``) is added to the client as
several endpoints ("shards") of at most that many connections each, taken in
turn by the runs. httpcore scans its whole pool
(every connection, every waiting request) each time a request starts or
ends, so one pool of 2,000 connections made that scan 58 % of the CPU at
1,000 streams and tripled the cost of a stream; shards keep each scan
small, so a stream costs the same at 100 and at 1,000 concurrent streams.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from sipp import EmbedRun, Run, SippClient

from ._config import TargetConfig
from ._pools import Deployments

__all__ = ["POOL_SIZE", "Targets", "shard_descriptors"]

#: The most upstream connections one httpx pool of a target holds.
POOL_SIZE: Final = 64


def shard_descriptors(descriptor: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``descriptor`` split into pools of at most :data:`POOL_SIZE` connections.

    Descriptors without ``max_connections`` (local models) stay whole. The
    split keeps the total: 2,000 connections become 32 pools of 63 (rounded
    up), never fewer connections than configured.
    """
    wanted = descriptor.get("max_connections")
    if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted <= POOL_SIZE:
        return [dict(descriptor)]
    count = -(-wanted // POOL_SIZE)
    each = -(-wanted // count)
    return [{**descriptor, "max_connections": each} for _ in range(count)]


class Targets:
    """Every configured target, by name, and the runs started on them."""

    def __init__(
        self,
        targets: Sequence[TargetConfig],
        descriptors: Mapping[str, Mapping[str, Any]],
        decode_slots: Mapping[str, int],
        deployments: Deployments | None = None,
    ) -> None:
        self.configs: dict[str, TargetConfig] = {t.name: t for t in targets}
        #: The pool targets' pools (per-deployment metrics and console data).
        self.deployments = deployments or Deployments()
        self._descriptors = descriptors
        self._decode_slots = decode_slots
        self._client: SippClient | None = None
        self._created = 0
        #: Each target's endpoint names on the client (one per pool) and runs on each.
        self._shards: dict[str, list[str]] = {}
        self._next: dict[str, Iterator[str]] = {}
        # Weak: a finished run must not be kept alive only to be cancelled later.
        self._runs: weakref.WeakSet[Run | EmbedRun] = weakref.WeakSet()

    def __contains__(self, name: object) -> bool:
        return name in self.configs

    def __len__(self) -> int:
        return len(self.configs)

    def max_concurrent(self, name: str) -> int | None:
        return self.configs[name].max_concurrent

    def decode_slots(self, name: str) -> int:
        """Decode slots the target's driver declares (``n_parallel``); 0 when it has none."""
        return self._decode_slots.get(name, 0)

    @asynccontextmanager
    async def serve(self, client: SippClient) -> AsyncIterator[None]:
        """Add every target to ``client`` (models load here) and run on it until exit."""
        for name, config in self.configs.items():
            extensions = self.deployments.extensions(name) if config.kind == "pool" else None
            shards = shard_descriptors(self._descriptors[name])
            names = [name] + [f"{name}#pool{i}" for i in range(1, len(shards))]
            for endpoint, descriptor in zip(names, shards, strict=True):
                await client.add(endpoint, descriptor, extensions=extensions)
            self._shards[name] = names
            self._next[name] = itertools.cycle(names)
        self._client = client
        self._created = int(time.time())
        try:
            yield
        finally:
            self._client = None
            self.deployments.forget()

    @property
    def client(self) -> SippClient:
        if self._client is None:
            raise RuntimeError("the gateway is not running")
        return self._client

    def available(self, names: Iterable[str]) -> list[str]:
        """The names among ``names`` that are loaded and serving."""
        endpoints = self.client.endpoints
        return [name for name in names if name in endpoints]

    def start(self, operation: str, request: Any, *, target: str) -> Run | EmbedRun:
        """Start ``operation`` on ``target`` (awaited or streamed by the caller)."""
        client = self.client
        endpoint = next(self._next[target])
        run: Run | EmbedRun
        if operation == "embed":
            run = client.embed(request, endpoint=endpoint)
        elif operation == "chat":
            run = client.chat(request, endpoint=endpoint)
        else:
            run = client.query(request, endpoint=endpoint)
        self._runs.add(run)
        return run

    def pools(self, name: str) -> int:
        """How many connection pools (client endpoints) serve ``name``."""
        return len(self._shards.get(name, ())) or 1

    def cancel_all(self, reason: str) -> None:
        for run in list(self._runs):
            run.cancel(reason)

    def describe(self, name: str) -> dict[str, Any]:
        caps = self.client.get(name).capabilities
        # OpenAI's model list shape (id, object, created, owned_by) plus sipp's
        # fields: one route and one body serve OpenAI SDKs and profile clients.
        return {
            "id": name,
            "object": "model",
            "created": self._created,
            "owned_by": "sipp",
            "kind": self.configs[name].kind,
            "capabilities": {
                "query": caps.query,
                "chat": caps.chat,
                "embed": caps.embed,
                "streaming": caps.streaming,
            },
        }
