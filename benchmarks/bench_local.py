"""Local driver benchmark: Sipp's ``local`` endpoint against llama-cpp-python called directly.

What it measures, all in one run, on the test model (or ``SIPP_TEST_MODEL``):

* single-stream decode tokens/s (256 tokens, greedy) at each ``n_threads``
  in ``--threads`` (default 1 and every usable CPU), through Sipp, through
  llama-cpp-python's high-level streaming API
  (``Llama.create_completion(stream=True)``), and through a bare low-level
  decode loop (the floor), all at the same ``n_threads`` and with the same
  attention kernel (``--flash-attn``, default on, set explicitly on every
  side and printed). Each runs in its own clean subprocess, because
  llama.cpp decodes slower on a thread of a process where another thread
  already drove it. The ratio that matters is Sipp over the *best* direct
  baseline (the faster of the two by median), repeat by repeat; the greedy
  texts are compared too, since a different kernel shows as different text
  from the first tokens on;
* event-loop lag p99 while Sipp generates (a 5 ms ticker on the same loop);
* 8 concurrent requests on one Sipp endpoint (continuous batching) against
  the same 8 run one after another through the high-level API: aggregate
  tokens/s, and how many outputs equal their sequential twin under greedy
  sampling (lag and concurrency at the driver's default ``n_threads``).

Every figure is a ratio against a baseline measured in the same run; each
measurement repeats (``--repeats``, interleaved, with the order rotated each
repeat, so load from other processes spreads over all of them) and the table
shows median and spread (min..max). Results go to ``benchmarks/results/local.json``.

    python benchmarks/bench_local.py [--repeats 5] [--threads 1,2] [--flash-attn on|off]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _report import summary, write

PROMPT = "The history of the city of Paris begins"
TOKENS = 256
# Raw completion prompts that keep this small model talking for all 64 tokens
# (an instruction ending in "." makes it stop at once under greedy sampling).
CONCURRENT_PROMPTS = [
    f"Here is a short story about the number {n}. Once upon a time" for n in range(8)
]
CONCURRENT_TOKENS = 64
STREAM_MODES = ("sipp", "high-level", "bare")


def _model() -> str:
    from sipp_llama.testing import test_model_path

    return str(test_model_path())


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _default_threads() -> int:
    from sipp_llama._native import _default_threads

    return _default_threads()


def _batch_threads() -> int:
    # Every side uses the driver's default for batches (all usable CPUs).
    from sipp_llama._native import _default_batch_threads

    return _default_batch_threads()


def _patch_extra_buffers() -> None:
    # The same AMX guard the driver applies, so both sides run the same kernels.
    import llama_cpp.llama_cpp as low
    from sipp_llama._native import _use_extra_buffers

    original = low.llama_model_default_params
    use = _use_extra_buffers()

    def params() -> Any:
        value = original()
        value.use_extra_bufts = use
        return value

    low.llama_model_default_params = params


# -- the measurements, each run in its own process -------------------------------------


def _llama(threads: int, flash_attn: bool) -> Any:
    _patch_extra_buffers()
    from llama_cpp import Llama

    # llama-cpp-python turns flash attention off unless asked; llama.cpp's own
    # default (auto) turns it on for CPUs. Every side gets the same explicit value.
    return Llama(
        _model(),
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=_batch_threads(),
        flash_attn=flash_attn,
        verbose=False,
    )


def run_highlevel(threads: int, flash_attn: bool) -> dict[str, Any]:
    llm = _llama(threads, flash_attn)
    stamps, parts = [], []
    for chunk in llm.create_completion(PROMPT, max_tokens=TOKENS, temperature=0, stream=True):
        choice = chunk["choices"][0]
        if choice["finish_reason"] is not None and not choice["text"]:
            continue  # the closing chunk carries no token
        stamps.append(time.perf_counter())
        parts.append(choice["text"])
    return {"tokens": len(stamps), "tps": _rate(stamps), "text": "".join(parts)}


def run_highlevel_sequential(threads: int, flash_attn: bool) -> dict[str, Any]:
    llm = _llama(threads, flash_attn)
    texts, tokens = [], 0
    started = time.perf_counter()
    for prompt in CONCURRENT_PROMPTS:
        out: Any = llm.create_completion(prompt, max_tokens=CONCURRENT_TOKENS, temperature=0)
        texts.append(out["choices"][0]["text"])
        tokens += out["usage"]["completion_tokens"]
    elapsed = time.perf_counter() - started
    return {"tokens": tokens, "tps": tokens / elapsed, "texts": texts}


def run_bare(threads: int, flash_attn: bool) -> dict[str, Any]:
    import llama_cpp as ll
    from sipp_llama._native import _use_extra_buffers

    quiet = ll.llama_log_callback(lambda *_: None)  # must outlive every llama.cpp call
    ll.llama_log_set(quiet, None)
    ll.llama_backend_init()
    mparams = ll.llama_model_default_params()
    mparams.use_extra_bufts = _use_extra_buffers()
    model = ll.llama_model_load_from_file(_model().encode(), mparams)
    vocab = ll.llama_model_get_vocab(model)
    cparams = ll.llama_context_default_params()
    cparams.n_ctx, cparams.n_threads, cparams.n_threads_batch = 2048, threads, _batch_threads()
    cparams.flash_attn_type = (
        ll.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    ctx = ll.llama_init_from_model(model, cparams)
    buffer = (ll.llama_token * 256)()
    data = PROMPT.encode()
    n = ll.llama_tokenize(vocab, data, len(data), buffer, 256, True, True)
    batch = ll.llama_batch_init(512, 0, 1)
    for i in range(n):
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = buffer[i], i, 1
        batch.seq_id[i][0], batch.logits[i] = 0, i == n - 1
    batch.n_tokens = n
    ll.llama_decode(ctx, batch)
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
    stamps, generated, index, pos = [], [], n - 1, n
    for _ in range(TOKENS):
        token = ll.llama_sampler_sample(chain, ctx, index)
        stamps.append(time.perf_counter())
        if ll.llama_vocab_is_eog(vocab, token):
            stamps.pop()
            break
        generated.append(token)
        batch.token[0], batch.pos[0], batch.seq_id[0][0], batch.logits[0] = token, pos, 0, True
        batch.n_tokens, index, pos = 1, 0, pos + 1
        ll.llama_decode(ctx, batch)
    # Detokenized after the timing, so the loop stays bare.
    piece = ctypes.create_string_buffer(64)
    raw = b""
    for token in generated:
        size = ll.llama_token_to_piece(vocab, token, piece, 64, 0, False)
        raw += piece.raw[:size]
    return {"tokens": len(stamps), "tps": _rate(stamps), "text": raw.decode(errors="replace")}


def _descriptor(threads: int, flash_attn: bool) -> dict[str, Any]:
    return {
        "kind": "local",
        "source": _model(),
        "n_threads": threads,
        "n_threads_batch": _batch_threads(),
        "n_parallel": 8,
        "flash_attn": flash_attn,
    }


def run_sipp(threads: int, flash_attn: bool) -> dict[str, Any]:
    import anyio

    from sipp import SippClient

    async def main() -> dict[str, Any]:
        async with SippClient() as client:
            model = await client.add("bench", _descriptor(threads, flash_attn))
            stamps: list[float] = []
            run = client.query(
                PROMPT, endpoint=model, max_tokens=TOKENS, temperature=0, emit_tokens=True
            )
            async for batch in run.tokens:
                # What a reader sees: every token of a batch arrives when the batch does.
                stamps.extend([time.perf_counter()] * batch.frame_count)
            response = await run
        return {"tokens": len(stamps), "tps": _rate(stamps), "text": response.text}

    return anyio.run(main)


def run_sipp_concurrent(threads: int, flash_attn: bool) -> dict[str, Any]:
    import anyio

    from sipp import SippClient

    async def main() -> dict[str, Any]:
        lags: list[float] = []
        async with SippClient() as client:
            model = await client.add("bench", _descriptor(threads, flash_attn))

            async def ticker() -> None:
                while True:
                    before = anyio.current_time()
                    await anyio.sleep(0.005)
                    lags.append(anyio.current_time() - before - 0.005)

            async with anyio.create_task_group() as group:
                group.start_soon(ticker)
                run = client.query(PROMPT, endpoint=model, max_tokens=128, emit_tokens=True)
                async for _ in run.tokens:
                    pass
                group.cancel_scope.cancel()
            texts: dict[int, str] = {}
            total = 0

            async def one(index: int) -> None:
                nonlocal total
                out = await client.query(
                    CONCURRENT_PROMPTS[index],
                    endpoint=model,
                    max_tokens=CONCURRENT_TOKENS,
                    temperature=0,
                )
                texts[index] = out.text
                total += out.usage.output_tokens or 0

            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for index in range(8):
                    group.start_soon(one, index)
            elapsed = time.perf_counter() - started
        lags.sort()
        return {
            "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000,
            "tps": total / elapsed,
            "tokens": total,
            "texts": [texts[i] for i in range(8)],
        }

    return anyio.run(main)


def _rate(stamps: list[float]) -> float:
    """Tokens/s from the first token to the last (prompt processing left out)."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


