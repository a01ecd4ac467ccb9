"""Chat prompts through the model's own template (the Jinja text stored in the GGUF).

Templates are the Hugging Face kind: Jinja with ``messages``, ``bos_token``,
``eos_token``, ``add_generation_prompt`` and ``raise_exception``. They run in a
sandbox because a model file is data from wherever the user downloaded it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NoReturn

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sipp import ChatMessage, InvalidRequestError, LocalModelError

__all__ = ["ChatTemplate"]


def _raise_exception(message: str) -> NoReturn:
    raise InvalidRequestError(f"the model's chat template refused the messages: {message}")


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes HTML, which changes the prompt the model was trained on.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class ChatTemplate:
    """A compiled chat template; build once per model, render per request."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str) -> None:
        environment = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[jinja2.ext.loopcontrols],
        )
        environment.filters["tojson"] = _tojson
        try:
            self._template = environment.from_string(source)
        except jinja2.TemplateError as exc:
            raise LocalModelError(f"the chat template does not compile: {exc}") from exc
        self._bos = bos_token
        self._eos = eos_token

    def render(self, messages: list[ChatMessage]) -> str:
        try:
            return self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                bos_token=self._bos,
                eos_token=self._eos,
                add_generation_prompt=True,
                raise_exception=_raise_exception,
                strftime_now=_strftime_now,
            )
        except InvalidRequestError:
            raise
        except jinja2.TemplateError as exc:
            raise LocalModelError(f"the chat template failed: {exc}") from exc
