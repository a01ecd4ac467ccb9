"""A real ``redis-server`` the tests start, stop, freeze (SIGSTOP) and restart.

TCP on a free loopback port by default; ``unix_socket`` adds a unix socket,
``tls`` serves TLS only (certificates from ``trustme``, made per server).
Persistence is off, so a restart loses every key, as a crashed Redis would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from gwtest import free_port


class RedisServer:
    def __init__(self, *, unix_socket: bool = False, tls: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.binary = binary
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="sipp-redis-"))
        self.socket = str(self.directory / "redis.sock") if unix_socket else None
        self.tls = tls
        self.ca_path: Path | None = None
        self._tls_args: list[str] = []
        if tls:
            self._make_certificates()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def _make_certificates(self) -> None:
        import trustme

        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        self.ca_path = self.directory / "ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_path))
        cert, key = self.directory / "cert.pem", self.directory / "key.pem"
        certificate.cert_chain_pems[0].write_to_path(str(cert))
        certificate.private_key_pem.write_to_path(str(key))
        self._tls_args = [
            "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(self.ca_path), "--tls-auth-clients", "no",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        if self.socket is not None:
            return f"unix://{self.socket}"
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        ports = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        unix = ["--unixsocket", self.socket, "--unixsocketperm", "700"] if self.socket else []
        self.process = subprocess.Popen(
            [
                self.binary, *ports, *unix, *self._tls_args, "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.process.kill()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                sock: socket.socket | ssl.SSLSocket = raw
                if self.tls:
                    context = ssl.create_default_context(cafile=str(self.ca_path))
                    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except (OSError, ssl.SSLError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