MODES = {
    "sipp": run_sipp,
    "high-level": run_highlevel,
    "bare": run_bare,
    "sipp-concurrent": run_sipp_concurrent,
    "high-level-sequential": run_highlevel_sequential,
}


# -- the orchestrator -----------------------------------------------------------------------


def _spawn(mode: str, threads: int, flash_attn: bool) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--threads",
            str(threads),
            "--flash-attn",
            "on" if flash_attn else "off",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _jobs(threads: list[int], concurrency_threads: int) -> list[tuple[str, int]]:
    jobs = [(mode, count) for count in threads for mode in STREAM_MODES]
    jobs += [
        ("sipp-concurrent", concurrency_threads),
        ("high-level-sequential", concurrency_threads),
    ]
    return jobs


def _row(measure: str, threads: int | str, values: list[float], target: str = "") -> dict[str, Any]:
    stats = summary(values)
    return {
        "measure": measure,
        "n_threads": threads,
        "median": stats["median"],
        "min": stats["min"],
        "max": stats["max"],
        "target": target,
    }


def _stream_rows(count: int, runs: dict[tuple[str, int], list[dict[str, Any]]]) -> list[Any]:
    sipp, high, bare = (runs[mode, count] for mode in STREAM_MODES)
    # The best baseline is the faster *method*, by its median over the repeats,
    # then compared repeat by repeat. Taking the larger of the two figures in
    # every repeat would compare Sipp with the luckier sample rather than the
    # faster method: with all three equally fast, that alone puts the ratio
    # below 1 by about the run-to-run noise (2-4 % here).
    bare_wins = (
        summary([b["tps"] for b in bare])["median"] >= summary([h["tps"] for h in high])["median"]
    )
    best = [(b if bare_wins else h)["tps"] for h, b in zip(high, bare, strict=True)]
    best_name = "bare loop" if bare_wins else "high-level"
    return [
        _row("tokens/s sipp", count, [r["tps"] for r in sipp]),
        _row("tokens/s high-level create_completion", count, [r["tps"] for r in high]),
        _row("tokens/s bare low-level loop", count, [r["tps"] for r in bare]),
        _row(
            "sipp / high-level",
            count,
            [s["tps"] / h["tps"] for s, h in zip(sipp, high, strict=True)],
        ),
        _row(
            "sipp / bare loop",
            count,
            [s["tps"] / b["tps"] for s, b in zip(sipp, bare, strict=True)],
        ),
        _row(
            f"sipp / best baseline ({best_name})",
            count,
            [s["tps"] / x for s, x in zip(sipp, best, strict=True)],
            ">= 0.97",
        ),
    ]


