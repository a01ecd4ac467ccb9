"""Embeddings on the worker thread, between two turns of text generation.

The context is created with a pooling type and one extra sequence reserved
for embeddings; embedding mode is switched on only for the one decode that
computes the vector, so text requests on the same model keep their logits.
"""

from __future__ import annotations

import math

import llama_cpp as ll

from sipp import InvalidRequestError, LocalModelError, SippError, Usage
from sipp.driver import EmbeddingResult

from ._native import NativeModel
from ._sequence import EmbedJob

__all__ = ["run_embedding"]

_POOLING_NAMES = {
    ll.LLAMA_POOLING_TYPE_MEAN: "mean",
    ll.LLAMA_POOLING_TYPE_CLS: "cls",
    ll.LLAMA_POOLING_TYPE_LAST: "last",
}


def run_embedding(model: NativeModel, job: EmbedJob) -> None:
    """Compute ``job``'s vector and finish its mailbox (with the result or the error)."""
    if job.cancelled:
        job.mailbox.finish(error=LocalModelError("cancelled"))
        return
    try:
        job.mailbox.finish(result=_embed(model, job.input))
    except SippError as exc:
        job.mailbox.finish(error=exc)


def _embed(model: NativeModel, text: str) -> EmbeddingResult:
    tokens = model.tokenize(text, add_special=True)
    if not tokens:
        raise InvalidRequestError("the input is empty", field="input")
    if len(tokens) > model.n_batch:
        raise InvalidRequestError(
            f"the input is {len(tokens)} tokens; embeddings take at most "
            f"{model.n_batch} (raise n_batch)",
            field="input",
        )
    seq = model.n_seq - 1
    batch = ll.llama_batch_init(len(tokens), 0, 1)
    context = model.context
    try:
        for index, token in enumerate(tokens):
            batch.token[index] = token
            batch.pos[index] = index
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = seq
            batch.logits[index] = True
        batch.n_tokens = len(tokens)
        ll.llama_set_embeddings(context, True)
        status = ll.llama_decode(context, batch)
        if status != 0:
            raise LocalModelError(f"llama_decode failed with status {status} while embedding")
        pointer = ll.llama_get_embeddings_seq(context, seq)
        if not pointer:
            raise LocalModelError("the model produced no pooled embedding")
        values = [float(x) for x in pointer[: model.n_embd]]
    finally:
        ll.llama_set_embeddings(context, False)
        model.forget(seq, 0)
        ll.llama_batch_free(batch)
    norm = math.sqrt(math.fsum(x * x for x in values))
    if norm > 0:
        values = [x / norm for x in values]
    return EmbeddingResult(
        values=values,
        usage=Usage(input_tokens=len(tokens), total_tokens=len(tokens)),
        pooling=_POOLING_NAMES.get(model.pooling(), "model"),
        normalized=norm > 0,
    )
