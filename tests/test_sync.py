"""SyncClient in the places blocking clients break: scripts, thread pools, notebooks, Ctrl-C."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from sipp import ClientClosedError, RunCancelled, SyncClient, TransportError
from sipp.testing import scripted_driver

BACKENDS = [pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
SLOW = {"kind": "scripted", "reply": "one two three four five", "token_delay": 0.05}


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest) -> Iterator[SyncClient]:
    with SyncClient(backend=request.param) as client:
        client.add("echo", {"kind": "scripted", "embedding": [0.5, 0.25]})
        client.add("slow", SLOW)
        yield client


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sipp-sync-loop"]


def test_query_chat_and_embed_without_await(client: SyncClient) -> None:
    assert client.query("hello there", endpoint="echo").response().text == "hello there"
    chat = client.chat([{"role": "user", "content": "hi you"}], endpoint="echo")
    assert chat.result().text == "hi you"
    assert client.embed("x", endpoint="echo").response().values == [0.5, 0.25]
    assert sorted(client.endpoints) == ["echo", "slow"]


def test_tokens_are_a_plain_iterator_that_adds_up_to_the_response(client: SyncClient) -> None:
    run = client.query("x", endpoint="slow", emit_tokens=True)
    texts = [batch.text for batch in run.tokens]
    assert len(texts) > 1  # streamed, not one batch at the end
    assert "".join(texts) == run.response().text == "one two three four five"
    assert run.status == "completed"


def test_a_failed_run_raises_its_own_error(client: SyncClient) -> None:
    client.add("broken", {"kind": "scripted", "reply": "a b c", "fail_at": 1})
    run = client.query("x", endpoint="broken", emit_tokens=True)
    with pytest.raises(TransportError):
        list(run.tokens)
    with pytest.raises(TransportError) as caught:
        run.response()
    assert caught.value.partial is not None
    assert caught.value.partial.text == "a "


def test_cancel_from_another_thread_ends_the_iterator(client: SyncClient) -> None:
    run = client.query("x", endpoint="slow", emit_tokens=True)
    seen = []
    for batch in run.tokens:
        seen.append(batch.text)
        threading.Thread(target=run.cancel, args=("user_clicked_stop",)).start()
    with pytest.raises(RunCancelled) as caught:
        run.response()
    assert caught.value.reason == "user_clicked_stop"
    assert caught.value.partial is not None
    assert caught.value.partial.text.startswith("".join(seen))
    assert len(caught.value.partial.text) < len("one two three four five")


def test_a_thread_pool_of_eight_callers_shares_one_client(client: SyncClient) -> None:
    def ask(i: int) -> str:
        run = client.query(f"caller {i}", endpoint="echo", emit_tokens=True)
        streamed = "".join(batch.text for batch in run.tokens)
        assert streamed == run.response().text
        return streamed

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(64)))
    assert answers == [f"caller {i}" for i in range(64)]


def test_inside_a_running_asyncio_loop_the_notebook_case(client: SyncClient) -> None:
    # A Jupyter cell runs inside the kernel's loop; blocking calls there must not
    # touch that loop ("event loop is already running").
    async def cell() -> str:
        asyncio.get_running_loop()
        return client.query("from a cell", endpoint="echo").response().text

    assert asyncio.run(cell()) == "from a cell"
    # The next cell, on a new loop after the first one closed: no "event loop is closed".
    assert asyncio.run(cell()) == "from a cell"


def test_two_sequential_calls_after_the_first_calls_loop_ended(client: SyncClient) -> None:
    first = client.query("first", endpoint="slow", emit_tokens=True)
    assert "".join(b.text for b in first.tokens) == "one two three four five"
    asyncio.run(asyncio.sleep(0))  # some other loop comes and goes in between
    trio.run(trio.sleep, 0)
    second = client.query("second", endpoint="slow")
    assert second.response().text == "one two three four five"


@pytest.mark.parametrize("program", ["asyncio", "trio"])
def test_from_a_worker_thread_of_an_async_program(client: SyncClient, program: str) -> None:
    def work() -> str:
        return client.query("from a worker", endpoint="echo").response().text

    async def asyncio_main() -> str:
        return await asyncio.to_thread(work)

    async def trio_main() -> str:
        return await trio.to_thread.run_sync(work)

    answer = asyncio.run(asyncio_main()) if program == "asyncio" else trio.run(trio_main)
    assert answer == "from a worker"


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_is_idempotent_leaves_no_thread_and_refuses_later_calls(backend: str) -> None:
    before = len(_loop_threads())
    client = SyncClient(backend=backend)  # type: ignore[arg-type]
    client.add("slow", SLOW)
    run = client.query("x", endpoint="slow", emit_tokens=True)
    client.close()
    client.close()
    assert client.closed
    assert len(_loop_threads()) == before
    with pytest.raises(RunCancelled) as caught:
        assert run.status == "cancelled"
        raise run.error  # type: ignore[misc]
    assert caught.value.reason == "client_closed"
    with pytest.raises(ClientClosedError):
        client.query("x", endpoint="slow")
    with pytest.raises(ClientClosedError):
        client.add("other", SLOW)


def test_a_dropped_client_is_closed_and_its_thread_joined() -> None:
    before = len(_loop_threads())
    client = SyncClient()
    client.add("echo", {"kind": "scripted"})
    driver = scripted_driver.opened[-1]
    assert len(_loop_threads()) == before + 1
    del client
    gc.collect()
    assert driver.closed
    assert len(_loop_threads()) == before


def test_a_new_client_after_a_closed_one_works() -> None:
    for _ in range(2):
        with SyncClient() as client:
            client.add("echo", {"kind": "scripted"})
            assert client.query("again", endpoint="echo").response().text == "again"


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def test_a_plain_script() -> None:
    result = subprocess.run(
        _script(
            """
            from sipp import SyncClient
            client = SyncClient()
            client.add("echo", {"kind": "scripted"})
            print(client.query("plain script").response().text)
            # never closed: the interpreter must still exit, after closing it
            """
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "plain script\n"


_CTRL_C_SCRIPT = """
import sys, threading
from sipp import SyncClient

