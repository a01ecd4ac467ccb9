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
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sipp import ChatMessage, InvalidRequestError, LocalModelError, Tool

from ._toolprompt import generic_messages, template_messages, template_tools

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
            variables = jinja2.meta.find_undeclared_variables(environment.parse(source))
        except jinja2.TemplateError as exc:
            raise LocalModelError(f"the chat template does not compile: {exc}") from exc
        #: Whether the template renders functions itself (it reads ``tools``);
        #: otherwise tools and tool turns go through the generic format.
        self.renders_tools = "tools" in variables
        self._bos = bos_token
        self._eos = eos_token

    def render(
        self,
        messages: list[ChatMessage],
        tools: list[Tool] | None = None,
        tool_choice: str | None = None,
    ) -> str:
        """The prompt for ``messages``; ``tools`` are those the model may call now."""
        variables: dict[str, Any] = {}
        if self.renders_tools:
            variables["messages"] = template_messages(messages)
            if tools:
                variables["tools"] = template_tools(tools)
        else:
            variables["messages"] = generic_messages(messages, tools, tool_choice)
        try:
            return self._template.render(
                bos_token=self._bos,
                eos_token=self._eos,
                add_generation_prompt=True,
                raise_exception=_raise_exception,
                strftime_now=_strftime_now,
                **variables,
            )
        except InvalidRequestError:
            raise
        except jinja2.TemplateError as exc:
            raise LocalModelError(f"the chat template failed: {exc}") from exc
