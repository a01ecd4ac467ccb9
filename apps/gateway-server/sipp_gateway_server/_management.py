"""The management listener: health, readiness, Prometheus metrics and a status page.

It is a separate ASGI app on its own listener (``management_listen``) so
metrics and the status page never face the internet by accident. Nothing
here needs a token; bind it to loopback or a private network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from sipp.gateway.asgi import ASGIApp, Receive, Scope, Send

    from ._activity import Activity
    from ._config import RoutesConfig
    from ._limits import Limits
    from ._observe import Metrics, RecentRequests
    from ._targets import Targets

__all__ = ["management_app"]


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def management_app(
    routes: RoutesConfig,
    *,
    activity: Activity,
    limits: Limits,
    targets: Targets,
    metrics: Metrics,
    recent: RecentRequests,
    deployments: Callable[[], dict[str, list[dict[str, Any]]]] | None = None,
) -> ASGIApp:
    """The management ASGI app over the parts it reports on (it changes none of them)."""

    def status() -> dict[str, Any]:
        return {
            "ready": activity.ready,
            "draining": activity.draining,
            "state": "ok" if limits.state_healthy else "unavailable",
            "in_flight": activity.active,
            "targets": [
                {
                    "name": name,
                    "kind": target.kind,
                    "in_flight": limits.in_flight(f"target:{name}"),
                    "max_concurrent": target.max_concurrent,
                }
                for name, target in targets.configs.items()
            ],
            "recent": list(recent.items),
            "deployments": deployments() if deployments is not None else {},
        }

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":  # the public app owns the lifecycle
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == routes.health:
            await _respond(send, 200, b'{"status":"ok"}', b"application/json")
        elif path == routes.ready:
            # Not ready while starting, draining, or while the shared state is down:
            # a load balancer then prefers replicas that can count exactly.
            ready = activity.accepting and limits.state_healthy
            body = {
                "status": "ready" if ready else "not_ready",
                "draining": activity.draining,
                "state": "ok" if limits.state_healthy else "unavailable",
            }
            await _respond(send, 200 if ready else 503, _json(body), b"application/json")
        elif path == routes.metrics:
            await _respond(send, 200, metrics.render(), CONTENT_TYPE_LATEST.encode())
        elif path == routes.status:
            page = _status_page(status()).encode()
            await _respond(send, 200, page, b"text/html; charset=utf-8")
        elif path == routes.status.rstrip("/") + "/status.json":
            await _respond(send, 200, _json(status()), b"application/json")
        else:
            await _respond(send, 404, b'{"error":{"code":"not_found"}}', b"application/json")

    return app


def _status_page(status: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(t['name'])}</td><td>{e(t['kind'])}</td><td>{t['in_flight']}</td>"
        f"<td>{t['max_concurrent'] or '-'}</td></tr>"
        for t in status["targets"]
    )
    recent = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(r.get(k) if r.get(k) is not None else '-'))}</td>"
            for k in ("time", "request_id", "caller", "target", "route", "status", "latency_ms")
        )
        + "</tr>"
        for r in reversed(status["recent"])
    )
    deployments = "".join(
        f"<tr><td>{e(target)}</td><td>{e(d['deployment'])}</td><td>{d['requests']}</td>"
        f"<td>{d['failures']}</td><td>{d['fallbacks']}</td><td>{d['cooldowns']}</td>"
        f"<td>{d['in_flight']}</td><td>{'cooling' if d['cooling'] else 'ok'}</td></tr>"
        for target, rows in status["deployments"].items()
        for d in rows
    )
    if deployments:
        deployments = (
            "<h2>Deployments</h2><table><tr><th>target</th><th>deployment</th><th>requests</th>"
            "<th>failures</th><th>fallbacks</th><th>cooldowns</th><th>in flight</th>"
            f"<th>state</th></tr>{deployments}</table>"
        )
    state = "ready" if status["ready"] else "not ready"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sipp gateway</title>
<meta http-equiv="refresh" content="5">
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}</style></head>
<body><h1>Sipp gateway</h1>
<p>Status: <b>{state}</b>{" (draining)" if status["draining"] else ""}.
Shared state: <b>{e(status["state"])}</b>.
In flight: <b>{status["in_flight"]}</b>.</p>
<h2>Targets</h2><table><tr><th>name</th><th>kind</th><th>in flight</th><th>limit</th></tr>
{rows}</table>
{deployments}
<h2>Recent requests</h2><table><tr><th>time</th><th>request id</th><th>caller</th>
<th>target</th><th>route</th><th>status</th><th>latency ms</th></tr>{recent}</table>
</body></html>"""
