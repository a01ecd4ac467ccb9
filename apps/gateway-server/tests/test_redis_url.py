"""``check`` on Redis URLs: the forms that work, the mistakes, and hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sipp_gateway_server._redis_url import check_redis_url


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://:p%40ss@redis.internal",
        "redis://user:secret@[::1]:6380/3",
        "rediss://cache.example:6380/0",
        "rediss://cache.example?ssl_cert_reqs=required&ssl_check_hostname=true",
        "redis://localhost?db=2&client_name=gw",
    ],
)
def test_good_urls_have_no_errors(url: str) -> None:
    assert check_redis_url(url) == ([], [])


def test_unix_socket_url(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    assert check_redis_url(f"unix://{sock}?db=1")[0] == []
    assert "does not exist" in check_redis_url(f"unix://{sock}")[1][0]  # a warning only
    sock.touch()
    assert check_redis_url(f"unix://{sock}") == ([], [])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost", "must start with redis://, rediss:// or unix://"),
        ("localhost:6379", "must start with"),
        ("redis://", "needs a host"),
        ("redis://localhost:99999", "malformed"),
        ("redis://localhost/zero", "non-negative integer"),
        ("redis://localhost?db=x", "non-negative integer"),
        ("redis://localhost?ssl_ca_certs=/ca.pem", "needs a rediss://"),
        ("rediss://localhost?ssl_cert_reqs=maybe", "none, optional or required"),
        ("rediss://localhost?ssl_check_hostname=perhaps", "true or false"),
        ("redis://localhost?colour=blue", "unknown Redis URL parameter 'colour'"),
        ("redis://localhost?db=1&db=2", "more than once"),
        ("redis://localhost?connect_timeout=-1", "positive number"),
        ("unix://", "needs the socket's path"),
        ("unix://host/tmp/redis.sock", "has no host"),
    ],
)
def test_bad_urls_are_explained(url: str, expected: str) -> None:
    errors, _ = check_redis_url(url)
    assert any(expected in error for error in errors), errors


def test_missing_tls_files_are_warnings(tmp_path: Path) -> None:
    errors, warnings = check_redis_url(f"rediss://h?ssl_ca_certs={tmp_path / 'nope.pem'}")
    assert errors == [] and warnings == ["ssl_ca_certs file does not exist"]


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["redis", "rediss", "unix", "http", ""]),
    rest=st.text(max_size=60),
    password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=16),
)
def test_any_text_gets_an_answer_that_never_shows_the_password(
    scheme: str, rest: str, password: str
) -> None:
    url = f"{scheme}://u:{password}@{rest}" if scheme else rest
    errors, warnings = check_redis_url(url)
    assert isinstance(errors, list) and isinstance(warnings, list)
    assert not any(password in message for message in errors + warnings)