mode = sys.argv[1]
try:
    with SyncClient(backend=sys.argv[2]) as client:
        ep = client.add("slow", {{"kind": "scripted", "reply": "w " * 400, "token_delay": 0.02}})
        driver = __import__("sipp.testing").testing.scripted_driver.opened[-1]
        run = client.query("x", endpoint="slow", emit_tokens=True)
        try:
            if mode == "tokens":
                for batch in run.tokens:
                    print("TOKEN", flush=True)
            else:
                print("TOKEN", flush=True)
                run.response()
        except KeyboardInterrupt:
            print("status", run.status, run.cancel_reason, "active", driver.active_calls,
                  flush=True)
            raise
except KeyboardInterrupt:
    # trio keeps idle daemon worker threads in a process-wide cache; they do not count
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()
            and (not t.daemon or t.name == "sipp-sync-loop")]
    print("threads", left, flush=True)
    raise
"""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["tokens", "response"])
def test_ctrl_c_mid_stream_cancels_the_run_and_leaves_no_thread(mode: str, backend: str) -> None:
    process = subprocess.Popen(
        [*_script(_CTRL_C_SCRIPT.format()), mode, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "TOKEN\n"
    time.sleep(0.1)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert time.monotonic() - started < 5
    lines = [line for line in out.splitlines() if line != "TOKEN"]
    assert lines == [
        "status cancelled caller_cancelled active 0",
        "threads []",
    ], err
    assert "KeyboardInterrupt" in err
    assert process.returncode in (-signal.SIGINT, 128 + signal.SIGINT, 1)


def test_ctrl_c_exit_code_is_the_interrupt(tmp_path: Any) -> None:
    # The process dies of SIGINT like any Python program interrupted by Ctrl-C.
    process = subprocess.Popen(
        [*_script(_CTRL_C_SCRIPT.format()), "response", "asyncio"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    os.kill(process.pid, signal.SIGINT)
    process.communicate(timeout=20)
    assert process.returncode == -signal.SIGINT