def _checks(count: int, runs: dict[tuple[str, int], list[dict[str, Any]]]) -> dict[str, Any]:
    # Same kernel, same greedy text: a mismatch means the comparison is not like for like.
    sipp, high, bare = (runs[mode, count][0] for mode in STREAM_MODES)
    return {
        "tokens (sipp, high-level, bare)": [sipp["tokens"], high["tokens"], bare["tokens"]],
        "greedy text sipp == bare": sipp["text"] == bare["text"],
        "greedy text sipp == high-level": sipp["text"] == high["text"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        default="",
        help="comma-separated n_threads for the single stream (default: 1 and every usable CPU)",
    )
    parser.add_argument("--flash-attn", choices=("on", "off"), default="on")
    parser.add_argument("--mode", choices=sorted(MODES))
    args = parser.parse_args()
    flash_attn = args.flash_attn == "on"
    if args.mode:
        print(json.dumps(MODES[args.mode](int(args.threads), flash_attn)))
        return
    threads = sorted({int(t) for t in args.threads.split(",") if t} or {1, _usable_cpus()})
    concurrency_threads = _default_threads()
    jobs = _jobs(threads, concurrency_threads)
    print(
        f"model {Path(_model()).name}; n_threads {threads} (concurrency at "
        f"{concurrency_threads}); flash attention {args.flash_attn} on every side; "
        f"{args.repeats} repeats on {_usable_cpus()} CPUs",
        file=sys.stderr,
    )
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {job: [] for job in jobs}
    for repeat in range(args.repeats):
        # Interleaved, and rotated so no mode always follows the same neighbour.
        shift = repeat % len(jobs)
        for mode, count in jobs[shift:] + jobs[:shift]:
            runs[mode, count].append(_spawn(mode, count, flash_attn))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for count in threads:
        rows += _stream_rows(count, runs)
    conc, seq = (
        runs["sipp-concurrent", concurrency_threads],
        runs["high-level-sequential", concurrency_threads],
    )
    matches = [
        float(sum(a == b for a, b in zip(c["texts"], q["texts"], strict=True)))
        for c, q in zip(conc, seq, strict=True)
    ]
    rows += [
        _row("event-loop lag p99 ms", concurrency_threads, [r["lag_p99_ms"] for r in conc], "< 10"),
        _row("8 concurrent tokens/s sipp", concurrency_threads, [r["tps"] for r in conc]),
        _row("8 sequential tokens/s high-level", concurrency_threads, [r["tps"] for r in seq]),
        _row(
            "concurrent / sequential",
            concurrency_threads,
            [c["tps"] / q["tps"] for c, q in zip(conc, seq, strict=True)],
            ">= 2.0",
        ),
        _row("outputs equal to sequential twin (of 8)", concurrency_threads, matches),
    ]
    checks = {str(count): _checks(count, runs) for count in threads}
    checks["tokens in the 8 requests (concurrent, sequential)"] = [
        conc[0]["tokens"],
        seq[0]["tokens"],
    ]
    write(
        "local",
        rows,
        {
            "model": Path(_model()).name,
            "cpus": _usable_cpus(),
            "flash_attn": flash_attn,
            "repeats": args.repeats,
            "load_average": os.getloadavg(),
            "checks": checks,
        },
    )
    print(f"flash attention {args.flash_attn} on every side; load average {os.getloadavg()}")
    for key, value in checks.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
