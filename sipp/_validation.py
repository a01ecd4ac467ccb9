"""Turning user input into typed values, with errors that name the bad key.

msgspec does the conversion and type checks; this module only rewrites its
messages into the SDK's errors, keeping the path (``$.timeout.idle``) so the
user sees which key is wrong.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from ._errors import ConfigurationError, InvalidRequestError

__all__ = ["convert_descriptor", "convert_request"]

T = TypeVar("T")

_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def _describe(error: msgspec.ValidationError) -> tuple[str, str | None]:
    """The message without msgspec's path suffix, and the key it points at."""
    text = str(error)
    field: str | None = None
    match = _PATH.search(text)
    if match:
        field = match.group(1) or None
        text = text[: match.start()]
    for pattern in (_UNKNOWN, _MISSING):
        named = pattern.search(text)
        if named:
            field = f"{field}.{named.group(1)}" if field else named.group(1)
    return text, field


def convert_request(data: Any, type_: type[T]) -> T:
    """``data`` (a dict) as a request of ``type_``, or ``InvalidRequestError``."""
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        message, field = _describe(exc)
        first_word = message.split(" ", 1)[0]
        if field is None and first_word in getattr(type_, "__struct_fields__", ()):
            field = first_word  # a check in __post_init__ names its field first
        elif message.startswith("Object contains unknown field"):
            message = f"unknown option {field!r}"
        elif message.startswith("Object missing required field"):
            message = f"missing required option {field!r}"
        elif field is not None:
            message = f"invalid {field}: {message}"
        raise InvalidRequestError(message, field=field) from exc


def convert_descriptor(data: Any, type_: type[T], endpoint: str) -> T:
    """``data`` (a dict) as a descriptor of ``type_``, or ``ConfigurationError``."""
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        message, field = _describe(exc)
        where = f"endpoint {endpoint!r}"
        if message.startswith("Object contains unknown field"):
            raise ConfigurationError(f"{where}: unknown key {field!r}") from exc
        if field is not None:
            raise ConfigurationError(f"{where}: key {field!r}: {message}") from exc
        raise ConfigurationError(f"{where}: {message}") from exc
