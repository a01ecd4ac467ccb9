"""The local driver against the real test model, on asyncio and trio."""

from __future__ import annotations

import json
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import anyio
import pytest

from sipp import (
    InvalidRequestError,
    LocalModelError,
    RunCancelled,
    SippClient,
    UnsupportedOperationError,
)

pytestmark = pytest.mark.anyio

CHAT = [{"role": "user", "content": "What is 2+2?"}]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sipp-local")]


def test_the_entry_point_names_the_factory() -> None:
    (found,) = [ep for ep in entry_points(group="sipp.drivers") if ep.name == "local"]
    assert found.value == "sipp_llama:driver"


async def test_query_stops_at_max_tokens_with_length(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        response = await client.query(
            "The capital of France is", endpoint=model, max_tokens=8, temperature=0
        )
    assert response.finish_reason == "length"
    assert "Paris" in response.text
    assert response.usage.output_tokens == 8
    stats = response.stats
    assert stats is not None
    assert stats.generated_tokens == 8
    assert stats.prompt_tokens == response.usage.input_tokens > 0
    assert stats.time_to_first_token is not None and stats.tokens_per_second
    assert response.timings.queue_wait is not None


async def test_chat_uses_the_model_template_and_ends_with_stop(
    descriptor: dict[str, Any],
) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        response = await client.chat(CHAT, endpoint=model, max_tokens=64, temperature=0)
    assert response.finish_reason == "stop"
    assert "4" in response.text
    assert "<|im_end|>" not in response.text


async def test_streamed_batches_add_up_to_the_response(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        run = client.chat(CHAT, endpoint=model, max_tokens=40, temperature=0, emit_tokens=True)
        batches = [batch async for batch in run.tokens]
        response = await run
    assert len(batches) > 1
    assert "".join(batch.text for batch in batches) == response.text
    assert sum(batch.frame_count for batch in batches) <= response.usage.output_tokens


async def test_stop_strings_are_cut_and_never_streamed(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        full = await client.chat(CHAT, endpoint=model, max_tokens=40, temperature=0)
        words = full.text.split()
        stop = " " + words[len(words) // 2]
        run = client.chat(
            CHAT, endpoint=model, max_tokens=40, temperature=0, stop=[stop], emit_tokens=True
        )
        seen = ""
        async for batch in run.tokens:
            seen += batch.text
            assert stop not in seen
        response = await run
    assert response.finish_reason == "stop"
    assert response.text == full.text[: full.text.index(stop)]


async def test_model_without_template_refuses_chat_before_any_work(
    descriptor: dict[str, Any], no_template_model: Path
) -> None:
    async with SippClient() as client:
        model = await client.add("plain", {**descriptor, "source": str(no_template_model)})
        with pytest.raises(UnsupportedOperationError, match="query"):
            client.chat(CHAT, endpoint=model)
        response = await client.query("Hello", endpoint=model, max_tokens=4)
    assert response.usage.output_tokens == 4


async def test_empty_chat_template_override_switches_chat_off(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "chat_template": ""})
        with pytest.raises(UnsupportedOperationError):
            client.chat(CHAT, endpoint=model)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"this is not a model", "not a GGUF", id="not-gguf"),
        pytest.param(None, "not found", id="missing"),
        pytest.param(b"GGUF\x03\x00\x00\x00garbage", "could not load", id="damaged"),
    ],
)
async def test_a_bad_model_file_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, descriptor: dict[str, Any], content: bytes | None, message: str
) -> None:
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    async with SippClient() as client:
        with pytest.raises(LocalModelError, match=message):
            await client.add("bad", {**descriptor, "source": str(path)})
        assert not client.endpoints
    assert worker_threads() == []


async def test_embeddings_are_normalised_vectors_of_the_model_width(
    descriptor: dict[str, Any],
) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "embeddings": True})
        first = await client.embed("The cat sat on the mat.", endpoint=model)
        again = await client.embed("The cat sat on the mat.", endpoint=model)
        text = await client.query("Hi", endpoint=model, max_tokens=3)
    assert len(first.values) == 576
    assert sum(x * x for x in first.values) == pytest.approx(1.0)
    assert first.normalized is True and first.pooling == "mean"
    assert first.values == pytest.approx(again.values, abs=1e-5)
    assert text.usage.output_tokens == 3  # text still works on an embedding endpoint


