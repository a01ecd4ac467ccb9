"""``check`` on pool targets: every deployment checked against its own kind, with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sipp_gateway_server import check_config, load_config
from sipp_gateway_server._checks import _Checker
from sipp_gateway_server._config import parse_config
from sipp_gateway_server._pool_config import check_pool

from sipp import installed_drivers, load_driver

POOL = """\
[[targets]]
name = "chat"
kind = "pool"
strategy = "weighted"
cooldown = 5

[[targets.deployments]]
name = "one"
kind = "scripted"
reply = "1"
weight = 3

[[targets.deployments]]
name = "two"
kind = "provider"
provider = "openai_compatible"
model = "m"
base_url = "http://127.0.0.1:9/v1"
allow_insecure_http = true
api_key_env = "TWO_KEY"

[[tokens]]
caller = "web"
token_env = "CHECK_TOKEN"
"""
ENV = {"CHECK_TOKEN": "t0ken", "TWO_KEY": "sk-two-secret"}


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    found = check_config(path, environ=ENV if env is None else env)
    return [p.format("gateway.toml") for p in found]


def test_a_good_pool_loads_as_the_pool_drivers_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(POOL)
    config, secrets = load_config(path, environ=ENV)
    descriptor = secrets.descriptors["chat"]
    assert descriptor["kind"] == "pool"
    assert descriptor["strategy"] == "weighted"
    assert [(m["name"], m["weight"]) for m in descriptor["members"]] == [("one", 3.0), ("two", 1.0)]
    assert descriptor["members"][1]["descriptor"]["api_key"] == "sk-two-secret"
    assert "sk-two-secret" not in repr(config) + repr(secrets)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            'reply = "1"\n',
            'reply = "1"\nbogus = 2\n',
            "gateway.toml:11: error: targets[0].deployments[0].bogus: unknown key 'bogus' "
            "for kind 'scripted'",
            id="unknown-deployment-key",
        ),
        pytest.param(
            "weight = 3\n",
            "weight = 0\n",
            "gateway.toml:11: error: targets[0].deployments[0].weight: weight must be a "
            "positive number",
            id="zero-weight",
        ),
        pytest.param(
            'name = "two"\n',
            'name = "one"\n',
            "gateway.toml:14: error: targets[0].deployments[1].name: deployment 'one' is "
            "listed twice in this pool",
            id="duplicate-name",
        ),
        pytest.param(
            'provider = "openai_compatible"\n',
            'provider = "nope"\n',
            "gateway.toml:15: error: targets[0].deployments[1].kind: no installed driver "
            "serves kind 'provider' (provider.nope)",
            id="unknown-kind",
        ),
        pytest.param(
            'api_key_env = "TWO_KEY"\n',
            'api_key = "sk-in-the-file"\n',
            "gateway.toml:20: error: targets[0].deployments[1].api_key: secrets are never in "
            'the file: use api_key_env = "VARIABLE"',
            id="secret-in-file",
        ),
        pytest.param(
            'strategy = "weighted"\n',
            'strategy = "random"\n',
            "gateway.toml:4: error: targets[0].strategy: Invalid enum value 'random'",
            id="bad-strategy",
        ),
        pytest.param(
            "cooldown = 5\n",
            "cooldown = -1\n",
            "gateway.toml:1: error: targets[0]: cooldown must be a number of seconds >= 0",
            id="negative-cooldown",
        ),
        pytest.param(
            'kind = "pool"\n',
            'kind = "scripted"\n',
            'gateway.toml:3: error: targets[0].kind: a target with deployments has kind = "pool"',
            id="deployments-without-pool",
        ),
        pytest.param(
            'kind = "scripted"\nreply = "1"\n',
            'kind = "pool"\nreply = "1"\n',
            "gateway.toml:9: error: targets[0].deployments[0].kind: a deployment may not "
            "itself be a pool",
            id="nested-pool",
        ),
    ],
)
def test_each_bad_pool_is_reported_at_its_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert POOL.count(old) >= 1
    problems = _problems(tmp_path, POOL.replace(old, new, 1))
    assert expected in problems, problems


def test_a_pool_without_deployments_is_an_error(tmp_path: Path) -> None:
    text = '[[targets]]\nname = "chat"\nkind = "pool"\n'
    assert _problems(tmp_path, text) == [
        "gateway.toml:1: error: targets[0].deployments: a pool target lists its "
        "[[targets.deployments]]"
    ]


def test_an_unset_deployment_secret_is_a_warning_for_check(tmp_path: Path) -> None:
    problems = _problems(tmp_path, POOL, env={"CHECK_TOKEN": "t"})
    assert problems == [
        "gateway.toml:20: warning: targets[0].deployments[1].api_key_env: environment "
        "variable TWO_KEY is not set"
    ]


def test_inline_deployments_are_the_same_pool(tmp_path: Path) -> None:
    text = (
        '[[targets]]\nname = "chat"\nkind = "pool"\ndeployments = [\n'
        '  { name = "one", kind = "scripted" },\n  { name = "one", kind = "scripted" },\n]\n'
    )
    assert _problems(tmp_path, text) == [
        "gateway.toml:4: error: targets[0].deployments[1].name: deployment 'one' is listed "
        "twice in this pool"
    ]


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_keys = st.sampled_from(["name", "kind", "weight", "reply", "provider", "x_env", "x"])


@settings(max_examples=80, deadline=None)
@given(deployments=st.lists(st.dictionaries(_keys, _values, max_size=4), max_size=3))
def test_hostile_deployments_give_problems_never_a_crash(
    deployments: list[dict[str, Any]],
) -> None:
    config, problems = parse_config('[[targets]]\nname = "chat"\nkind = "pool"\n')
    assert not problems
    checker = _Checker(config, {}, serving=False)
    installed = {info.name for info in installed_drivers()}
    result = check_pool(
        checker, ("targets", 0), {"kind": "pool"}, deployments, installed=installed,
        load=load_driver,
    )  # fmt: skip
    # Either a valid pool descriptor, or at least one error saying why not.
    errors = [p for p in checker.problems if not p.warning]
    assert (result is None) == bool(errors), (deployments, checker.problems)
