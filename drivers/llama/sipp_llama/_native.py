"""The loaded model: llama.cpp's model, context and vocabulary behind a small typed API.

Everything here runs on the endpoint's own worker thread (see ``_engine``): a
llama.cpp context is not thread-safe, and decoding on the thread that loaded
the model avoids the slowdown llama.cpp shows on a thread of a process where
another thread already drove it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import llama_cpp as ll

from sipp import LocalModelError

from ._types import LocalDescriptor

__all__ = ["DEFAULT_N_BATCH", "DEFAULT_N_CTX", "NativeModel", "load_native_model"]

#: Tokens per request when the descriptor leaves ``n_ctx`` unset (capped by the model's own).
DEFAULT_N_CTX: Final = 2048
DEFAULT_N_BATCH: Final = 512
_GGUF_MAGIC: Final = b"GGUF"
_PIECE_BUFFER: Final = 128

# llama.cpp logs through one process-wide callback; keep it quiet unless an
# endpoint asked for ``verbose`` (ctypes callbacks must stay referenced).
_verbose_endpoints = 0
_log_lock = threading.Lock()


@ll.llama_log_callback  # type: ignore[untyped-decorator]
def _log_to_stderr(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    # ggml's level 4 is an error; the rest is chatter unless an endpoint asked for it.
    if _verbose_endpoints > 0 or level == 4:
        sys.stderr.write(text.decode("utf-8", errors="replace"))


def _set_verbose(delta: int) -> None:
    global _verbose_endpoints
    with _log_lock:
        _verbose_endpoints += delta
        ll.llama_log_set(_log_to_stderr, ctypes.c_void_p(0))


def _default_threads() -> int:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    # Half the usable CPUs, as llama-cpp-python does: hyperthreads rarely help, and
    # llama.cpp's threads wait for each other at every layer, so one thread
    # descheduled by other load stalls them all (2 threads on a busy 2-CPU box
    # decode several times slower than 1). Past 8, decoding is bound by memory.
    return max(1, min(usable // 2, 8))


def _default_batch_threads() -> int:
    # Every usable CPU for batches (prompts, and the decode steps of several
    # requests at once), as llama-cpp-python does: a batch is compute-bound and
    # long enough for all threads to pay off; single-token steps keep half.
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, 16))


def _use_extra_buffers() -> bool:
    # llama.cpp repacks weights into "extra" buffer types, among them Intel AMX
    # tiles. Some virtual machines report AMX yet fault on its instructions
    # (SIGILL, killing the process), so AMX machines need an explicit opt-in.
    setting = os.environ.get("SIPP_LLAMA_EXTRA_BUFFERS")
    if setting is not None:
        return setting not in ("", "0", "false", "no")
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            return " amx_tile" not in info.read()
    except OSError:
        return True


class NativeModel:
    """A model and one context with ``n_seq`` sequences; owned by one thread."""

    def __init__(
        self,
        model: Any,
        context: Any,
        descriptor: LocalDescriptor,
        *,
        n_ctx_seq: int,
        n_batch: int,
        n_seq: int,
    ) -> None:
        self.model = model
        self.context = context
        self.vocab = ll.llama_model_get_vocab(model)
        self.memory = ll.llama_get_memory(context)
        self.descriptor = descriptor
        self.n_ctx_seq = n_ctx_seq
        self.n_batch = n_batch
        self.n_seq = n_seq
        self.n_vocab: int = ll.llama_vocab_n_tokens(self.vocab)
        self.n_embd: int = ll.llama_model_n_embd(model)
        self.add_bos: bool = ll.llama_vocab_get_add_bos(self.vocab)
        #: The sequences reserved for embeddings (after the text ones).
        self.embed_seqs = list(range(descriptor.n_parallel, n_seq))
        self._piece = ctypes.create_string_buffer(_PIECE_BUFFER)
        self._pieces: dict[int, bytes] = {}
        self._verbose = descriptor.verbose
        if self._verbose:
            _set_verbose(1)

    # -- text <-> tokens ---------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (ll.llama_token * capacity)()
        count = ll.llama_tokenize(self.vocab, data, len(data), buffer, capacity, add_special, True)
        if count < 0:  # the buffer was too small; llama.cpp says how large it must be
            capacity = -count
            buffer = (ll.llama_token * capacity)()
            count = ll.llama_tokenize(
                self.vocab, data, len(data), buffer, capacity, add_special, True
            )
        return list(buffer[:count])

    def piece(self, token: int) -> bytes:
        """The bytes of one token (control tokens render as nothing); cached per token."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        size = ll.llama_token_to_piece(self.vocab, token, self._piece, _PIECE_BUFFER, 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = ll.llama_token_to_piece(self.vocab, token, buffer, -size, 0, False)
            data = buffer.raw[:size]
        else:
            data = self._piece.raw[:size]
        self._pieces[token] = data
        return data

    def special_text(self, token: int) -> str:
        """A special token as the chat template spells it (``<|im_end|>``), or ``""``."""
        if token < 0:
            return ""
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER)
        size = ll.llama_token_to_piece(self.vocab, token, buffer, _PIECE_BUFFER, 0, True)
        return buffer.raw[: max(size, 0)].decode("utf-8", errors="replace")

    def is_end(self, token: int) -> bool:
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    # -- metadata --------------------------------------------------------------------

    def chat_template(self) -> str | None:
        """The template to render chats with: the descriptor's override, else the GGUF's."""
        override = self.descriptor.chat_template
        if override is not None:
            return override or None  # "" switches chat off
        raw = ll.llama_model_chat_template(self.model, None)
        return raw.decode("utf-8") if raw else None

    def bos_text(self) -> str:
        return self.special_text(ll.llama_vocab_bos(self.vocab))

    def eos_text(self) -> str:
        return self.special_text(ll.llama_vocab_eos(self.vocab))

    def pooling(self) -> int:
        return int(ll.llama_pooling_type(self.context))

    @property
    def pools_itself(self) -> bool:
        """Whether embeddings are token states the driver averages (no pooling in llama.cpp)."""
        return self.pooling() == ll.LLAMA_POOLING_TYPE_NONE

    # -- the KV cache --------------------------------------------------------------

    def forget(self, seq: int, start: int = 0) -> bool:
        """Drop sequence ``seq`` from position ``start`` on; False if the cache cannot."""
        return bool(ll.llama_memory_seq_rm(self.memory, seq, start, -1))

    def close(self) -> None:
        if self.context is not None:
            ll.llama_free(self.context)
            self.context = None
        if self.model is not None:
            ll.llama_model_free(self.model)
            self.model = None
        if self._verbose:
            self._verbose = False
            _set_verbose(-1)


