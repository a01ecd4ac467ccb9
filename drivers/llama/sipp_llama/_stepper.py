"""Continuous batching: one ``llama_decode`` per turn over every running request.

Worker-thread only. A turn puts one token per generating request in the
batch, then fills what room is left (at most ``prompt_chunk`` tokens) with
prompt tokens of requests still reading their prompt, oldest first. After the
decode, each request that got logits samples its next token with its own
sampler chain.
"""

from __future__ import annotations

import time
from typing import Final

import llama_cpp as ll

from sipp import InvalidRequestError, LocalModelError, SippError, Usage
from sipp.driver import TextResult

from ._native import NativeModel
from ._sequence import TextJob, build_sampler
from ._slots import SlotTable, common_prefix
from ._types import LocalStats

__all__ = ["Stepper"]

#: How long one turn may spend on prompt tokens while other requests stream:
#: it bounds how long the streams wait behind a long prompt. Chunks are sized
#: from the measured cost of a token, which differs a hundredfold between
#: models and machines. With no stream waiting, a turn takes a whole n_batch
#: of prompt (small batches decode up to twice slower per token on CPUs) and a
#: cancel interrupts the decode itself through llama.cpp's abort callback.
TURN_WITH_STREAMS: Final = 0.1
MIN_PROMPT_CHUNK: Final = 16
_ABORTED: Final = 2
_NO_ABORT: Final = ll.ggml_abort_callback(0)


def _cancelled() -> LocalModelError:
    # Nobody reads it: the caller who cancelled is gone. It only ends the mailbox.
    return LocalModelError("cancelled")


