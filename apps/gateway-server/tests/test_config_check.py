"""``sipp-gateway check`` (``sipp gateway check``): each bad configuration, with its line."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest
from sipp_gateway_server import ConfigError, check_config, command_main, load_config
from sipp_llama import LocalDescriptor

from sipp._cli import main

ROOT = Path(__file__).parents[3]
GOOD = """\
[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web"
token_env = "CHECK_TOKEN"
"""
ENV = {"CHECK_TOKEN": "t0ken"}


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return [
        p.format("gateway.toml") for p in check_config(path, environ=ENV if env is None else env)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[server\nlisten = 1\n", "gateway.toml:1: error: not valid TOML", id="syntax"),
        pytest.param(
            GOOD + '[server]\nlisten = "127.0.0.1:1"\nlistn = 3\n',
            "gateway.toml:10: error: server.listn: unknown key 'listn'",
            id="unknown-key",
        ),
        pytest.param(
            GOOD + "[server]\nmax_request_bytes = \"big\"\n",
            "gateway.toml:9: error: server.max_request_bytes: 'max_request_bytes' has the wrong "
            "type or value: Expected int, got str",
            id="wrong-type",
        ),
        pytest.param(
            GOOD + '[server]\nserver = "gunicorn"\n',
            "gateway.toml:9: error: server.server: 'server' has the wrong type or value: "
            "Invalid enum value 'gunicorn'",
            id="bad-choice",
        ),
        pytest.param(GOOD + "[extra]\na = 1\n", "gateway.toml:8: error: extra: unknown section",
                     id="unknown-section"),
        pytest.param(
            GOOD + "[[targets]]\nkind = \"scripted\"\n",
            "gateway.toml:8: error: targets[1]: missing required key 'name'",
            id="missing-key",
        ),
        pytest.param(
            GOOD + '[[targets]]\nname = "x"\nkind = "teleport"\n',
            "gateway.toml:10: error: targets[1].kind: no installed driver serves kind 'teleport'",
            id="unknown-kind",
        ),
        pytest.param(
            GOOD + '[[targets]]\nname = "x"\nkind = "scripted"\nreplyy = "hi"\n',
            "gateway.toml:11: error: targets[1].replyy: unknown key 'replyy' for kind 'scripted'",
            id="descriptor-unknown-key",
        ),
        pytest.param(
            GOOD + '[[targets]]\nname = "x"\nkind = "scripted"\ntoken_delay = "slow"\n',
            "gateway.toml:11: error: targets[1].token_delay: Expected float, got str",
            id="descriptor-wrong-type",
        ),
        pytest.param(
            GOOD + '[[targets]]\nname = "gpt"\nkind = "provider"\nprovider = "openai"\n'
            'model = "m"\napi_key = "sk-live-secret"\n',
            "gateway.toml:13: error: targets[1].api_key: secrets are never in the file: "
            'use api_key_env = "VARIABLE"',
            id="secret-in-file",
        ),
        pytest.param(
            GOOD + '[[targets]]\nname = "echo"\nkind = "scripted"\n',
            "gateway.toml:9: error: targets[1].name: target 'echo' is defined twice",
            id="duplicate-target",
        ),
        pytest.param(
            GOOD + 'targets = ["echo", "ghost"]\n',
            "gateway.toml:8: error: tokens[0].targets: unknown target 'ghost'",
            id="allowlist-unknown-target",
        ),
        pytest.param(
            GOOD + '[security]\nblocklist = ["10.0.0.0/33"]\n',
            "gateway.toml:9: error: security.blocklist: '10.0.0.0/33' is not an IP address",
            id="bad-cidr",
        ),
        pytest.param(
            GOOD + '[server]\nlisten = "localhost"\n',
            "gateway.toml:9: error: server.listen: 'localhost' is not host:port",
            id="bad-listen",
        ),
        pytest.param(
            GOOD + '[routes]\nquery = "v1/query"\n',
            "gateway.toml:9: error: routes.query: 'v1/query' must be an absolute path",
            id="bad-route",
        ),
        pytest.param(
            GOOD + "rate_limit = { requests_per_minute = 0, burst = 1 }\n",
            "gateway.toml:8: error: tokens[0].rate_limit.requests_per_minute: requests_per_minute "
            "must be positive",
            id="zero-rate",
        ),
        pytest.param(
            GOOD + '[[signing_keys]]\nkey_id = "k"\nsecret_env = "CHECK_TOKEN"\n',
            "gateway.toml:10: error: signing_keys[0].secret_env: the signing secret must be",
            id="short-signing-key",
        ),
        pytest.param(
            GOOD + '[[targets]]\nname = "smol"\nkind = "local"\nsource = "missing.gguf"\n',
            "gateway.toml:11: warning: targets[1].source: model file",
            id="missing-model-file",
        ),
        pytest.param(
            GOOD + '[state]\nbackend = "redis"\nredis_url_env = "CHECK_REDIS_URL"\n',
            "gateway.toml:10: warning: state.redis_url_env: environment variable CHECK_REDIS_URL "
            "is not set",
            id="unset-redis-url",
        ),
    ],
)  # fmt: skip
def test_each_problem_is_reported_with_its_line(tmp_path: Path, text: str, expected: str) -> None:
    problems = _problems(tmp_path, text)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    text = GOOD + '[server]\nlistn = 1\nmax_request_bytes = "x"\n[security]\nblocklist = ["x"]\n'
    problems = _problems(tmp_path, text)
    assert [p.split(":")[1] for p in problems] == ["9", "10", "12"]


def test_unset_token_variable_is_a_warning_for_check_and_an_error_for_serve(
    tmp_path: Path,
) -> None:
    problems = _problems(tmp_path, GOOD, env={})
    assert problems == [
        "gateway.toml:7: warning: tokens[0].token_env: environment variable CHECK_TOKEN is not set"
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "gateway.toml", environ={})
    assert "CHECK_TOKEN is not set" in str(caught.value)


def test_secrets_are_read_from_the_environment(tmp_path: Path) -> None:
    text = GOOD + '[[targets]]\nname = "gw"\nkind = "gateway"\ntarget = "up"\n'
    text += 'base_url = "http://127.0.0.1:1"\n'
    text += 'authentication = { kind = "bearer", value_env = "CHECK_UPSTREAM" }\n'
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    config, secrets = load_config(path, environ={**ENV, "CHECK_UPSTREAM": "upstream-secret"})
    assert secrets.descriptors["gw"]["authentication"]["value"] == "upstream-secret"
    assert "upstream-secret" not in repr(secrets)
    assert "t0ken" not in repr(secrets) and "t0ken" not in repr(config)


def test_cli_check_exit_status_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECK_TOKEN", "t0ken")
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["gateway", "check", "--config", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + "[server]\nlistn = 1\n")
    assert main(["gateway", "check", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:9: error: server.listn: unknown key 'listn'" in err
    assert "1 error(s)" in err


def test_the_sample_configuration_checks_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIPP_WEB_TOKEN", "x")
    monkeypatch.setenv("SIPP_SIGNING_KEY", "k" * 64)
    problems = check_config(ROOT / "examples" / "gateway.toml")
    assert [p for p in problems if not p.warning] == []
    # Only the model file may be missing (it is linked in by the README's first step).
    assert all("model file" in p.message for p in problems)


def test_sipp_gateway_command_checks_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECK_TOKEN", "t0ken")
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert command_main(["check", "--config", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        command_main(["frobnicate"])
    assert exited.value.code == 2


def test_sipp_gateway_without_the_server_names_the_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail as if the distribution were absent.
    monkeypatch.setitem(sys.modules, "sipp_gateway_server", None)
    assert main(["gateway", "serve", "--config", "x.toml"]) == 2
    assert "pip install -e apps/gateway-server" in capsys.readouterr().err


def test_decode_slots_come_from_the_driver_descriptor(tmp_path: Path) -> None:
    # The queue-depth gauge needs each target's decode slots; the server hard-coded a
    # local model's default (4) before, now the driver's descriptor type supplies it.
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    text = GOOD + (
        f'[[targets]]\nname = "default"\nkind = "local"\nsource = "{model}"\n'
        f'[[targets]]\nname = "two"\nkind = "local"\nsource = "{model}"\nn_parallel = 2\n'
    )
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    _, secrets = load_config(path, environ=ENV)
    fields = msgspec.structs.fields(LocalDescriptor)
    default = next(f.default for f in fields if f.name == "n_parallel")
    assert secrets.decode_slots == {"echo": 0, "default": default, "two": 2}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[server]\nheader_timeout = 0\n",
         "gateway.toml:9: error: server.header_timeout: must be more than 0"),
        ("[server]\nbody_timeout = -1.0\n",
         "gateway.toml:9: error: server.body_timeout: must be more than 0"),
        ("[server]\nkeepalive_timeout = 7200\n",
         "gateway.toml:9: error: server.keepalive_timeout: must be more than 0 and at most 3600"),
        ("[server]\nmax_connections = 0\n",
         "gateway.toml:9: error: server.max_connections: must be at least 1"),
        ("[server]\nmax_connections = 100000000\n",
         "gateway.toml:9: warning: server.max_connections: 100000000 is more than"),
        ("[server]\nheader_timeout = \"10s\"\n",
         "gateway.toml:9: error: server.header_timeout: 'header_timeout' has the wrong type"),
    ],
)  # fmt: skip
def test_connection_limits_are_checked(tmp_path: Path, extra: str, expected: str) -> None:
    problems = _problems(tmp_path, GOOD + extra)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("field", "expected"),
    [("max_tokens = 0", "must be at least 1"), ("max_seconds = 0.0", "must be more than 0"),
     ("max_seconds = 100000.0", "must be more than 0 and at most 86400")],
)  # fmt: skip
def test_target_bounds_are_checked(tmp_path: Path, field: str, expected: str) -> None:
    text = GOOD.replace('kind = "scripted"\n', f'kind = "scripted"\n{field}\n', 1)
    problems = _problems(tmp_path, text)
    assert any(f"targets[0].{field.split()[0]}: {expected}" in p for p in problems), problems


def test_defaults_are_safe(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD)
    config, _ = load_config(path, environ=ENV)
    server = config.server
    assert (server.header_timeout, server.body_timeout, server.keepalive_timeout) == (10, 30, 5)
    assert server.max_connections == 1000
    assert config.targets[0].max_seconds == 600


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("", 64, id="unset-one-full-pool"),
        pytest.param("max_connections = 8\n", 8, id="configured"),
    ],
)
def test_an_http_target_gets_a_gateways_connection_pool(
    tmp_path: Path, line: str, expected: int
) -> None:
    # The driver's own default (10) made the 11th concurrent caller wait for a connection.
    text = GOOD + '[[targets]]\nname = "up"\nkind = "provider"\nprovider = "openai_compatible"\n'
    text += 'model = "m"\nbase_url = "http://127.0.0.1:1/v1"\n' + line
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    _, secrets = load_config(path, environ=ENV)
    assert secrets.descriptors["up"]["max_connections"] == expected
