"""What a conversation is made of: messages, content parts, tools and tool calls.

Frozen, keyword-only ``msgspec.Struct``s like every other value type, so a
plain dict of the same shape (``{"type": "image", "url": ...}``) converts into
them with precise errors. Content parts are a tagged union on ``type``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ._errors import OutputValidationError

__all__ = [
    "ContentPart",
    "ChatMessage",
    "ImagePart",
    "ReasoningOptions",
    "Role",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
]

Role = Literal["system", "user", "assistant", "tool"]


class _Value(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class TextPart(_Value, frozen=True, kw_only=True, tag="text", tag_field="type"):
    text: str


class ImagePart(_Value, frozen=True, kw_only=True, tag="image", tag_field="type"):
    """An image, by ``url`` or inline as ``data`` (bytes; base64 in dicts and on the wire)."""

    url: str | None = None
    data: bytes | None = None
    media_type: str | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image part needs exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise ValueError("an inline image needs its media_type (for example image/png)")


ContentPart = TextPart | ImagePart


class ToolCall(_Value, frozen=True, kw_only=True):
    """One function call the model asked for; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"

    @property
    def parsed_arguments(self) -> Any:
        """The arguments as JSON data; ``OutputValidationError`` when the model wrote bad JSON."""
        try:
            return msgspec.json.decode(self.arguments or "{}")
        except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: "[[[[..."
            raise OutputValidationError(
                f"tool call {self.name!r} has invalid JSON arguments: {exc}",
                text=self.arguments,
            ) from exc


class ToolCallDelta(_Value, frozen=True, kw_only=True):
    """A piece of a streamed tool call: ``id`` and ``name`` come on a call's first delta."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Tool(_Value, frozen=True, kw_only=True):
    """A function the model may call: its name, what it does, and a JSON schema of its arguments.

    ``function`` is the Python callable behind it (set by :func:`sipp.tool`);
    it never goes on the wire and only ``run_tools`` uses it.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    function: Any = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a tool needs a name")
        if self.parameters.get("type", "object") != "object":
            raise ValueError("a tool's parameters must be a JSON schema of an object")


class ReasoningOptions(_Value, frozen=True, kw_only=True):
    """How hard a reasoning model should think; either key may be left out."""

    effort: Literal["low", "medium", "high"] | None = None
    budget_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.budget_tokens is not None and self.budget_tokens <= 0:
            raise ValueError("budget_tokens must be greater than zero")


class ChatMessage(_Value, frozen=True, kw_only=True):
    """One turn: ``content`` is a string or a list of text and image parts.

    An assistant turn may carry ``tool_calls``; a ``tool`` turn answers one of
    them and names it in ``tool_call_id``.
    """

    role: Role
    content: str | list[ContentPart]
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")

    @property
    def text(self) -> str:
        """The text of ``content``, parts joined; images left out."""
        content = self.content
        if isinstance(content, str):
            return content
        return "".join(part.text for part in content if isinstance(part, TextPart))

    @property
    def has_images(self) -> bool:
        return not isinstance(self.content, str) and any(
            isinstance(part, ImagePart) for part in self.content
        )
