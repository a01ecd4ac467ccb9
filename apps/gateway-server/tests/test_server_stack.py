"""The server stack ``sipp-gateway serve`` picks: uvloop and httptools under uvicorn when installed.

Both are default dependencies of the gateway where they have wheels; the
guard's header deadline and connection cap (``test_slow_clients.py``) run on
whichever protocol is picked here. hypercorn on trio is unchanged.
"""

from __future__ import annotations

import importlib.util

import pytest
from sipp_gateway_server._guard import ConnectionGuard, uvicorn_protocol
from sipp_gateway_server._serve import _backend_options

HTTPTOOLS = importlib.util.find_spec("httptools") is not None
UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.mark.skipif(not HTTPTOOLS, reason="httptools is not installed")
def test_the_public_listener_parses_with_httptools() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(uvicorn_protocol(ConnectionGuard(10), 5.0, 5.0), HttpToolsProtocol)


@pytest.mark.skipif(not UVLOOP, reason="uvloop is not installed")
def test_asyncio_runs_on_uvloop() -> None:
    assert _backend_options("asyncio") == {"use_uvloop": True}


def test_trio_gets_no_asyncio_options() -> None:
    assert _backend_options("trio") == {}
