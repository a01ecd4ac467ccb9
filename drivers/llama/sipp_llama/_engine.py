"""The worker thread of one local endpoint: load, then schedule requests by continuous batching.

One dedicated thread per endpoint loads the model and runs every decode: a
llama.cpp context is not thread-safe, and llama.cpp decodes markedly slower
on a thread other than the one that first drove it. The event loop talks to
the thread through a condition-guarded FIFO (admission) and per-request
mailboxes (results); it never waits on the thread except in ``aclose``.

Each turn of the loop is one ``llama_decode`` over a batch mixing every
running request: one token for each request that is generating, then up to
``prompt_chunk`` prompt tokens of requests still reading their prompt (oldest
first). So streams advance together, a long prompt neither starves them nor
delays a cancel by more than one chunk, and a cancel or a new request is
noticed between two turns. See ``docs/local-driver.md``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from pathlib import Path

import anyio

from sipp import LocalModelError, SippError

from ._chat import ChatTemplate
from ._embed import embed_step
from ._handoff import Mailbox
from ._native import NativeModel, load_native_model
from ._sequence import EmbedJob, TextJob
from ._slots import SlotTable
from ._stepper import Stepper
from ._types import LocalDescriptor

__all__ = ["Engine", "ModelInfo"]

Job = TextJob | EmbedJob


class ModelInfo:
    """What the loop needs to know about the loaded model."""

    def __init__(self, model: NativeModel) -> None:
        template = model.chat_template()
        self.chat = (
            ChatTemplate(template, bos_token=model.bos_text(), eos_token=model.eos_text())
            if template
            else None
        )
        self.n_ctx_seq = model.n_ctx_seq
        self.n_embd = model.n_embd


class Engine:
    """Owns the worker thread; every public method is called from the event loop."""

    def __init__(self, descriptor: LocalDescriptor, name: str, *, show_progress: bool) -> None:
        self._descriptor = descriptor
        self._name = name
        self._show_progress = show_progress
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._closing = False
        self._loaded: Mailbox[ModelInfo] = Mailbox()
        self._shown_percent = -10
        #: The embedding call in progress (worker only): one group of inputs per turn.
        self._embedding: EmbedJob | None = None
        self._thread = threading.Thread(target=self._main, name=f"sipp-local {name}", daemon=True)

    # -- the loop's side --------------------------------------------------------------

    async def start(self) -> ModelInfo:
        """Start the thread and wait until the model is loaded (or failed to load)."""
        self._thread.start()
        try:
            finished = False
            while not finished:
                _, _, finished = await self._loaded.take()
            return self._loaded.outcome()
        except BaseException:
            # Cancelled, or the load failed: nothing of this endpoint may stay behind.
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise LocalModelError(f"local endpoint {self._name!r} is closed")
            limit = self._descriptor.max_queue
            if len(self._pending) >= limit:
                raise LocalModelError(
                    f"local endpoint {self._name!r} has {limit} requests waiting "
                    "(max_queue); try again later or raise max_queue"
                )
            self._pending.append(job)
            self._cond.notify()

    def withdraw(self, job: Job) -> None:
        """The caller is gone: drop a waiting job, or tell the worker to stop a running one."""
        job.cancel()
        with self._cond:
            with contextlib.suppress(ValueError):
                self._pending.remove(job)
            self._cond.notify()

    async def aclose(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.ident is not None:
            await anyio.to_thread.run_sync(self._thread.join)

    # -- the worker thread --------------------------------------------------------------

    def _progress(self, fraction: float) -> bool:
        percent = int(fraction * 100)
        if self._show_progress and percent // 10 != self._shown_percent // 10:
            self._shown_percent = percent
            label = Path(self._descriptor.source).name
            end = "\n" if percent >= 100 else ""
            sys.stderr.write(f"\rloading {label}: {percent:3d}%{end}")
            sys.stderr.flush()
        return not self._closing

    def _main(self) -> None:
        try:
            model = load_native_model(self._descriptor, self._progress)
        except SippError as exc:
            self._loaded.finish(error=exc)
            return
        except Exception as exc:  # llama.cpp's Python layer raises bare errors
            error = LocalModelError(f"loading {self._descriptor.source!r} failed: {exc!r}")
            error.__cause__ = exc
            self._loaded.finish(error=error)
            return
        stepper: Stepper | None = None
        try:
            info = ModelInfo(model)
            stepper = Stepper(model, SlotTable(self._descriptor.n_parallel))
            self._loaded.finish(result=info)
            self._serve(model, stepper)
        except BaseException as exc:
            self._loaded.finish(error=exc)
            raise
        finally:
            closed = LocalModelError(f"local endpoint {self._name!r} is closed")
            with self._cond:
                self._closing = True
                leftovers = list(self._pending)
                self._pending.clear()
            if self._embedding is not None:
                leftovers.append(self._embedding)
                self._embedding = None
            for job in leftovers:
                job.mailbox.finish(error=closed)
            if stepper is not None:
                stepper.close(closed)
            model.close()

    def _serve(self, model: NativeModel, stepper: Stepper) -> None:
        while True:
            with self._cond:
                while (
                    not self._closing
                    and not self._pending
                    and not stepper.busy
                    and self._embedding is None
                ):
                    self._cond.wait()
                if self._closing:
                    return
                admitted = self._admit(stepper)
            for job in admitted:
                stepper.start(job)
            embedding = self._embedding
            if embedding is not None and embed_step(model, embedding):
                self._embedding = None
            if stepper.busy:
                stepper.step()

    def _admit(self, stepper: Stepper) -> list[TextJob]:
        """Take jobs off the FIFO while there is room (the condition's lock is held)."""
        admitted: list[TextJob] = []
        pending = self._pending
        while pending:
            head = pending[0]
            if head.cancelled:
                pending.popleft()
                head.mailbox.finish(error=LocalModelError("cancelled"))
            elif isinstance(head, EmbedJob):
                # One embedding call at a time, and never ahead of text jobs queued before it.
                if self._embedding is not None:
                    break
                head.admitted_at = time.perf_counter()
                self._embedding = head
                pending.popleft()
            elif stepper.slots.has_free:
                pending.popleft()
                head.admitted_at = time.perf_counter()
                stepper.reserve(head)
                admitted.append(head)
            else:
                break
        return admitted
