"""Helpers for the gateway server tests: processes on loopback, SSE parsing.

A gateway runs under uvicorn for asyncio tests and hypercorn for trio tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).parent
TOKEN = "static-token-web-0123456789"
ADMIN_TOKEN = "static-token-admin-0123456789"
LIMITED_TOKEN = "static-token-limited-0123456789"
SIGNING_KEY = "signing-key-2026-11-0123456789abcdef"
OLD_SIGNING_KEY = "signing-key-2026-10-0123456789abcdef"
ENV = {
    "GW_WEB_TOKEN": TOKEN,
    "GW_ADMIN_TOKEN": ADMIN_TOKEN,
    "GW_LIMITED_TOKEN": LIMITED_TOKEN,
    "GW_SIGNING_KEY": SIGNING_KEY,
    "GW_OLD_SIGNING_KEY": OLD_SIGNING_KEY,
}


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free right now, never one this process handed out before.

    The kernel may offer the port it just offered again (two calls in a row
    for a public and a management listener would then collide).
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for(
    url: str, *, process: subprocess.Popen[bytes] | None = None, limit: float = 30.0
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {limit}s")


@dataclass
class Gateway:
    """One ``sipp gateway serve`` process and its two base URLs."""

    process: subprocess.Popen[bytes]
    url: str
    management: str
    log_path: Path
    config_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, limit: float = 5.0) -> str:
        """The log once it holds ``text`` (a request's line is written after its answer)."""
        deadline = time.monotonic() + limit
        while text not in (logs := self.logs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the gateway log:\n{logs}")
            time.sleep(0.02)
        return logs

    def stop(self, sig: int = signal.SIGTERM, wait: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def server_for(backend: str) -> str:
    return "uvicorn" if backend == "asyncio" else "hypercorn"


def start_gateway(
    body: str,
    backend: str,
    *,
    env: dict[str, str] | None = None,
    directory: Path | None = None,
    wait: str = "/readyz",
    launcher: Path | None = None,
    listen_host: str = "127.0.0.1",
    preexec_fn: Callable[[], None] | None = None,
    start_limit: float = 30.0,
) -> Gateway:
    """Write a configuration (``body`` + a ``[server]`` table) and serve it.

    Returns once ``wait`` on the management listener answers 200. ``launcher``: a
    script run instead of ``python -m sipp_gateway_server`` (to register test drivers).
    The public listener binds ``listen_host`` (``::`` for a dual-stack one);
    ``preexec_fn`` runs in the child before it starts (to lower its file-descriptor limit).
    """
    directory = directory or Path(tempfile.mkdtemp(prefix="sipp-gw-"))
    # A free port can be taken between choosing it and the gateway binding it
    # (by another process, or an outgoing connection's ephemeral port): then
    # the gateway exits at once, and another pair of ports is tried.
    settings = (body, backend, directory, env, wait, launcher, listen_host, preexec_fn, start_limit)
    for _ in range(2):
        try:
            return _start_gateway(*settings)
        except _PortTaken:
            pass
    return _start_gateway(*settings)


class _PortTaken(RuntimeError):
    pass


def _start_gateway(
    body: str,
    backend: str,
    directory: Path,
    env: dict[str, str] | None,
    wait: str,
    launcher: Path | None,
    listen_host: str,
    preexec_fn: Callable[[], None] | None,
    start_limit: float,
) -> Gateway:
    port, management = free_port(), free_port()
    server = (
        "[server]\n"
        f'listen = "{listen_host}:{port}"\n'
        f'management_listen = "127.0.0.1:{management}"\n'
        f'server = "{server_for(backend)}"\n'
    )
    config = directory / f"gateway-{port}.toml"
    config.write_text(
        body.replace("[server]\n", server, 1) if "[server]\n" in body else server + body
    )
    log_path = directory / f"gateway-{port}.log"
    full_env = {**os.environ, **ENV, **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                *([str(launcher)] if launcher else ["-m", "sipp_gateway_server"]),
                *("serve", "--config", str(config)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            preexec_fn=preexec_fn,
        )
    gateway = Gateway(
        process,
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{management}",
        log_path,
        config,
        full_env,
    )
    try:
        wait_for(f"{gateway.management}{wait}", process=process, limit=start_limit)
    except Exception:
        gateway.stop(signal.SIGKILL)
        logs = gateway.logs()
        error = _PortTaken if "Address already in use" in logs else RuntimeError
        raise error(f"gateway did not start:\n{logs}") from None
    return gateway


def sse_events(text: str) -> list[tuple[str, str]]:
    """``(event, data)`` pairs of an SSE body, in order."""
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, "\n".join(data)))
    return events
