"""Local driver benchmark: Sipp's ``local`` endpoint against llama-cpp-python called directly.

What it measures, all in one run, on the test model (or ``SIPP_TEST_MODEL``):

* single-stream decode tokens/s (256 tokens, greedy), from the first token to
  the last, through Sipp, through llama-cpp-python's high-level streaming API
  (``Llama.create_completion(stream=True)``), and through a bare low-level
  decode loop (the floor). Each runs in its own clean subprocess, because
  llama.cpp decodes slower on a thread of a process where another thread
  already drove it;
* event-loop lag p99 while Sipp generates (a 5 ms ticker on the same loop);
* 8 concurrent requests on one Sipp endpoint (continuous batching) against
  the same 8 run one after another through the high-level API: aggregate
  tokens/s, and how many outputs equal their sequential twin under greedy
  sampling.

Every figure is a ratio against a baseline measured in the same run; each
measurement repeats (``--repeats``, interleaved so load from other processes
spreads over all of them) and the table shows median and spread (min..max).
Results go to ``benchmarks/results/local.json``.

    python benchmarks/bench_local.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROMPT = "The history of the city of Paris begins"
TOKENS = 256
# Raw completion prompts that keep this small model talking for all 64 tokens
# (an instruction ending in "." makes it stop at once under greedy sampling).
CONCURRENT_PROMPTS = [
    f"Here is a short story about the number {n}. Once upon a time" for n in range(8)
]
CONCURRENT_TOKENS = 64
RESULTS = Path(__file__).parent / "results" / "local.json"


def _model() -> str:
    from sipp_llama.testing import test_model_path

    return str(test_model_path())


def _threads(requested: int) -> int:
    if requested:
        return requested
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


def _llama(threads: int) -> Any:
    _patch_extra_buffers()
    from llama_cpp import Llama

    # flash_attn=True: llama.cpp's own default (auto) turns it on for this CPU,
    # as the driver and the bare loop get it; llama-cpp-python turns it off.
    # Without it the greedy texts differ from the first tokens on, by kernel.
    return Llama(
        _model(),
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=_batch_threads(),
        flash_attn=True,
        verbose=False,
    )


def run_highlevel(threads: int) -> dict[str, Any]:
    llm = _llama(threads)
    stamps = []
    for _ in llm.create_completion(PROMPT, max_tokens=TOKENS, temperature=0, stream=True):
        stamps.append(time.perf_counter())
    return {"tokens": len(stamps), "tps": (len(stamps) - 1) / (stamps[-1] - stamps[0])}


def run_highlevel_sequential(threads: int) -> dict[str, Any]:
    llm = _llama(threads)
    texts, tokens = [], 0
    started = time.perf_counter()
    for prompt in CONCURRENT_PROMPTS:
        out: Any = llm.create_completion(prompt, max_tokens=CONCURRENT_TOKENS, temperature=0)
        texts.append(out["choices"][0]["text"])
        tokens += out["usage"]["completion_tokens"]
    elapsed = time.perf_counter() - started
    return {"tokens": tokens, "tps": tokens / elapsed, "texts": texts}


def run_bare(threads: int) -> dict[str, Any]:
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
    stamps, index, pos = [], n - 1, n
    for _ in range(TOKENS):
        token = ll.llama_sampler_sample(chain, ctx, index)
        stamps.append(time.perf_counter())
        if ll.llama_vocab_is_eog(vocab, token):
            break
        batch.token[0], batch.pos[0], batch.seq_id[0][0], batch.logits[0] = token, pos, 0, True
        batch.n_tokens, index, pos = 1, 0, pos + 1
        ll.llama_decode(ctx, batch)
    return {"tokens": len(stamps), "tps": (len(stamps) - 1) / (stamps[-1] - stamps[0])}


def run_sipp(threads: int) -> dict[str, Any]:
    import anyio

    from sipp import SippClient

    async def main() -> dict[str, Any]:
        descriptor = {
            "kind": "local",
            "source": _model(),
            "n_threads": threads,
            "n_threads_batch": _batch_threads(),
            "n_parallel": 8,
        }
        lags: list[float] = []
        async with SippClient() as client:
            model = await client.add("bench", descriptor)

            async def ticker() -> None:
                while True:
                    before = anyio.current_time()
                    await anyio.sleep(0.005)
                    lags.append(anyio.current_time() - before - 0.005)

            # Throughput alone first: the ticker's own wake-ups cost CPU on a 2-CPU box.
            stamps = []
            run = client.query(
                PROMPT, endpoint=model, max_tokens=TOKENS, temperature=0, emit_tokens=True
            )
            async for batch in run.tokens:
                stamps.extend([time.perf_counter()] * batch.frame_count)
            response = await run
            async with anyio.create_task_group() as group:
                group.start_soon(ticker)
                run = client.query(PROMPT, endpoint=model, max_tokens=128, emit_tokens=True)
                async for _ in run.tokens:
                    pass
                group.cancel_scope.cancel()
            tokens = response.usage.output_tokens or 0
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
            "tokens": tokens,
            "tps": (tokens - 1) / (stamps[-1] - stamps[0]),
            "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000,
            "concurrent_tps": total / elapsed,
            "concurrent_tokens": total,
            "concurrent_texts": [texts[i] for i in range(8)],
        }

    return anyio.run(main)


MODES = {
    "highlevel": run_highlevel,
    "highlevel-sequential": run_highlevel_sequential,
    "bare": run_bare,
    "sipp": run_sipp,
}


# -- the orchestrator -----------------------------------------------------------------------


def _spawn(mode: str, threads: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--mode", mode, "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fmt(summary: dict[str, float], unit: str = "") -> str:
    return f"{summary['median']:.2f}{unit} ({summary['min']:.2f}..{summary['max']:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--mode", choices=sorted(MODES))
    args = parser.parse_args()
    threads = _threads(args.threads)
    if args.mode:
        print(json.dumps(MODES[args.mode](threads)))
        return
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for repeat in range(args.repeats):
        for mode in MODES:  # interleaved: a burst of outside load hits every mode alike
            runs[mode].append(_spawn(mode, threads))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    sipp, high, bare, seq = (runs[m] for m in ("sipp", "highlevel", "bare", "highlevel-sequential"))
    ratio_high = [s["tps"] / h["tps"] for s, h in zip(sipp, high, strict=True)]
    ratio_bare = [s["tps"] / b["tps"] for s, b in zip(sipp, bare, strict=True)]
    ratio_conc = [s["concurrent_tps"] / q["tps"] for s, q in zip(sipp, seq, strict=True)]
    matches = [
        sum(a == b for a, b in zip(s["concurrent_texts"], q["texts"], strict=True))
        for s, q in zip(sipp, seq, strict=True)
    ]
    report = {
        "model": Path(_model()).name,
        "threads": threads,
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "tokens/s sipp": _summary([r["tps"] for r in sipp]),
        "tokens/s high-level": _summary([r["tps"] for r in high]),
        "tokens/s bare loop": _summary([r["tps"] for r in bare]),
        "sipp / high-level (target >= 1.0)": _summary(ratio_high),
        "sipp / bare loop (target >= 0.95)": _summary(ratio_bare),
        "event-loop lag p99 ms (target < 10)": _summary([r["lag_p99_ms"] for r in sipp]),
        "8 concurrent tokens/s sipp": _summary([r["concurrent_tps"] for r in sipp]),
        "8 sequential tokens/s high-level": _summary([r["tps"] for r in seq]),
        "concurrent / sequential (target >= 2.0)": _summary(ratio_conc),
        "outputs equal to sequential twin (of 8)": _summary([float(m) for m in matches]),
        "tokens generated (sipp, high-level, bare)": [
            sipp[0]["tokens"],
            high[0]["tokens"],
            bare[0]["tokens"],
        ],
        "tokens in the 8 requests (concurrent, sequential)": [
            sipp[0]["concurrent_tokens"],
            seq[0]["tokens"],
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"model {report['model']}, {threads} thread(s), {args.repeats} repeats")
    print(f"{'measure':45} median (min..max)")
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{key:45} {_fmt(value)}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
