"""SippClient: lifecycle, endpoints, resolution and validation before any I/O."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

from sipp import (
    ChatRequest,
    ClientClosedError,
    ConfigurationError,
    EmbedRequest,
    EndpointNotFoundError,
    InvalidRequestError,
    QueryRequest,
    SippClient,
    UnsupportedOperationError,
    register_driver,
    unregister_driver,
)
from sipp.testing import ScriptedDescriptor, ScriptedDriver, scripted_driver


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


@pytest.mark.anyio
async def test_a_misspelt_option_is_a_type_error_like_any_python_call() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted"})
        with pytest.raises(TypeError, match="max_token"):
            client.query("hi", max_token=3)  # type: ignore[call-arg]


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
async def test_options_are_refused_by_an_endpoint_that_takes_none() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted"})
        with pytest.raises(InvalidRequestError, match="local= is not accepted") as caught:
            client.query("hi", local={"context_key": "k"})
        assert caught.value.field == "local"
        with pytest.raises(InvalidRequestError, match="provider_options= is not accepted"):
            client.query("hi", provider_options={"logprobs": True})
        with pytest.raises(InvalidRequestError, match="takes no per-request options"):
            client.chat([{"role": "user", "content": "x"}], options={"a": 1})


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


class _AnyKind(ScriptedDescriptor, frozen=True, kw_only=True):
    kind: str = "any"  # type: ignore[assignment]


class _Knobs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    depth: int = 1


class _OptionsDriver(ScriptedDriver):
    """A scripted endpoint that declares its own options, as a v2 driver does."""

    def __init__(self, descriptor: ScriptedDescriptor, options_type: Any, keyword: str) -> None:
        super().__init__(descriptor)
        self.options_type = options_type
        self.options_keyword = keyword
        self.seen: list[Any] = []

    async def query(self, request: QueryRequest, call: Any) -> Any:
        self.seen.append(request.options)
        return await super().query(request, call)

    async def embed(self, request: EmbedRequest, call: Any) -> Any:
        self.seen.append(request.options)
        return await super().embed(request, call)


class _OptionsFactory:
    api_version = 2
    descriptor_type = _AnyKind

    def __init__(self, options_type: Any, keyword: str) -> None:
        self.options_type = options_type
        self.keyword = keyword
        self.opened: list[_OptionsDriver] = []

    async def open(self, descriptor: Any, context: Any) -> _OptionsDriver:
        driver = _OptionsDriver(descriptor, self.options_type, self.keyword)
        self.opened.append(driver)
        return driver


@pytest.mark.anyio
async def test_a_drivers_own_options_type_is_validated_and_converted_before_any_io() -> None:
    factory = _OptionsFactory(_Knobs, "knobs")
    register_driver("knobbed", factory)  # type: ignore[arg-type]
    try:
        async with SippClient() as client:
            await client.add("k", {"kind": "knobbed"})
            await client.query("hi", options={"depth": 3})
            await client.query("hi", options=_Knobs(depth=4))
            assert factory.opened[0].seen == [_Knobs(depth=3), _Knobs(depth=4)]
            with pytest.raises(InvalidRequestError, match="bogus") as caught:
                client.query("hi", options={"bogus": 1})
            assert caught.value.field == "options.bogus"
            with pytest.raises(InvalidRequestError, match="it takes options= or knobs="):
                client.query("hi", local={"depth": 1})
            assert factory.opened[0].attempts == 2
    finally:
        unregister_driver("knobbed")


@pytest.mark.anyio
async def test_free_form_options_may_not_override_a_typed_wire_field() -> None:
    factory = _OptionsFactory(dict, "endpoint_options")
    register_driver("freeform", factory)  # type: ignore[arg-type]
    try:
        async with SippClient() as client:
            await client.add("g", {"kind": "freeform", "embedding": [1.0]})
            with pytest.raises(InvalidRequestError, match="'max_tokens'") as caught:
                client.query("x", endpoint_options={"max_tokens": 3, "user": "u"})
            assert caught.value.field == "endpoint_options.max_tokens"
            # a key the wire does not type passes through, on embed even `stream` does
            await client.query("x", endpoint_options={"user": "u"})
            await client.embed("x", endpoint_options={"stream": True})
            assert factory.opened[0].seen == [{"user": "u"}, {"stream": True}]
    finally:
        unregister_driver("freeform")


@pytest.mark.anyio
async def test_endpoint_refs_carry_capabilities() -> None:
    async with SippClient() as client:
        ref = await client.add("e", {"kind": "scripted", "embedding": [1.0], "chat": False})
        assert ref.capabilities.embed
        assert not ref.capabilities.chat
        assert client.get("e").capabilities == ref.capabilities
