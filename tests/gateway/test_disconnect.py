"""run_unless_disconnected: the server's disconnect callback when offered, else a watcher task.

watch_disconnect: the registration alone, for handlers that await their answer themselves.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from sipp.gateway import DISCONNECT_EXTENSION, run_unless_disconnected, watch_disconnect

pytestmark = pytest.mark.anyio


class _Offer:
    """A server's side of the extension: one registered callback, withdrawn at the end."""

    def __init__(self) -> None:
        self.callback: Any = None
        self.withdrawn = False

    def register(self, callback: Any) -> Any:
        self.callback = callback

        def withdraw() -> None:
            self.withdrawn = True

        return withdraw


async def _never_receive() -> dict[str, Any]:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def test_the_offered_callback_is_used_and_withdrawn() -> None:
    offer = _Offer()
    left = anyio.Event()

    async def body() -> str:
        assert offer.callback is not None  # registered before the body runs
        offer.callback()  # the server saw the connection drop
        await left.wait()
        return "ended"

    scope = {"type": "http", "extensions": {DISCONNECT_EXTENSION: offer.register}}
    result = await run_unless_disconnected(scope, _never_receive, body, left.set)
    assert result == "ended"
    assert offer.withdrawn


async def test_without_the_extension_a_watcher_reads_http_disconnect() -> None:
    left = anyio.Event()
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        return {"type": "http.disconnect"}

    async def body() -> int:
        await left.wait()
        return 7

    assert await run_unless_disconnected({"type": "http"}, receive, body, left.set) == 7


@pytest.mark.parametrize("extensions", [None, {}, "offered"])
async def test_errors_from_the_body_come_out_unwrapped(extensions: Any) -> None:
    offer = _Offer()
    scope: dict[str, Any] = {"type": "http"}
    if extensions == "offered":
        scope["extensions"] = {DISCONNECT_EXTENSION: offer.register}
    elif extensions is not None:
        scope["extensions"] = extensions

    async def body() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await run_unless_disconnected(scope, _never_receive, body, lambda: None)
    assert offer.withdrawn == (extensions == "offered")


async def test_a_body_that_finishes_first_stops_the_watcher() -> None:
    async def body() -> str:
        return "quick"

    with anyio.fail_after(5):
        result = await run_unless_disconnected({"type": "http"}, _never_receive, body, print)
    assert result == "quick"


def test_watch_disconnect_registers_the_callback_and_returns_the_withdrawal() -> None:
    offer = _Offer()
    calls: list[str] = []
    scope = {"type": "http", "extensions": {DISCONNECT_EXTENSION: offer.register}}
    withdraw = watch_disconnect(scope, lambda: calls.append("left"))
    assert withdraw is not None
    offer.callback()  # the server saw the connection drop
    assert calls == ["left"]
    withdraw()
    assert offer.withdrawn


@pytest.mark.parametrize("extensions", [None, {}, {"other": object()}])
def test_watch_disconnect_is_none_when_the_server_offers_nothing(extensions: Any) -> None:
    scope: dict[str, Any] = {"type": "http"}
    if extensions is not None:
        scope["extensions"] = extensions
    assert watch_disconnect(scope, lambda: None) is None
