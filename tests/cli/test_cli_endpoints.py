"""``sipp endpoints`` and its TOML file: named endpoints, secrets only as env var names."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipp._cli._endpoints import (
    EndpointsFileError,
    config_dir,
    load_endpoints,
    resolve_descriptor,
    save_endpoints,
    validate_entry,
)


def _sipp(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipp", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SIPP_CONFIG_DIR": str(tmp_path)}


def test_add_list_use_and_remove(env: dict[str, str], tmp_path: Path) -> None:
    added = _sipp(env, "endpoints", "add", "bot", "--kind", "scripted", "--set", "reply=hi there")
    assert added.returncode == 0, added.stderr
    listed = _sipp(env, "endpoints", "list", "--json")
    assert json.loads(listed.stdout) == {"bot": {"kind": "scripted", "reply": "hi there"}}
    assert _sipp(env, "query", "-e", "bot", "x").stdout == "hi there\n"
    assert "bot" in _sipp(env, "endpoints", "list").stdout
    assert _sipp(env, "endpoints", "remove", "bot").returncode == 0
    assert json.loads(_sipp(env, "endpoints", "list", "--json").stdout) == {}
    missing = _sipp(env, "endpoints", "remove", "bot")
    assert missing.returncode == 2
    assert "no endpoint named 'bot'" in missing.stderr


def test_adding_an_existing_name_needs_force(env: dict[str, str]) -> None:
    assert _sipp(env, "endpoints", "add", "bot", "--kind", "scripted").returncode == 0
    again = _sipp(env, "endpoints", "add", "bot", "--kind", "scripted")
    assert again.returncode == 2
    assert "--force" in again.stderr
    assert _sipp(env, "endpoints", "add", "bot", "--kind", "scripted", "--force").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--api-key-env", "sk-proj-abcdef0123456789abcdef"], id="key-as-env-name"),
        pytest.param(["--api-key-env", "Ab3dEf9hIjKlMn0pQrStUvWxYz12"], id="token-shaped-name"),
        pytest.param(["--set", "api_key=sk-abc"], id="literal-api-key"),
        pytest.param(["--set", "authentication.value=tok"], id="literal-auth-value"),
        pytest.param(["--set", "headers.Authorization=Bearer x"], id="credential-header"),
    ],
)
def test_a_literal_secret_is_refused_and_never_written(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    result = _sipp(env, "endpoints", "add", "p", "--kind", "provider", *args)
    assert result.returncode == 2
    assert "environment variable" in result.stderr or "secret" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "endpoints.toml").exists()


def test_secrets_are_read_from_the_named_variable_at_use(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.toml"
    save_endpoints(
        {
            "gw": {
                "kind": "gateway",
                "target": "t",
                "authentication": {"kind": "bearer", "value_env": "GW_TOKEN"},
            },
            "p": {"kind": "provider", "provider": "openai", "api_key_env": "P_KEY"},
        },
        path,
    )
    text = path.read_text()
    assert "GW_TOKEN" in text
    assert "P_KEY" in text
    entries = load_endpoints(path)
    environ = {"GW_TOKEN": "secret-gw", "P_KEY": "secret-p"}
    assert resolve_descriptor("gw", entries["gw"], environ)["authentication"] == {
        "kind": "bearer",
        "value": "secret-gw",
    }
    assert resolve_descriptor("p", entries["p"], environ)["api_key"] == "secret-p"
    with pytest.raises(EndpointsFileError, match=r"P_KEY .* is not set"):
        resolve_descriptor("p", entries["p"], {})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"SIPP_CONFIG_DIR": "/x/y"}, "/x/y", id="explicit"),
        pytest.param({"XDG_CONFIG_HOME": "/xdg"}, "/xdg/sipp", id="xdg"),
        pytest.param({"XDG_CONFIG_HOME": "relative"}, "~/.config/sipp", id="relative-xdg-ignored"),
        pytest.param({}, "~/.config/sipp", id="default"),
    ],
)
def test_config_dir_follows_xdg(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("SIPP_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert config_dir() == Path(expected).expanduser()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[endpoints", id="bad-toml"),
        pytest.param("endpoints = 3", id="not-a-table"),
        pytest.param("[other]\nx = 1", id="unknown-top-level"),
        pytest.param("[endpoints.a]\nmodel = 'm'", id="no-kind"),
        pytest.param("[endpoints.a]\nkind = 'provider'\napi_key = 'sk-1'", id="literal-key"),
        pytest.param("[endpoints.a]\nkind = 'x'\napi_key_env = 3", id="env-not-a-string"),
        pytest.param("[endpoints.'a b']\nkind = 'x'", id="bad-name"),
    ],
)
def test_a_bad_file_is_a_clear_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "endpoints.toml"
    path.write_text(text)
    with pytest.raises(EndpointsFileError, match=str(path)):
        load_endpoints(path)


def test_a_bad_file_through_the_command_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "endpoints.toml").write_text("[endpoints.a]\nkind = 'p'\napi_key = 'sk-live'\n")
    result = _sipp(env, "chat", "-e", "a")
    assert result.returncode == 2
    assert "never stored" in result.stderr
    assert "sk-live" not in result.stderr


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_hostile_files_load_or_fail_cleanly(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "endpoints.toml"
        path.write_text(text, encoding="utf-8")
        try:
            loaded = load_endpoints(path)
        except EndpointsFileError:
            return
        assert all(isinstance(entry.get("kind"), str) for entry in loaded.values())


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), _values)
def test_hostile_entries_validate_or_fail_cleanly(name: str, entry: Any) -> None:
    with contextlib.suppress(EndpointsFileError):
        validate_entry(name, entry)


def test_without_the_extra_the_command_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['click'] = None\n"
        "from sipp._cli import main; sys.exit(main(['drivers']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "pip install 'sipp[cli]'" in result.stderr


def test_import_sipp_does_not_load_the_cli_libraries() -> None:
    code = (
        "import sys, sipp; print(sorted(m for m in ('click', 'rich', 'tomli_w', 'sipp._cli')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
