"""Where each key of a TOML file is: ``(section, index, key) -> line``.

``tomllib`` returns plain dicts without positions, and the configuration
rules say a problem names the key *and its line*. A full position-keeping
TOML parser (``tomlkit``) would be another dependency for one feature, so
this module scans the text the way a reader does: it follows table headers
(``[server]``, ``[[targets]]`` counting each array entry) and records the
line of every ``key =``. Keys inside an inline table (``rate_limit = {...}``)
point at the line of the key that holds the table. Multi-line strings and
arrays are skipped so their contents are never taken for keys.

Paths are tuples: ``("server", "listen")``, ``("targets", 0, "kind")``,
``("targets", 0, "deployments", 1, "weight")`` (``[[targets.deployments]]``); the
header line of a table is the path without its last key (``("targets", 0)``).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["Path", "line_of", "locate"]

Path = tuple[str | int, ...]

_HEADER: Final = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY: Final = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|=)""")


def _name(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def _opens_multiline(line: str) -> str | None:
    """The closing token a line leaves open (``\"\"\"``, ``'''`` or ``]``), if any."""
    for quote in ('"""', "'''"):
        if line.count(quote) % 2 == 1:
            return quote
    value = line.split("=", 1)[1] if "=" in line else ""
    value = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'", "", value).split("#", 1)[0]
    if value.count("[") > value.count("]"):
        return "]"
    return None


def locate(text: str) -> dict[Path, int]:
    """Line numbers (1-based) of every table header and key in ``text``."""
    lines: dict[Path, int] = {}
    counts: dict[str, int] = {}
    nested: dict[Path, int] = {}
    table: Path = ()
    closing: str | None = None
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:
            if closing == "]":
                depth += line.count("[") - line.count("]")
                if depth <= 0:
                    closing = None
            elif line.count(closing) % 2 == 1:
                closing = None
            continue
        header = _HEADER.match(line)
        if header:
            parts = [_name(part) for part in header.group(2).split(".")]
            name = parts[0]
            if header.group(1) == "[[" and len(parts) == 2 and name in counts:
                # ``[[targets.deployments]]``: an array inside the current array entry.
                parent: Path = (name, counts[name], parts[1])
                index = nested.get(parent, -1) + 1
                nested[parent] = index
                table = (*parent, index)
            elif header.group(1) == "[[":
                index = counts.get(name, -1) + 1
                counts[name] = index
                table = (name, index)
            else:
                table = (name,)
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*table, _name(key.group(1))), number)
            closing = _opens_multiline(line)
            if closing == "]":
                value = line.split("=", 1)[1]
                depth = value.count("[") - value.count("]")
    return lines


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of its nearest enclosing key or table."""
    while path:
        found = lines.get(path)
        if found is not None:
            return found
        path = path[:-1]
    return None
