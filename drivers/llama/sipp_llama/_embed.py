"""Embeddings on the worker thread, between two turns of text generation.

The context has ``n_seq_embed`` extra sequences reserved for embeddings;
embedding mode is switched on only for the decode that computes vectors, so
text requests on the same model keep their logits. A call with many inputs
decodes them together: each decode takes as many inputs as there are
embedding sequences and ``n_batch`` has room for, one sequence each
(sequences never attend to each other, so a vector is the same as when its
input is embedded alone). One such group runs per turn, so a long list of
inputs does not stall the text streams.

Pooling: llama.cpp pools per micro-batch, and with one cache stream per
sequence it splits a batch into micro-batches holding equally many tokens of
each sequence, so inputs of different lengths would be pooled in pieces. For
generative models (which declare no pooling) the driver therefore takes the
mean of the token states itself. Embedding models that declare their own
pooling (often non-causal encoders, which need a whole input in one
micro-batch) decode together only inputs of the same token count.
"""

from __future__ import annotations

import math

import llama_cpp as ll

from sipp import InvalidRequestError, LocalModelError, SippError, Usage
from sipp.driver import EmbeddingResult

from ._native import NativeModel
from ._sequence import EmbedJob

__all__ = ["embed_step"]

_POOLING_NAMES = {
    ll.LLAMA_POOLING_TYPE_MEAN: "mean",
    ll.LLAMA_POOLING_TYPE_CLS: "cls",
    ll.LLAMA_POOLING_TYPE_LAST: "last",
}


def embed_step(model: NativeModel, job: EmbedJob) -> bool:
    """Embed the job's next group of inputs; finish its mailbox when all are done.

    Returns whether the job is over (done, failed or cancelled).
    """
    if job.cancelled:
        job.mailbox.finish(error=LocalModelError("cancelled"))
        return True
    try:
        if job.tokens is None:
            job.tokens = [_tokens(model, text, index, job) for index, text in enumerate(job.inputs)]
        _embed_group(model, job)
    except SippError as exc:
        job.mailbox.finish(error=exc)
        return True
    if len(job.vectors) < len(job.inputs):
        return False
    total = sum(len(tokens) for tokens in job.tokens)
    usage = Usage(input_tokens=total, total_tokens=total)
    pooling = "mean" if model.pools_itself else _POOLING_NAMES.get(model.pooling(), "model")
    normalized = all(norm > 0 for norm in job.norms)
    if job.single:
        result = EmbeddingResult(
            values=job.vectors[0], usage=usage, pooling=pooling, normalized=normalized
        )
    else:
        result = EmbeddingResult(
            vectors=job.vectors, usage=usage, pooling=pooling, normalized=normalized
        )
    job.mailbox.finish(result=result)
    return True


def _tokens(model: NativeModel, text: str, index: int, job: EmbedJob) -> list[int]:
    field = "input" if job.single else f"input[{index}]"
    tokens = model.tokenize(text, add_special=True)
    if not tokens:
        raise InvalidRequestError("the input is empty", field=field)
    if len(tokens) > model.n_batch:
        raise InvalidRequestError(
            f"the input is {len(tokens)} tokens; embeddings take at most "
            f"{model.n_batch} (raise n_batch)",
            field=field,
        )
    return tokens


def _embed_group(model: NativeModel, job: EmbedJob) -> None:
    assert job.tokens is not None
    first = len(job.vectors)
    group: list[list[int]] = []
    room = model.n_batch
    for tokens in job.tokens[first : first + len(model.embed_seqs)]:
        if group and len(tokens) > room:
            break
        if group and not model.pools_itself and len(tokens) != len(group[0]):
            break
        group.append(tokens)
        room -= len(tokens)
    size = sum(len(tokens) for tokens in group)
    batch = ll.llama_batch_init(size, 0, 1)
    context = model.context
    seqs = model.embed_seqs[: len(group)]
    try:
        count = 0
        for seq, tokens in zip(seqs, group, strict=True):
            for position, token in enumerate(tokens):
                batch.token[count] = token
                batch.pos[count] = position
                batch.n_seq_id[count] = 1
                batch.seq_id[count][0] = seq
                batch.logits[count] = True
                count += 1
        batch.n_tokens = count
        ll.llama_set_embeddings(context, True)
        status = ll.llama_decode(context, batch)
        if status != 0:
            raise LocalModelError(f"llama_decode failed with status {status} while embedding")
        offset = 0
        for seq, tokens in zip(seqs, group, strict=True):
            values = _pooled(model, seq, offset, len(tokens))
            offset += len(tokens)
            norm = math.sqrt(math.fsum(x * x for x in values))
            if norm > 0:
                values = [x / norm for x in values]
            job.vectors.append(values)
            job.norms.append(norm)
    finally:
        ll.llama_set_embeddings(context, False)
        for seq in seqs:
            model.forget(seq, 0)
        ll.llama_batch_free(batch)


def _pooled(model: NativeModel, seq: int, offset: int, count: int) -> list[float]:
    """The vector of one input: llama.cpp's pooled one, or the mean of its token states."""
    context = model.context
    width = model.n_embd
    if not model.pools_itself:
        pointer = ll.llama_get_embeddings_seq(context, seq)
        if not pointer:
            raise LocalModelError("the model produced no pooled embedding")
        return [float(x) for x in pointer[:width]]
    sums = [0.0] * width
    for index in range(offset, offset + count):
        pointer = ll.llama_get_embeddings_ith(context, index)
        if not pointer:
            raise LocalModelError("the model produced no token embedding")
        sums = [a + b for a, b in zip(sums, pointer[:width], strict=True)]
    return [x / count for x in sums]
