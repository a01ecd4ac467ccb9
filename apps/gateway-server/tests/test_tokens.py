"""Minted short-lived tokens, verified by a real gateway: every way one can be wrong."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from gw_configs import MAIN, ROTATION
from gwtest import OLD_SIGNING_KEY, SIGNING_KEY, Gateway
from sipp_gateway_server import mint_gateway_token

pytestmark = pytest.mark.anyio

QUERY = {"model": "echo", "prompt": "hello"}


def _mint(**overrides: object) -> str:
    options: dict[str, object] = {
        "key_id": "2026-11",
        "caller": "browser",
        "targets": ["echo"],
        "expires_in": 300,
    }
    options.update(overrides)
    secret = options.pop("secret", SIGNING_KEY)
    return mint_gateway_token(secret, **options)  # type: ignore[arg-type]


async def _post(gateway: Gateway, token: str, body: dict[str, object] = QUERY) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        return await http.post("/v1/query", json=body, headers={"authorization": f"Bearer {token}"})


@pytest.fixture
def gateway(gateways: Callable[[str, str], Gateway], backend: str) -> Gateway:
    return gateways(MAIN, backend)


async def test_a_minted_token_is_accepted(gateway: Gateway) -> None:
    response = await _post(gateway, _mint())
    assert response.status_code == 200
    assert response.json()["text"] == "hello"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param(lambda: _mint(now=time.time() - 600), "token expired", id="expired"),
        pytest.param(
            lambda: _mint(not_before=time.time() + 120), "token not yet valid", id="not-yet-valid"
        ),
        pytest.param(
            lambda: _mint(secret="another-secret-that-is-long-enough-123"),
            "token signature invalid",
            id="forged",
        ),
        pytest.param(lambda: _mint(audience="x"), "token audience mismatch", id="audience"),
        pytest.param(lambda: _mint(key_id="1999-01"), "token signed with an unknown key", id="kid"),
        pytest.param(
            lambda: _mint(expires_in=3600), "token lifetime exceeds the key's max_lifetime",
            id="too-long",
        ),
        pytest.param(
            lambda: jwt.encode({"sub": "x", "targets": ["echo"]}, "", algorithm="none",
                               headers={"kid": "2026-11"}),
            "token signature invalid",
            id="alg-none",
        ),
    ],
)  # fmt: skip
async def test_bad_tokens_are_401(gateway: Gateway, token: Callable[[], str], message: str) -> None:
    response = await _post(gateway, token())
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "authentication"
    if message != "token signature invalid":
        assert error["message"] == message


async def test_wrong_target_is_403(gateway: Gateway) -> None:
    response = await _post(gateway, _mint(targets=["words"]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "authorization"


async def test_star_allows_every_target(gateway: Gateway) -> None:
    response = await _post(gateway, _mint(targets=["*"]), {"model": "private", "prompt": "x"})
    assert response.status_code == 200


async def test_the_caller_label_reaches_the_log_but_the_token_does_not(gateway: Gateway) -> None:
    token = _mint(caller="browser-logged")
    assert (await _post(gateway, token)).status_code == 200
    logs = gateway.wait_log('"caller":"browser-logged"')
    assert token not in logs
    assert token.split(".")[2] not in logs


async def test_rotated_keys_both_verify_by_key_id(
    gateways: Callable[[str, str], Gateway], backend: str
) -> None:
    gateway = gateways(ROTATION, backend)
    new = _mint(targets=["*"])
    old = _mint(key_id="2026-10", secret=OLD_SIGNING_KEY, targets=["*"])
    crossed = _mint(key_id="2026-10", secret=SIGNING_KEY, targets=["*"])
    assert (await _post(gateway, new)).status_code == 200
    assert (await _post(gateway, old)).status_code == 200
    assert (await _post(gateway, crossed)).status_code == 401


def test_mint_refuses_a_string_as_targets() -> None:
    with pytest.raises(TypeError):
        mint_gateway_token(SIGNING_KEY, key_id="k", caller="c", targets="echo")


def test_minted_token_is_a_standard_jwt() -> None:
    token = _mint(now=1_800_000_000.0, expires_in=120)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "2026-11", "typ": "JWT"}
    claims = jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], audience="sipp-gateway",
                        options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert claims == {
        "sub": "browser", "targets": ["echo"], "aud": "sipp-gateway",
        "iat": 1_800_000_000, "exp": 1_800_000_120,
    }  # fmt: skip