class Stepper:
    def __init__(self, model: NativeModel, slots: SlotTable) -> None:
        self.model = model
        self.slots = slots
        self._context = model.context
        self._batch = ll.llama_batch_init(model.n_batch, 0, 1)
        #: Running estimate of the seconds one batched token costs.
        self._token_cost = 0.005
        self._prompt_jobs: list[TextJob] = []
        self._abort = ll.ggml_abort_callback(self._should_abort)

    def _should_abort(self, user_data: object) -> bool:
        # Called by llama.cpp between graph nodes, only during prompt-only decodes.
        return any(job.cancelled for job in self._prompt_jobs)

    @property
    def busy(self) -> bool:
        return any(slot.job is not None for slot in self.slots.slots)

    # -- admission -----------------------------------------------------------------

    def reserve(self, job: TextJob) -> None:
        slot = self.slots.choose(job.context_key)
        assert slot is not None, "reserve() is only called when a slot is free"
        slot.job = job
        job.slot = slot.seq

    def start(self, job: TextJob) -> None:
        """Tokenize, reuse the slot's cached prefix, build the sampler; fail the job on error."""
        slot = self.slots.slots[job.slot]
        model = self.model
        try:
            prompt = model.tokenize(job.prompt_text, add_special=job.add_special)
            if not prompt:
                raise InvalidRequestError("the prompt is empty", field="prompt")
            if len(prompt) >= model.n_ctx_seq:
                raise InvalidRequestError(
                    f"the prompt is {len(prompt)} tokens; the context holds "
                    f"{model.n_ctx_seq} per request (raise n_ctx)",
                    field="prompt",
                )
            job.sampler = build_sampler(model, job.sampling)
        except SippError as exc:
            self._release(job, keep=False)
            job.mailbox.finish(error=exc)
            return
        reuse = 0
        if job.context_key is not None and slot.key == job.context_key:
            # At least one prompt token must be decoded again to get logits to sample from.
            reuse = min(common_prefix(slot.cached, prompt), len(prompt) - 1)
        if not model.forget(slot.seq, reuse):
            model.forget(slot.seq, 0)
            reuse = 0
        job.prompt = prompt
        job.tokens = list(prompt)
        job.n_past = reuse
        job.cached_prefix = reuse

    # -- one turn -----------------------------------------------------------------

    def step(self) -> None:
        jobs = self.slots.active()
        for job in jobs:
            if job.cancelled:
                self._finish(job, error=_cancelled())
        jobs = [job for job in self.slots.active() if job.sampler is not None]
        if not jobs:
            return
        batch = self._batch
        outputs: list[tuple[TextJob, int]] = []
        count = 0
        for job in jobs:
            if not job.in_prompt:
                self._add(count, job.tokens[job.n_past], job.n_past, job.slot, True)
                outputs.append((job, count))
                job.n_past += 1
                count += 1
        streams = count
        room = self.model.n_batch - count
        if streams:
            room = min(room, max(MIN_PROMPT_CHUNK, int(TURN_WITH_STREAMS / self._token_cost)))
        rollback: list[tuple[TextJob, int]] = []
        now = time.perf_counter()
        for job in sorted((job for job in jobs if job.in_prompt), key=_admission_order):
            if room <= 0:
                break
            if job.decode_started is None:
                job.decode_started = now
            take = min(room, len(job.prompt) - job.n_past)
            rollback.append((job, job.n_past))
            for offset in range(take):
                position = job.n_past + offset
                last = position == len(job.prompt) - 1
                self._add(count, job.prompt[position], position, job.slot, last)
                if last:
                    outputs.append((job, count))
                count += 1
            job.n_past += take
            room -= take
        batch.n_tokens = count
        started = time.perf_counter()
        if streams:
            status = ll.llama_decode(self._context, batch)
        else:
            self._prompt_jobs = [job for job, _ in rollback]
            ll.llama_set_abort_callback(self._context, self._abort, None)
            try:
                status = ll.llama_decode(self._context, batch)
            finally:
                ll.llama_set_abort_callback(self._context, _NO_ABORT, None)
                self._prompt_jobs = []
        if count >= MIN_PROMPT_CHUNK:
            cost = (time.perf_counter() - started) / count
            self._token_cost += 0.3 * (cost - self._token_cost)
        if status == _ABORTED:
            # llama.cpp removed the chunk from the cache; the jobs not cancelled redo it.
            for job, n_past in rollback:
                job.n_past = n_past
            return
        if status != 0:
            error = LocalModelError(f"llama_decode failed with status {status}")
            for job in jobs:
                self._finish(job, error=error, keep=False)
            return
        for job, index in outputs:
            token = self._forced(job)
            if token is None:
                token = ll.llama_sampler_sample(job.sampler, self._context, index)
            self._accept(job, token)

    def _forced(self, job: TextJob) -> int | None:
        """The next token the loop asked for (ending a reasoning block), if any."""
        text = job.close_reasoning
        if text is not None:
            job.close_reasoning = None
            # Under a grammar a forced token could break the grammar's state; those
            # requests never get a budget (the driver checks), this is a backstop.
            if job.sampling.grammar is None:
                job.forced = self.model.tokenize(text, add_special=False)
        if not job.in_prompt and job.forced:
            token = job.forced.pop(0)
            # The sampler chain (repeat penalty) must see the token as if sampled.
            ll.llama_sampler_accept(job.sampler, token)
            return token
        return None

    def _add(self, index: int, token: int, position: int, seq: int, logits: bool) -> None:
        batch = self._batch
        batch.token[index] = token
        batch.pos[index] = position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = seq
        batch.logits[index] = logits

    def _accept(self, job: TextJob, token: int) -> None:
        if job.first_token_at is None:
            job.first_token_at = time.perf_counter()
        model = self.model
        if model.is_end(token):
            self._finish(job, reason="stop")
            return
        job.generated += 1
        job.unsent_frames += 1
        text = job.assembler.feed(model.piece(token))
        if text:
            job.mailbox.put(text, job.unsent_frames)
            job.unsent_frames = 0
        else:
            # Text held for the stream interval must not wait for the next text.
            job.mailbox.flush()
        if job.assembler.stopped:
            self._finish(job, reason="stop")
        elif job.n_past >= model.n_ctx_seq or (
            job.max_tokens is not None and job.generated >= job.max_tokens
        ):
            self._finish(job, reason="length")
        else:
            job.tokens.append(token)

    # -- the end of a request ------------------------------------------------------------

    def _finish(
        self,
        job: TextJob,
        *,
        reason: str = "stop",
        error: BaseException | None = None,
        keep: bool = True,
    ) -> None:
        self._release(job, keep=keep)
        if error is not None:
            job.mailbox.finish(error=error)
            return
        tail = job.assembler.finish()
        if tail:
            job.mailbox.put(tail, job.unsent_frames)
        job.mailbox.finish(result=_result(job, reason))

    def _release(self, job: TextJob, *, keep: bool) -> None:
        if job.sampler is not None:
            ll.llama_sampler_free(job.sampler)
            job.sampler = None
        slot = self.slots.slots[job.slot]
        if keep:
            # Whatever reached the cache stays there for the next request with this key.
            self.slots.release(slot, job.context_key, job.tokens[: job.n_past])
        else:
            self.model.forget(slot.seq, 0)
            self.slots.release(slot, None, [])

    def close(self, error: BaseException) -> None:
        for job in self.slots.active():
            self._finish(job, error=error, keep=False)
        ll.llama_batch_free(self._batch)


def _admission_order(job: TextJob) -> float:
    return job.admitted_at or 0.0


def _result(job: TextJob, reason: str) -> TextResult:
    end = time.perf_counter()
    started = job.decode_started or job.admitted_at or job.submitted_at
    first = job.first_token_at or end
    decode_seconds = end - first
    tokens_per_second = (
        (job.generated - 1) / decode_seconds if job.generated > 1 and decode_seconds > 0 else None
    )
    prompt_tokens = len(job.prompt)
    return TextResult(
        finish_reason="length" if reason == "length" else "stop",
        usage=Usage(
            input_tokens=prompt_tokens,
            output_tokens=job.generated,
            total_tokens=prompt_tokens + job.generated,
        ),
        queue_wait=(job.admitted_at or job.submitted_at) - job.submitted_at,
        stats=LocalStats(
            prompt_tokens=prompt_tokens,
            generated_tokens=job.generated,
            cached_prefix_tokens=job.cached_prefix,
            prompt_seconds=first - started,
            decode_seconds=decode_seconds,
            time_to_first_token=first - job.submitted_at,
            tokens_per_second=tokens_per_second,
        ),
    )
