"""Streaming overhead of the OpenAI provider driver, against the alternatives.

What it measures (quality.md, "streaming overhead"), all in one session
against a mock OpenAI server in its own process that sends as fast as it can:

1. CPU time per streamed token in this process ("bulk": 2,000-token streams
   as fast as the mock sends), for
   * ``sipp driver``: the ``openai_compatible`` driver called directly,
   * the whole client (``SippClient``: run, timeouts, token channel) in both
     ways a caller consumes a run: iterating ``run.tokens`` (``client tokens``)
     and only awaiting the response (``client await``; ``emit_tokens=True``,
     so the upstream stream and its timeouts are the same),
   * ``bare loop``: httpx + httpx-sse + ``json.loads`` per chunk (the baseline),
   * ``openai SDK`` and ``LiteLLM`` when installed (never dependencies);
2. time to first token of a 1-token stream over a persistent connection,
   driver against the bare loop;
3. paced streams: 64 concurrent streams of 200 tokens sent 5 ms apart, so
   tokens arrive one by one and the run machinery's per-event cost (channel,
   wake-ups, task switches) shows: CPU per token of the bare loop, the driver
   and both client styles;
4. CPU per streamed delta for a stream of tool-call argument deltas (one call
   whose arguments come in ``TOKENS`` pieces, as OpenAI streams them), driver
   and client against the bare loop, reported apart from plain text.

Each table runs ``ROUNDS`` rounds; a round measures every client once, in an
order rotated from round to round, and divides each by the bare loop of the
same round. The tables show medians and spreads (min..max) of the values and
of those per-round ratios. Targets (quality.md, issue 15): the whole client
≤ 1.0× the bare loop on paced streams and ≤ 0.8× on bulk, in each style.
Writes ``benchmarks/results/provider.json``. Run: ``python benchmarks/bench_provider.py``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _raw_server import serve

ROUNDS = 5
STREAMS = 5
TOKENS = 2000
TTFT_REQUESTS = 200
PACED_STREAMS = 64
PACED_TOKENS = 200
PACE = 0.005

# -- the mock server (its own process) ---------------------------------------------


def _event(payload: str) -> bytes:
    data = f"data: {payload}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def _delta(i: int, tools: bool) -> dict[str, Any]:
    if not tools:
        return {"content": f" tok{i}"}
    piece: dict[str, Any] = {"index": 0, "function": {"arguments": f'"k{i}": {i}, '}}
    if i == 0:
        piece = {"index": 0, "id": "call_bench", "type": "function"}
        piece["function"] = {"name": "lookup", "arguments": "{"}
    return {"tool_calls": [piece]}


def _body(tokens: int, tools: bool = False) -> list[bytes]:
    chunks = []
    for i in range(tokens):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "bench",
            "choices": [{"index": 0, "delta": _delta(i, tools), "finish_reason": None}],
        }
        chunks.append(_event(json.dumps(chunk)))
    last = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tools else "stop"}],
    }
    chunks.append(_event(json.dumps(last)))
    chunks.append(
        _event(
            json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 5,
                        "completion_tokens": tokens,
                        "total_tokens": tokens + 5,
                    },
                }
            )
        )
    )
    chunks.append(_event("[DONE]"))
    chunks.append(b"0\r\n\r\n")
    return chunks


HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\nx-request-id: bench\r\n\r\n"
)


_answers: dict[tuple[int, bool], bytes] = {}


async def _respond(path: bytes, raw: bytes, writer: asyncio.StreamWriter) -> None:
    body = json.loads(raw) if raw else {}
    tokens = int(body.get("max_tokens") or 1)
    tools = body.get("model") == "tools"
    if body.get("model") == "paced":
        writer.write(HEAD)
        for chunk in _body(tokens)[:-4]:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(PACE)
        writer.write(b"".join(_body(tokens)[-4:]))
        return
    if (tokens, tools) not in _answers:
        _answers[tokens, tools] = HEAD + b"".join(_body(tokens, tools))
    writer.write(_answers[tokens, tools])


def _serve(port: int) -> None:
    serve(_respond, port)


# -- the clients ---------------------------------------------------------------------

Client = Callable[[int], Awaitable[int]]


class _Call:
    """The core's side of one attempt, reduced to counting what the driver emits."""

    request_id = "req_bench"
    stream = True
    attempt = 0
    cancel_requested = False

    def __init__(self) -> None:
        from sipp import Timeouts

        self.timeouts = Timeouts(connect=10)
        self.count = 0

    async def emit(self, text: str, frames: int = 1) -> None:
        self.count += frames

    async def emit_reasoning(self, text: str, frames: int = 1) -> None:
        self.count += frames

    async def emit_tool_call(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        self.count += 1


async def make_clients(
    base_url: str,
) -> tuple[dict[str, Client], list[Callable[[], Awaitable[None]]]]:
    import httpx
    import httpx_sse
    from sipp_openai import openai_compatible_driver

    from sipp import ChatMessage, ChatRequest, SippClient
    from sipp.driver import OpenContext

    closers: list[Callable[[], Awaitable[None]]] = []
    messages = [{"role": "user", "content": "hi"}]
    chat_messages = [ChatMessage(role="user", content="hi")]
    descriptor = {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": "bench",
        "base_url": base_url,
        "api_key": "sk-bench-000000000000",
        "retries": 0,
        "max_connections": PACED_STREAMS,
    }
    from sipp import ProviderDescriptor

    driver = await openai_compatible_driver.open(
        ProviderDescriptor(**{k: v for k, v in descriptor.items() if k != "kind"}),
        OpenContext(name="bench"),
    )
    closers.append(driver.aclose)

    async def sipp_driver(tokens: int) -> int:
        call = _Call()
        request = ChatRequest(messages=chat_messages, max_tokens=tokens)
        await driver.chat(request, call)
        return call.count

    sipp_client = SippClient()
    await sipp_client.__aenter__()
    closers.append(sipp_client.aclose)
    await sipp_client.add("bench", descriptor)

    async def sipp_tokens(tokens: int) -> int:
        run = sipp_client.chat(messages, endpoint="bench", max_tokens=tokens, emit_tokens=True)
        count = 0
        async for batch in run.tokens:
            count += batch.frame_count
        await run
        return count

    async def sipp_await(tokens: int) -> int:
        # Streamed upstream (emit_tokens) but nobody reads the tokens: the caller
        # only awaits the response. Each mock token is " tok<i>".
        response = await sipp_client.chat(
            messages, endpoint="bench", max_tokens=tokens, emit_tokens=True
        )
        return response.text.count(" tok")

    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=PACED_STREAMS))
    closers.append(http.aclose)

    async def bare(tokens: int) -> int:
        body = {"model": "bench", "messages": messages, "max_tokens": tokens, "stream": True}
        count = 0
        async with httpx_sse.aconnect_sse(
            http, "POST", f"{base_url}/chat/completions", json=body
        ) as source:
            async for sse in source.aiter_sse():
                if sse.data == "[DONE]":
                    break
                chunk = json.loads(sse.data)
                for choice in chunk.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        count += 1
        return count

    clients: dict[str, Client] = {
        "bare loop": bare,
        "sipp driver": sipp_driver,
        "client tokens": sipp_tokens,
        "client await": sipp_await,
    }
    try:
        import openai

        oai = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        closers.append(oai.close)

        async def openai_sdk(tokens: int) -> int:
            count = 0
            stream = await oai.chat.completions.create(
                model="bench",
                messages=messages,
                max_tokens=tokens,
                stream=True,  # type: ignore[arg-type]
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    count += 1
            return count

        clients["openai SDK"] = openai_sdk
    except ImportError:
        print("openai is not installed: skipped", file=sys.stderr)
    try:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
        import litellm

        async def litellm_client(tokens: int) -> int:
            count = 0
            stream = await litellm.acompletion(
                model="openai/bench",
                api_base=base_url,
                api_key="sk-bench",
                messages=messages,
                max_tokens=tokens,
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    count += 1
            return count

        clients["LiteLLM"] = litellm_client
    except ImportError:
        print("litellm is not installed: skipped", file=sys.stderr)
    return clients, closers


async def make_tool_clients(
    base_url: str,
) -> tuple[dict[str, Client], list[Callable[[], Awaitable[None]]]]:
    """Clients for a stream of tool-call deltas; each counts the deltas it saw."""
    import httpx
    import httpx_sse
    from sipp_openai import openai_compatible_driver

    from sipp import ChatMessage, ChatRequest, ProviderDescriptor, SippClient, Tool
    from sipp.driver import OpenContext

    closers: list[Callable[[], Awaitable[None]]] = []
    messages = [{"role": "user", "content": "hi"}]
    tools = [Tool(name="lookup", parameters={"type": "object", "properties": {}})]
    wire_tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    descriptor = {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": "tools",
        "base_url": base_url,
        "api_key": "sk-bench-000000000000",
        "retries": 0,
    }
    driver = await openai_compatible_driver.open(
        ProviderDescriptor(**{k: v for k, v in descriptor.items() if k != "kind"}),
        OpenContext(name="bench-tools"),
    )
    closers.append(driver.aclose)
    chat_messages = [ChatMessage(role="user", content="hi")]

    async def sipp_driver(tokens: int) -> int:
        call = _Call()
        request = ChatRequest(messages=chat_messages, max_tokens=tokens, tools=tools)
        await driver.chat(request, call)
        return call.count

    sipp_client = SippClient()
    await sipp_client.__aenter__()
    closers.append(sipp_client.aclose)
    await sipp_client.add("tools", descriptor)

    async def sipp_full(tokens: int) -> int:
        run = sipp_client.chat(
            messages, endpoint="tools", max_tokens=tokens, tools=tools, emit_tokens=True
        )
        count = 0
        async for batch in run.tokens:
            count += batch.frame_count
        response = await run
        assert len(response.tool_calls) == 1
        return count

    http = httpx.AsyncClient()
    closers.append(http.aclose)

    async def bare(tokens: int) -> int:
        body = {
            "model": "tools",
            "messages": messages,
            "max_tokens": tokens,
            "stream": True,
            "tools": wire_tools,
        }
        count = 0
        async with httpx_sse.aconnect_sse(
            http, "POST", f"{base_url}/chat/completions", json=body
        ) as source:
            async for sse in source.aiter_sse():
                if sse.data == "[DONE]":
                    break
                chunk = json.loads(sse.data)
                for choice in chunk.get("choices") or ():
                    count += len((choice.get("delta") or {}).get("tool_calls") or ())
        return count

    return {"bare loop": bare, "sipp driver": sipp_driver, "sipp client": sipp_full}, closers


# -- the measurements --------------------------------------------------------------------


async def cpu_per_token(client: Client) -> float:
    await client(10)  # warm: connection open, code paths hot
    start = time.process_time()
    total = 0
    for _ in range(STREAMS):
        total += await client(TOKENS)
    elapsed = time.process_time() - start
    assert total == STREAMS * TOKENS, (total, STREAMS * TOKENS)
    return elapsed / total * 1e6  # microseconds


async def ttft(client: Client) -> float:
    await client(1)
    samples = []
    for _ in range(TTFT_REQUESTS):
        start = time.perf_counter()
        await client(1)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3  # ms, a whole 1-token stream


async def paced(client: Client) -> float:
    await client(2)
    cpu = time.process_time()
    counts = await asyncio.gather(*(client(PACED_TOKENS) for _ in range(PACED_STREAMS)))
    assert sum(counts) == PACED_STREAMS * PACED_TOKENS
    return (time.process_time() - cpu) / sum(counts) * 1e6  # microseconds


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


#: The clients whose paced streams are measured (the SDKs are 5-25× off already in bulk).
PACED_CLIENTS = ("bare loop", "sipp driver", "client tokens", "client await")
#: Whole-client targets (issue 15): ratio to the same round's bare loop, per table.
TARGETS = {"paced": 1.0, "bulk": 0.8}


async def run(base_url: str) -> dict[str, Any]:
    clients, closers = await make_clients(base_url)
    results: dict[str, Any] = {}
    try:
        bulk = await rounds_table(clients, cpu_per_token)
        results["cpu_us_per_token"] = bulk["cpu_us"]
        results["ratio_to_bare"] = bulk["ratio_to_bare"]
        ttft_ratio: list[float] = []
        samples: dict[str, list[float]] = {"bare loop": [], "sipp driver": [], "client tokens": []}
        for _ in range(ROUNDS):
            for name in samples:
                samples[name].append(await ttft(clients[name]))
            ttft_ratio.append(samples["sipp driver"][-1] / samples["bare loop"][-1])
        results["ttft_ms"] = {name: summary(v) for name, v in samples.items()}
        results["ttft_ratio_driver_to_bare"] = summary(ttft_ratio)
        paced_table = await rounds_table({name: clients[name] for name in PACED_CLIENTS}, paced)
        results["paced"] = {
            "cpu_us_per_token": paced_table["cpu_us"],
            "ratio_to_bare": paced_table["ratio_to_bare"],
        }
        tool_clients, tool_closers = await make_tool_clients(base_url)
        closers += tool_closers
        tools = await rounds_table(tool_clients, cpu_per_token)
        results["tool_calls"] = {
            "cpu_us_per_delta": tools["cpu_us"],
            "ratio_to_bare": tools["ratio_to_bare"],
        }
    finally:
        for close in reversed(closers):
            await close()
    return results


async def rounds_table(
    clients: dict[str, Client], measure: Callable[[Client], Awaitable[float]]
) -> dict[str, Any]:
    """``measure`` of each client, and its ratio to the bare loop of the same round.

    The order rotates every round, so no client always runs first (cold
    caches) or right after another one's garbage.
    """
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    ratios: dict[str, list[float]] = {name: [] for name in clients}
    for round_ in range(ROUNDS):
        order = list(clients)
        order = order[round_ % len(order) :] + order[: round_ % len(order)]
        measured = {name: await measure(clients[name]) for name in order}
        for name, value in measured.items():
            cpu[name].append(value)
            ratios[name].append(value / measured["bare loop"])
    return {
        "cpu_us": {name: summary(cpu[name]) for name in clients},
        "ratio_to_bare": {name: summary(ratios[name]) for name in clients},
    }


def _print_rows(unit: str, cpu_us: dict[str, Any], ratios: dict[str, Any]) -> None:
    print(f"{'client':<15}{unit:>10}{'spread':>18}{'× bare':>9}{'spread':>16}")
    for name, cpu in cpu_us.items():
        ratio = ratios[name]
        print(
            f"{name:<15}{cpu['median']:>10.2f}{cpu['min']:>9.2f}..{cpu['max']:<7.2f}"
            f"{ratio['median']:>9.2f}{ratio['min']:>8.2f}..{ratio['max']:<6.2f}"
        )


def print_table(results: dict[str, Any]) -> None:
    print(f"\nCPU per streamed token, bulk ({ROUNDS} rounds x {STREAMS} streams x {TOKENS} tokens)")
    _print_rows("µs/token", results["cpu_us_per_token"], results["ratio_to_bare"])
    print(
        f"\nTime to first token, 1-token stream, persistent connection ({TTFT_REQUESTS} requests)"
    )
    for name, value in results["ttft_ms"].items():
        print(f"{name:<15}{value['median']:>8.3f} ms  ({value['min']:.3f}..{value['max']:.3f})")
    r = results["ttft_ratio_driver_to_bare"]
    print(f"driver / bare   {r['median']:.2f}×  ({r['min']:.2f}..{r['max']:.2f})")
    paced = results["paced"]
    print(
        f"\nCPU per token, paced ({ROUNDS} rounds x {PACED_STREAMS} concurrent streams x "
        f"{PACED_TOKENS} tokens {PACE * 1000:g} ms apart)"
    )
    _print_rows("µs/token", paced["cpu_us_per_token"], paced["ratio_to_bare"])
    tools = results["tool_calls"]
    print(f"\nCPU per streamed tool-call delta ({ROUNDS} rounds x {STREAMS} streams x {TOKENS})")
    _print_rows("µs/delta", tools["cpu_us_per_delta"], tools["ratio_to_bare"])
    print("\nWhole-client targets (median of the per-round ratios to the bare loop):")
    for table, ratios in (
        ("paced", paced["ratio_to_bare"]),
        ("bulk", results["ratio_to_bare"]),
    ):
        for name in ("client tokens", "client await"):
            median = ratios[name]["median"]
            target = TARGETS[table]
            verdict = "met" if median <= target else "MISSED"
            print(f"  {table:<6} {name:<14} {median:5.2f}×  target ≤ {target:.2f}×  {verdict}")


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        results = asyncio.run(run(f"http://127.0.0.1:{port}/v1"))
    finally:
        server.terminate()
        server.join()
    results["config"] = {
        "rounds": ROUNDS,
        "streams": STREAMS,
        "tokens": TOKENS,
        "ttft_requests": TTFT_REQUESTS,
        "paced_streams": PACED_STREAMS,
        "paced_tokens": PACED_TOKENS,
        "pace_s": PACE,
        "targets": TARGETS,
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
    }
    print_table(results)
    out = Path(__file__).parent / "results" / "provider.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
