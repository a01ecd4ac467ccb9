"""SippClient: lifecycle, endpoints, resolution and validation before any I/O."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from sipp import (
    ChatRequest,
    ClientClosedError,
    ConfigurationError,
    EmbedRequest,
    EndpointNotFoundError,
    InvalidRequestError,
    LocalOptions,
    QueryRequest,
    SippClient,
    UnsupportedOperationError,
)
from sipp.testing import ScriptedDescriptor, scripted_driver


@pytest.mark.anyio
async def test_using_a_client_that_is_not_open_fails_at_once() -> None:
    client = SippClient()
    with pytest.raises(ClientClosedError, match="not open"):
        client.query("hi")
    with pytest.raises(ClientClosedError, match="not open"):
        await client.add("x", {"kind": "scripted"})
    async with client:
        pass
    with pytest.raises(ClientClosedError, match="closed"):
        client.embed("hi")
    await client.aclose()  # idempotent


@pytest.mark.anyio
async def test_closing_closes_every_endpoint() -> None:
    async with SippClient() as client:
        await client.add("a", {"kind": "scripted"})
        await client.add("b", ScriptedDescriptor())
        drivers = scripted_driver.opened[-2:]
        assert not any(d.closed for d in drivers)
    assert all(d.closed for d in drivers)


@pytest.mark.anyio
async def test_endpoints_get_and_remove() -> None:
    async with SippClient() as client:
        ref = await client.add("a", {"kind": "scripted"})
        assert client.get("a") == ref
        assert dict(client.endpoints) == {"a": ref}
        with pytest.raises(TypeError):
            client.endpoints["b"] = ref  # type: ignore[index]
        client.remove("a")
        assert dict(client.endpoints) == {}
        with pytest.raises(EndpointNotFoundError):
            client.get("a")
        with pytest.raises(EndpointNotFoundError):
            client.remove("a")


@pytest.mark.anyio
async def test_replacing_an_endpoint_lets_runs_in_flight_finish_on_the_old_one() -> None:
    async with SippClient() as client:
        await client.add("m", {"kind": "scripted", "reply": "old one two", "token_delay": 0.02})
        old_driver = scripted_driver.opened[-1]
        run = client.query("x", endpoint="m", emit_tokens=True)
        async for _ in run.tokens:
            break
        await client.add("m", {"kind": "scripted", "reply": "new"})
        assert (await client.query("x", endpoint="m")).text == "new"
        assert not old_driver.closed
        assert (await run).text == "old one two"
        await anyio.sleep(0.01)
        assert old_driver.closed


@pytest.mark.anyio
async def test_endpoint_is_inferred_only_when_exactly_one_can_serve() -> None:
    async with SippClient() as client:
        with pytest.raises(EndpointNotFoundError, match="none registered"):
            client.query("hi")
        await client.add("embedder", {"kind": "scripted", "embedding": [1.0]})
        await client.add("talker", {"kind": "echo"})
        with pytest.raises(EndpointNotFoundError, match="embedder, talker"):
            client.query("hi")
        # only one endpoint can embed
        assert (await client.embed("x")).endpoint.name == "embedder"


@pytest.mark.anyio
async def test_unknown_endpoint_names_the_registered_ones() -> None:
    async with SippClient() as client:
        await client.add("a", {"kind": "scripted"})
        with pytest.raises(EndpointNotFoundError, match=r"'b'.*registered: a"):
            client.query("hi", endpoint="b")


@pytest.mark.anyio
async def test_unsupported_operation_is_refused_before_io() -> None:
    async with SippClient() as client:
        await client.add("q", {"kind": "scripted", "chat": False})
        with pytest.raises(UnsupportedOperationError, match="use query"):
            client.chat([{"role": "user", "content": "hi"}], endpoint="q")
        with pytest.raises(UnsupportedOperationError, match="embed"):
            client.embed("hi", endpoint="q")
        assert scripted_driver.opened[-1].attempts == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"max_tokens": 0}, "max_tokens", id="max_tokens-zero"),
        pytest.param({"max_tokens": "5"}, "max_tokens", id="max_tokens-string"),
        pytest.param({"temperature": float("nan")}, "temperature", id="temperature-nan"),
        pytest.param({"temperature": -0.1}, "temperature", id="temperature-negative"),
        pytest.param({"top_p": 1.5}, "top_p", id="top_p-above-one"),
        pytest.param({"stop": "END"}, "stop", id="stop-not-a-list"),
        pytest.param({"stop": [1]}, "stop", id="stop-not-strings"),
        pytest.param({"emit_tokens": "yes"}, "emit_tokens", id="emit_tokens-string"),
        pytest.param({"bogus": 1}, "bogus", id="unknown-option"),
        pytest.param({"timeout": {"idle": 0}}, "timeout", id="timeout-zero"),
        pytest.param({"retries": -1}, "retries", id="retries-negative"),
    ],
)
@pytest.mark.anyio
async def test_invalid_options_name_the_field_before_any_io(
    options: dict[str, Any], field: str
) -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted"})
        with pytest.raises(InvalidRequestError) as caught:
            client.query("hi", **options)
        assert caught.value.field is not None
        assert caught.value.field.startswith(field)
        assert scripted_driver.opened[-1].attempts == 0


@pytest.mark.anyio
async def test_extras_are_refused_on_the_wrong_kind_of_endpoint() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted"})
        with pytest.raises(InvalidRequestError, match="only by local endpoints") as caught:
            client.query("hi", local={"context_key": "k"})
        assert caught.value.field == "local"
        with pytest.raises(InvalidRequestError, match="only by provider endpoints"):
            client.query("hi", provider_options={"logprobs": True})
        with pytest.raises(InvalidRequestError, match="only by gateway endpoints"):
            client.chat([{"role": "user", "content": "x"}], endpoint_options={"a": 1})


@pytest.mark.anyio
async def test_request_objects_pass_straight_through_and_options_override() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "token_delay": 0.001})
        request = QueryRequest(prompt="one two three", emit_tokens=True)
        run = client.query(request)
        assert [b.text async for b in run.tokens] == ["one ", "two ", "three"]
        chat = ChatRequest(messages=[{"role": "user", "content": "hey you"}])  # type: ignore[list-item]
        assert (await client.chat(chat)).text == "hey you"
        with pytest.raises(InvalidRequestError, match="expected a QueryRequest"):
            client.query(chat)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="max_tokens"):
            client.query(request, max_tokens=-3)


@pytest.mark.anyio
async def test_chat_messages_are_validated() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted"})
        with pytest.raises(InvalidRequestError) as caught:
            client.chat([{"role": "robot", "content": "x"}])
        assert caught.value.field == "messages[0].role"
        with pytest.raises(InvalidRequestError, match="messages"):
            client.chat([])
        with pytest.raises(InvalidRequestError):
            client.chat([{"role": "user"}])


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        pytest.param({"kind": "scripted", "bogus": 1}, "unknown key 'bogus'", id="unknown-key"),
        pytest.param({"kind": "scripted", "token_delay": "x"}, "'token_delay'", id="wrong-type"),
        pytest.param({"kind": "scripted", "timeout": {"soon": 1}}, "'timeout.soon'", id="nested"),
        pytest.param({"source": "x.gguf"}, "'kind'", id="no-kind"),
        pytest.param({"kind": "provider", "model": "m"}, "'provider'", id="no-provider"),
        pytest.param("scripted", "not str", id="not-a-dict"),
    ],
)
@pytest.mark.anyio
async def test_bad_descriptors_name_the_key(descriptor: Any, message: str) -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match=message):
            await client.add("bad", descriptor)
        assert dict(client.endpoints) == {}


@pytest.mark.anyio
async def test_local_options_typed_object_is_accepted_by_a_local_capable_driver() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted"})
        with pytest.raises(InvalidRequestError, match="local"):
            client.query("hi", local=LocalOptions(context_key="k"))


@pytest.mark.anyio
async def test_extras_may_not_override_a_typed_wire_field() -> None:
    async with SippClient() as client:
        await client.add("g", {"kind": "echo"})
        endpoint = client._endpoints["g"]
        request = QueryRequest(prompt="x", endpoint_options={"max_tokens": 3, "user": "u"})
        from sipp._client import _check_extras

        object.__setattr__(endpoint.driver, "capabilities", _with_extras("endpoint_options"))
        with pytest.raises(InvalidRequestError, match="'max_tokens'") as caught:
            _check_extras(request, endpoint)
        assert caught.value.field == "endpoint_options.max_tokens"
        # a key the wire does not type passes through, on embed even `stream` does
        _check_extras(QueryRequest(prompt="x", endpoint_options={"user": "u"}), endpoint)
        _check_extras(EmbedRequest(input="x", endpoint_options={"stream": True}), endpoint)


def _with_extras(extras: str) -> Any:
    from sipp.driver import Capabilities

    return Capabilities(extras=extras)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_endpoint_refs_carry_capabilities() -> None:
    async with SippClient() as client:
        ref = await client.add("e", {"kind": "scripted", "embedding": [1.0], "chat": False})
        assert ref.capabilities.embed
        assert not ref.capabilities.chat
        assert client.get("e").capabilities == ref.capabilities