async def test_embed_needs_embedding_mode(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        with pytest.raises(UnsupportedOperationError):
            client.embed("text", endpoint=model)


async def test_context_key_reuses_the_cached_prefix(descriptor: dict[str, Any]) -> None:
    history = "Here are some notes about lighthouses. " * 30
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        key = {"context_key": "conversation-1"}
        first = await client.query(history, endpoint=model, max_tokens=4, local=key)
        follow = await client.query(
            history + "Question: what is a lighthouse?", endpoint=model, max_tokens=4, local=key
        )
        cold = await client.query(
            history + "Question: what is a lighthouse?", endpoint=model, max_tokens=4
        )
    assert first.stats is not None and follow.stats is not None
    assert cold.stats is not None
    assert first.stats.cached_prefix_tokens == 0
    assert cold.stats.cached_prefix_tokens == 0
    assert follow.stats.cached_prefix_tokens >= first.stats.prompt_tokens - 1
    assert follow.stats.prompt_seconds < cold.stats.prompt_seconds / 2


async def test_grammar_constrains_the_output(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        response = await client.query(
            "Is the sky blue? Answer:",
            endpoint=model,
            max_tokens=8,
            local={"grammar": 'root ::= "yes" | "no"'},
        )
    assert response.text in ("yes", "no")


async def test_json_schema_output_parses(descriptor: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
        "required": ["name", "age"],
    }
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        response = await client.chat(
            [{"role": "user", "content": "Describe a person as JSON."}],
            endpoint=model,
            max_tokens=60,
            temperature=0,
            local={"json_schema": schema},
        )
    value = json.loads(response.text)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


async def test_cancel_mid_decode_frees_the_worker_at_once(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_parallel": 1})
        run = client.query("Once upon a time", endpoint=model, max_tokens=500, emit_tokens=True)
        async for _ in run.tokens:
            run.cancel()
        with pytest.raises(RunCancelled) as caught:
            await run
        assert caught.value.partial is not None and caught.value.partial.text
        next_one = await client.query("Hello", endpoint=model, max_tokens=2)
    assert next_one.timings.queue_wait is not None and next_one.timings.queue_wait < 0.2


async def test_cancel_during_prompt_processing_is_prompt(descriptor: dict[str, Any]) -> None:
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 90  # ~900 tokens
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_parallel": 1})
        run = client.query(long_prompt, endpoint=model, max_tokens=4, emit_tokens=True)
        await anyio.sleep(0.3)
        started = time.perf_counter()
        run.cancel()
        with pytest.raises(RunCancelled) as caught:
            await run
        assert caught.value.partial is not None and caught.value.partial.text == ""
        next_one = await client.query("Hello", endpoint=model, max_tokens=2)
        elapsed = time.perf_counter() - started
    # The full prompt takes several seconds here; a cancel checked only after it would show.
    assert elapsed < 1.5
    assert next_one.timings.queue_wait is not None and next_one.timings.queue_wait < 0.5


async def test_eight_concurrent_requests_match_their_sequential_twins(
    descriptor: dict[str, Any],
) -> None:
    prompts = [f"Count from {n} to {n + 5}:" for n in range(8)]
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_parallel": 8})
        alone = [
            (await client.query(p, endpoint=model, max_tokens=16, temperature=0)).text
            for p in prompts
        ]
        together: dict[int, str] = {}

        async def one(index: int) -> None:
            response = await client.query(
                prompts[index], endpoint=model, max_tokens=16, temperature=0
            )
            assert response.finish_reason == "length"
            together[index] = response.text

        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(one, index)
    # Batched arithmetic may differ in the last bits; on this model it does not.
    matches = sum(together[i] == alone[i] for i in range(8))
    assert matches >= 7, (alone, together)


async def test_requests_beyond_max_queue_are_refused(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_parallel": 1, "max_queue": 1})
        running = client.query("Once upon a time", endpoint=model, max_tokens=200, emit_tokens=True)
        async for _ in running.tokens:
            break
        waiting = client.query("Hi", endpoint=model, max_tokens=1)
        await anyio.sleep(0.05)
        with pytest.raises(LocalModelError, match="max_queue"):
            await client.query("Hi", endpoint=model, max_tokens=1)
        running.cancel()
        assert (await waiting).timings.queue_wait is not None


async def test_the_event_loop_stays_responsive_while_generating(
    descriptor: dict[str, Any],
) -> None:
    lags: list[float] = []
    async with SippClient() as client:
        model = await client.add("m", descriptor)

        async def ticker() -> None:
            while True:
                before = anyio.current_time()
                await anyio.sleep(0.005)
                lags.append(anyio.current_time() - before - 0.005)

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            run = client.query("Once upon a time", endpoint=model, max_tokens=80, emit_tokens=True)
            async for _ in run.tokens:
                pass
            group.cancel_scope.cancel()
    lags.sort()
    assert len(lags) > 50
    assert lags[int(len(lags) * 0.99)] < 0.1


async def test_closing_joins_the_worker_thread(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        client.query("Once upon a time", endpoint=model, max_tokens=500)
        assert len(worker_threads()) == 1
    assert worker_threads() == []


async def test_load_progress_goes_to_stderr(
    descriptor: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    async with SippClient(show_progress=True) as client:
        await client.add("m", descriptor)
    assert "100%" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("prompt", "options", "field"),
    [
        pytest.param("", {}, "prompt", id="empty-prompt"),
        pytest.param("word " * 400, {}, "prompt", id="prompt-longer-than-context"),
        pytest.param(
            "Hi", {"local": {"grammar": "root ::= oops"}}, "local.grammar", id="bad-grammar"
        ),
    ],
)
async def test_requests_that_cannot_work_fail_clearly_and_leave_the_model_usable(
    descriptor: dict[str, Any], prompt: str, options: dict[str, Any], field: str
) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_ctx": 64, "n_parallel": 1})
        with pytest.raises(InvalidRequestError) as caught:
            await client.query(prompt, endpoint=model, max_tokens=2, **options)
        assert caught.value.field == field
        after = await client.query("Hello", endpoint=model, max_tokens=2)
    assert after.usage.output_tokens == 2