def _check_file(source: str) -> Path:
    path = Path(source).expanduser()
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except FileNotFoundError:
        raise LocalModelError(f"model file not found: {source!r}") from None
    except OSError as exc:
        raise LocalModelError(f"cannot read model file {source!r}: {exc}") from exc
    if magic != _GGUF_MAGIC:
        raise LocalModelError(
            f"{source!r} is not a GGUF model file (it does not start with 'GGUF'); "
            "point `source` at a .gguf file"
        )
    return path


def load_native_model(
    descriptor: LocalDescriptor,
    progress: Callable[[float], bool] | None,
) -> NativeModel:
    """Load the model and build its context (blocking; call on the worker thread).

    ``progress`` receives the load fraction and returns False to abort the load.
    """
    path = _check_file(descriptor.source)
    _set_verbose(0)
    ll.llama_backend_init()
    model_params = ll.llama_model_default_params()
    model_params.n_gpu_layers = descriptor.n_gpu_layers
    model_params.use_extra_bufts = _use_extra_buffers()
    callback = None
    if progress is not None:

        def on_progress(fraction: float, user_data: ctypes.c_void_p) -> bool:
            return progress(fraction)

        callback = ll.llama_progress_callback(on_progress)
        model_params.progress_callback = callback
    model = ll.llama_model_load_from_file(str(path).encode(), model_params)
    if not model:
        raise LocalModelError(
            f"llama.cpp could not load {descriptor.source!r} (a damaged or unsupported "
            "GGUF file, or the load was cancelled); run with verbose=True for its log"
        )
    try:
        return _open_context(model, descriptor)
    except BaseException:
        ll.llama_model_free(model)
        raise


def _has_pooling(model: Any) -> bool:
    buffer = ctypes.create_string_buffer(64)
    size = ll.llama_model_meta_val_str(model, b"general.architecture", buffer, 64)
    if size <= 0:
        return False
    key = buffer.value + b".pooling_type"
    return int(ll.llama_model_meta_val_str(model, key, buffer, 64)) > 0


def _open_context(model: Any, descriptor: LocalDescriptor) -> NativeModel:
    train_ctx = int(ll.llama_model_n_ctx_train(model)) or DEFAULT_N_CTX
    n_ctx_seq = descriptor.n_ctx or min(DEFAULT_N_CTX, train_ctx)
    n_parallel = descriptor.n_parallel
    # Embeddings get a sequence of their own so they never disturb a running text one.
    n_seq = n_parallel + (descriptor.n_seq_embed if descriptor.embeddings else 0)
    n_batch = descriptor.n_batch or DEFAULT_N_BATCH
    threads = descriptor.n_threads or _default_threads()
    params = ll.llama_context_default_params()
    params.n_ctx = n_ctx_seq * n_seq
    params.n_seq_max = n_seq
    # One cache stream per sequence: n_ctx is what each request may use, and a
    # long request never crowds the others out of the cache.
    params.kv_unified = False
    params.n_batch = n_batch
    # Pooled embeddings need the whole input in one micro-batch.
    params.n_ubatch = n_batch
    params.n_threads = threads
    params.n_threads_batch = descriptor.n_threads_batch or _default_batch_threads()
    params.embeddings = False
    if descriptor.flash_attn is not None:
        params.flash_attn_type = (
            ll.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if descriptor.flash_attn
            else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
    if descriptor.embeddings and not _has_pooling(model):
        # A generative model declares no pooling; the mean of its token states is a
        # usable sentence vector. The driver takes that mean itself (see _embed):
        # llama.cpp pools per micro-batch, and inputs of different lengths decoded
        # together span several. Embedding models keep the pooling they declare.
        params.pooling_type = ll.LLAMA_POOLING_TYPE_NONE
    context = ll.llama_init_from_model(model, params)
    if not context:
        raise LocalModelError(
            f"llama.cpp could not create a context for {descriptor.source!r} "
            f"(n_ctx={n_ctx_seq} x {n_seq} sequences; try a smaller n_ctx or n_parallel)"
        )
    return NativeModel(
        model,
        context,
        descriptor,
        n_ctx_seq=int(ll.llama_n_ctx_seq(context)),
        # llama.cpp clamps the batch to the context size; a larger batch aborts the process.
        n_batch=min(int(ll.llama_n_batch(context)), int(ll.llama_n_ubatch(context))),
        n_seq=n_seq,
    )
