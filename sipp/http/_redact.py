"""Secret redaction for error messages, raw bodies, headers and ``repr``.

A driver builds one :class:`Redactor` per endpoint from the secrets it was
given (API keys, header values) and passes every string that may reach a user
(an upstream error body, an httpx message, a URL) through it. Besides the
known values it masks what looks like a credential anyway (``Bearer ...``,
``sk-...`` keys), because an upstream may echo a key we never saw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["REDACTED", "SENSITIVE_HEADERS", "Redactor", "redact", "redact_headers"]

REDACTED: Final = "[redacted]"

#: Header names whose values are always secrets (lower case).
SENSITIVE_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
    }
)

# Shapes of credentials an upstream might echo back: bearer tokens and
# OpenAI/Anthropic-style keys. Conservative on purpose: only long tokens.
_CREDENTIAL_SHAPES: Final = re.compile(
    r"(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{12,}"
)
# Secrets shorter than this are not searched for: masking "a" everywhere
# would destroy the message and protect nothing.
_MIN_SECRET_LENGTH: Final = 4


class Redactor:
    """Masks a fixed set of secret values (and credential-shaped tokens) in text."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        values = sorted(
            {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True
        )
        alternatives = [re.escape(v) for v in values]
        alternatives.append(_CREDENTIAL_SHAPES.pattern)
        self._pattern = re.compile("|".join(f"(?:{a})" for a in alternatives))

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        """``text`` with every known secret and credential-shaped token replaced."""
        if not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def __repr__(self) -> str:
        return "Redactor([redacted])"


_DEFAULT = Redactor()


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """One-off form of :meth:`Redactor.redact` (build a ``Redactor`` for repeated use)."""
    return (Redactor(secrets) if secrets else _DEFAULT).redact(text)


def redact_headers(headers: Mapping[str, str], secret_names: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``headers`` with secret values replaced, for logs and ``repr``.

    Known credential headers and the names in ``secret_names`` are masked.
    """
    names = SENSITIVE_HEADERS | {n.lower() for n in secret_names}
    return {k: (REDACTED if k.lower() in names else v) for k, v in headers.items()}
