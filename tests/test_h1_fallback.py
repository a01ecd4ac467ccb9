"""create_http_client: the lean transport by default, httpx's own where it cannot serve."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

import sipp
from sipp.http import LeanTransport, create_http_client


def transport_of(client: httpx.AsyncClient) -> Any:
    return client._transport


def test_lean_by_default() -> None:
    assert isinstance(transport_of(create_http_client()), LeanTransport)


@pytest.mark.parametrize(
    ("options", "environment"),
    [
        pytest.param({"http_transport": "httpx"}, {}, id="asked-for"),
        pytest.param({"uds": "/tmp/sipp-test.sock"}, {}, id="unix-socket"),
        pytest.param({}, {"HTTPS_PROXY": "http://127.0.0.1:3128"}, id="env-proxy"),
        pytest.param({}, {"all_proxy": "http://127.0.0.1:3128"}, id="env-all-proxy"),
    ],
)
def test_httpx_transport_where_lean_cannot_serve(
    options: dict[str, Any], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert isinstance(transport_of(create_http_client(**options)), httpx.AsyncHTTPTransport)


def test_env_proxy_ignored_without_trust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert isinstance(transport_of(create_http_client(trust_env=False)), LeanTransport)


def test_unknown_transport_is_a_configuration_error() -> None:
    with pytest.raises(sipp.ConfigurationError, match="http_transport"):
        create_http_client(http_transport="curl")  # type: ignore[arg-type]


@pytest.mark.parametrize("descriptor_type", [sipp.ProviderDescriptor, sipp.GatewayDescriptor])
def test_descriptors_take_the_switch(descriptor_type: type[Any]) -> None:
    fields = {"provider": "openai", "model": "m"}
    if descriptor_type is sipp.GatewayDescriptor:
        fields = {"target": "t", "base_url": "http://127.0.0.1:1"}
    assert msgspec.convert(fields, descriptor_type).http_transport == "lean"
    chosen = msgspec.convert({**fields, "http_transport": "httpx"}, descriptor_type)
    assert chosen.http_transport == "httpx"
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**fields, "http_transport": "curl"}, descriptor_type)
