"""A target that is a pool of deployments: its TOML, checked deployment by deployment.

```toml
[[targets]]
name = "chat"
kind = "pool"
strategy = "weighted"          # ordered (default), weighted, least_busy, fastest
cooldown = 30                  # seconds a deployment that keeps failing is left out
max_failures = 3               # failures in a row that start a cooldown
member_first_token_timeout = 5 # seconds to the first token before the next one is tried

[[targets.deployments]]
name = "gpu-1"                 # a metrics label: keep it a configuration name
kind = "provider"
provider = "openai_compatible"
base_url = "http://10.0.0.5:8000/v1"
api_key_env = "GPU1_KEY"       # secrets as *_env, per deployment
weight = 3
```

The gateway turns it into the ``pool`` driver's descriptor (``members``: one
``{name, weight, descriptor}`` per deployment), so the pool is the SDK's own
(:mod:`sipp_pool`). Each deployment's fields are checked against *its* kind's
descriptor type, with problems located at ``targets[i].deployments[j].key``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from ._lines import Path

__all__ = ["check_pool"]

_RESERVED = ("name", "kind", "weight")


class _Checker(Protocol):
    def error(self, path: Path, message: str) -> None: ...

    def descriptor(
        self, path: Path, raw: dict[str, Any], type_: type[Any]
    ) -> tuple[dict[str, Any], Any] | None: ...


def check_pool(
    checker: _Checker,
    path: Path,
    raw: dict[str, Any],
    deployments: list[dict[str, Any]] | None,
    *,
    installed: set[str],
    load: Callable[[str], Any],
) -> tuple[dict[str, Any], Any] | None:
    """The pool descriptor of a ``kind = "pool"`` target, or ``None`` after reporting why."""
    if not deployments:
        checker.error((*path, "deployments"), "a pool target lists its [[targets.deployments]]")
        return None
    members: list[dict[str, Any]] = []
    seen: set[str] = set()
    ok = True
    for index, deployment in enumerate(deployments):
        where: Path = (*path, "deployments", index)
        member = _member(checker, where, deployment, seen, installed, load)
        if member is None:
            ok = False
        else:
            members.append(member)
    if not ok:
        return None
    return checker.descriptor(path, {**raw, "members": members}, load("pool").descriptor_type)


def _member(
    checker: _Checker,
    where: Path,
    deployment: dict[str, Any],
    seen: set[str],
    installed: set[str],
    load: Callable[[str], Any],
) -> dict[str, Any] | None:
    name = deployment.get("name")
    kind = deployment.get("kind")
    weight = deployment.get("weight", 1)
    ok = True
    if not isinstance(name, str) or not name.strip():
        checker.error((*where, "name"), "a deployment needs a non-empty string 'name'")
        ok = False
    elif name in seen:
        checker.error((*where, "name"), f"deployment {name!r} is listed twice in this pool")
        ok = False
    else:
        seen.add(name)
    if (
        isinstance(weight, bool)
        or not isinstance(weight, (int, float))
        or not (math.isfinite(weight) and weight > 0)
    ):
        checker.error((*where, "weight"), "weight must be a positive number")
        ok = False
    if not isinstance(kind, str) or not kind:
        checker.error((*where, "kind"), "a deployment needs a string 'kind'")
        return None
    if kind == "pool":
        checker.error((*where, "kind"), "a deployment may not itself be a pool")
        return None
    fields = {k: v for k, v in deployment.items() if k not in _RESERVED}
    driver = f"provider.{fields.get('provider')}" if kind == "provider" else kind
    if driver not in installed:
        checker.error((*where, "kind"), f"no installed driver serves kind {kind!r} ({driver})")
        return None
    try:
        factory = load(driver)
    except Exception as exc:  # a broken plugin is a configuration problem here
        checker.error((*where, "kind"), f"driver {driver!r} failed to load: {exc}")
        return None
    checked = checker.descriptor(where, {**fields, "kind": kind}, factory.descriptor_type)
    if checked is None or not ok:
        return None
    return {"name": name, "weight": float(weight), "descriptor": checked[0]}
