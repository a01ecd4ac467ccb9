"""The blocking client: the same calls without ``await``, for scripts, notebooks and threads.

Runs with no model and no key (the deterministic ``scripted`` endpoint);
swap the descriptor for ``{"kind": "local", "source": "model.gguf"}`` or a
provider and nothing else changes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sipp import RunCancelled, SyncClient


def main() -> None:
    # One background event loop thread for this client; closed with the `with` block.
    with SyncClient() as client:
        client.add(
            "bot",
            {"kind": "scripted", "reply": "Blocking calls, streamed tokens.", "token_delay": 0.02},
        )

        # 1. just the answer
        print(client.query("Hello").response().text)

        # 2. streaming: token batches as a plain iterator, then the response
        run = client.chat([{"role": "user", "content": "Hi"}], emit_tokens=True)
        for batch in run.tokens:
            print(batch.text, end="", flush=True)
        print(" |", run.response().finish_reason)

        # 3. cancel from another thread (Ctrl-C in the waiting thread does the same,
        #    with reason "caller_cancelled", and then raises KeyboardInterrupt)
        run = client.query("Write a novel.", emit_tokens=True)
        threading.Timer(0.05, run.cancel, args=("user_pressed_stop",)).start()
        try:
            run.response()
        except RunCancelled as cancelled:
            print("cancelled:", cancelled.reason)

        # 4. many threads share one client
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: client.query(f"q{i}").response().text, range(8)))
        print("answers from 8 threads:", len(answers))


if __name__ == "__main__":
    main()
