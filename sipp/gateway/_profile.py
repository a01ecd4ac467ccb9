"""The gateway profile's vocabulary: its error type, its JSON rules, its whitespace.

Everything here is pure: no I/O, no framework. The wire rules it encodes are
in ``docs/gateway-profile.md`` (and the spec it follows):

* bodies are JSON objects; a body that is not JSON at all, or that uses the
  non-standard literals ``NaN``/``Infinity``, is ``invalid_json``;
* a number too large to be finite (``1e999``) parses, as it does in
  JavaScript, to an infinite float, so the field rules can refuse it with
  their own message instead of the parser crashing;
* "non-empty after trimming" uses JavaScript's ``String.prototype.trim``
  whitespace set, so every implementation accepts and refuses the same text;
* JSON is written compact, with raw UTF-8.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import msgspec

from .._errors import SippError

__all__ = [
    "JS_WHITESPACE",
    "GatewayProfileError",
    "encode_json",
    "is_blank",
    "parse_json_body",
]

#: ``String.prototype.trim``'s set: ECMAScript WhiteSpace (tab, VT, FF, space,
#: NBSP, ZWNBSP and Unicode Zs) plus LineTerminator (LF, CR, LS, PS). Python's
#: ``str.strip`` differs (it also strips U+001C..U+001F and U+0085).
JS_WHITESPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_BOM: Final = b"\xef\xbb\xbf"
#: More digits than this cannot be a finite double: parse them to +-inf, as JavaScript does.
_MAX_INT_DIGITS: Final = 309

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()


class GatewayProfileError(SippError):
    """A request the profile refuses (decoding, size), with its ``code`` and HTTP ``status``.

    ``gateway_error_response`` turns it into the profile's error envelope.
    """

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __repr__(self) -> str:
        return f"GatewayProfileError({self.code!r}, {self.message!r}, status={self.status})"


def invalid_request(message: str) -> GatewayProfileError:
    return GatewayProfileError("invalid_request", message)


def _invalid_json() -> GatewayProfileError:
    return GatewayProfileError("invalid_json", "gateway request body is not valid JSON")


def is_blank(text: str) -> bool:
    """Whether ``text`` is empty after JavaScript's ``trim()``."""
    return not text.strip(JS_WHITESPACE)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON literal {name}")


def _parse_int(digits: str) -> int | float:
    if len(digits) - digits.startswith("-") > _MAX_INT_DIGITS:
        return float(digits)  # inf or -inf, never Python's 4300-digit ValueError
    return int(digits)


def parse_json_body(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse a request body; raise ``GatewayProfileError('invalid_json')`` when it is not JSON.

    The fast path is msgspec. It refuses numbers outside the double range,
    which JSON allows, so those bodies are parsed again by the standard
    library with JavaScript's semantics (``1e999`` is infinite).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.startswith(_BOM):
        raw = raw[3:]
    try:
        return _decoder.decode(raw)
    except RecursionError as exc:  # nesting deeper than any real request
        raise _invalid_json() from exc
    except msgspec.DecodeError as exc:
        if "out of range" not in str(exc):
            raise _invalid_json() from exc
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_parse_int)
        # A lone surrogate escape ("\ud800") cannot be written back as UTF-8.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:
        raise _invalid_json() from exc
    return value


def encode_json(value: Any) -> bytes:
    """Compact JSON with raw UTF-8, as every profile body and SSE ``data`` line is written."""
    return _encoder.encode(value)


def finite_number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` when it is not a finite JSON number.

    Booleans are not numbers here (JSON has both); an integer too large for a
    double is not finite (JavaScript sees it as ``Infinity``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
