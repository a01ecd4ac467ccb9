"""The conformance kit's checks for contract v2's capabilities.

Each check runs only when the endpoint declares the capability, and every
capability it does not declare is checked to be refused before any I/O. A
mock can only produce a tool call or reasoning when asked the right way, so
each check takes its request from a fixture the driver's tests may
override (the defaults suit a model that follows instructions), and every
check talks to ``rich_descriptor`` (default: ``descriptor``), so a driver
whose mock needs a different script for these can supply one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import pytest

from .. import (
    ChatMessage,
    EndpointRef,
    ImagePart,
    InvalidRequestError,
    SippClient,
    TextPart,
    Tool,
    UnsupportedOperationError,
)
from .._descriptors import Descriptor
from .._tokens import merge_tool_deltas

__all__ = ["KIT_TOOL", "KitAnswer", "RichConformance", "TINY_PNG"]

#: The tool the default tool request offers.
KIT_TOOL = Tool(
    name="get_weather",
    description="The current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city"}},
        "required": ["city"],
    },
)

#: A valid 1x1 PNG, for the vision check.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e221bc33"
    "0000000049454e44ae426082"
)


class KitAnswer(msgspec.Struct):
    """The default structured-output type."""

    answer: str


class RichConformance:
    """Mixed into :class:`~sipp.testing.conformance.DriverConformance`."""

    endpoint_name: str

    # -- what a driver's tests may override ------------------------------------------

    @pytest.fixture
    def rich_descriptor(self, descriptor: Any) -> Any:
        """The endpoint the capability checks talk to (default: ``descriptor``)."""
        return descriptor

    @pytest.fixture
    def tool_call_request(self) -> dict[str, Any]:
        """``chat`` keyword arguments that make the endpoint ask for a tool call."""
        return {
            "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
            "tools": [KIT_TOOL],
            "tool_choice": KIT_TOOL.name,
        }

    @pytest.fixture
    def structured_request(self) -> dict[str, Any]:
        """``chat`` keyword arguments with ``output=`` that the endpoint can satisfy."""
        return {
            "messages": [{"role": "user", "content": "Answer in JSON: what is 2 + 2?"}],
            "output": KitAnswer,
            "max_tokens": 64,
        }

    @pytest.fixture
    def reasoning_request(self) -> dict[str, Any]:
        """``chat`` keyword arguments that make the endpoint reason before answering."""
        return {
            "messages": [{"role": "user", "content": "Think first: what is 17 * 3?"}],
            "reasoning": {"effort": "low"},
        }

    @pytest.fixture
    def vision_request(self) -> dict[str, Any]:
        """``chat`` keyword arguments with an image part."""
        message = ChatMessage(
            role="user",
            content=[
                TextPart(text="What colour is this pixel?"),
                ImagePart(data=TINY_PNG, media_type="image/png"),
            ],
        )
        return {"messages": [message], "max_tokens": 16}

    @pytest.fixture
    def embed_batch_inputs(self) -> list[str]:
        return ["first input", "second input", "third input"]

    @pytest.fixture
    async def rich_client(
        self, rich_descriptor: Descriptor | Mapping[str, Any]
    ) -> AsyncIterator[tuple[SippClient, EndpointRef]]:
        async with SippClient() as client:
            endpoint = await client.add(self.endpoint_name, rich_descriptor)
            yield client, endpoint

    # -- the checks ----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_missing_capabilities_are_refused_before_io(self, rich_client: Any) -> None:
        client, endpoint = rich_client
        caps = endpoint.capabilities
        if not caps.tools:
            with pytest.raises(UnsupportedOperationError, match="'tools'"):
                _text_call(client, endpoint, caps, tools=[KIT_TOOL])
        if not caps.structured_output:
            with pytest.raises(UnsupportedOperationError, match="'structured_output'"):
                _text_call(client, endpoint, caps, output=KitAnswer)
        if not caps.reasoning:
            with pytest.raises(UnsupportedOperationError, match="'reasoning'"):
                _text_call(client, endpoint, caps, reasoning={"effort": "low"})
        if caps.chat and not caps.vision:
            image = ImagePart(data=TINY_PNG, media_type="image/png")
            with pytest.raises(UnsupportedOperationError, match="'vision'"):
                client.chat([{"role": "user", "content": [image]}], endpoint=endpoint)
        if caps.embed and not caps.embed_batch:
            with pytest.raises(UnsupportedOperationError, match="'embed_batch'"):
                client.embed(["a", "b"], endpoint=endpoint)

    @pytest.mark.anyio
    async def test_declared_options_and_stats_types(
        self, rich_client: Any, request_options: Any
    ) -> None:
        client, endpoint = rich_client
        driver = client._endpoints[endpoint.name].driver  # the kit is part of the core
        caps = endpoint.capabilities
        options_type = getattr(driver, "options_type", None)
        if isinstance(options_type, type) and issubclass(options_type, msgspec.Struct):
            # A misspelt option must fail before any I/O, naming the key.
            with pytest.raises(InvalidRequestError) as caught:
                _text_call(client, endpoint, caps, options={"surely_not_an_option": 1})
            assert "surely_not_an_option" in str(caught.value)
        stats_type = getattr(driver, "stats_type", None)
        if stats_type is not None and caps.query:
            response = await client.query("Hello", endpoint=endpoint, **request_options)
            assert response.stats is None or isinstance(response.stats, stats_type)

    @pytest.mark.anyio
    async def test_tool_call_round_trip(self, rich_client: Any, tool_call_request: Any) -> None:
        client, endpoint = rich_client
        if not endpoint.capabilities.tools:
            pytest.skip("the endpoint does not declare tools")
        kwargs = dict(tool_call_request)
        messages = list(kwargs.pop("messages"))
        run = client.chat(messages, endpoint=endpoint, emit_tokens=True, **kwargs)
        batches = [batch async for batch in run.tokens]
        response = await run
        assert response.finish_reason == "tool_calls"
        assert response.tool_calls, "the endpoint asked for no tool call"
        offered = {tool.name for tool in kwargs["tools"]}
        for call in response.tool_calls:
            assert call.id
            assert call.name in offered
            assert isinstance(call.parsed_arguments, dict)
        # The streamed deltas add up to the response's calls, in order.
        deltas = merge_tool_deltas([d for batch in batches for d in batch.tool_calls])
        assert [(d.id, d.name, d.arguments) for d in deltas] == [
            (c.id, c.name, c.arguments) for c in response.tool_calls
        ]
        assert "".join(batch.text for batch in batches) == response.text
        assert response.message.tool_calls == response.tool_calls
        # Round trip: the results go back and the endpoint carries on.
        follow_up = [*messages, response.message]
        follow_up += [
            ChatMessage(role="tool", tool_call_id=call.id, content="12 °C and raining")
            for call in response.tool_calls
        ]
        kwargs["tool_choice"] = "none"
        answer = await client.chat(follow_up, endpoint=endpoint, **kwargs)
        assert answer.finish_reason in ("stop", "length")
        assert answer.tool_calls == []

    @pytest.mark.anyio
    async def test_run_tools_loop(self, rich_client: Any, tool_call_request: Any) -> None:
        client, endpoint = rich_client
        if not endpoint.capabilities.tools:
            pytest.skip("the endpoint does not declare tools")
        kwargs = dict(tool_call_request)
        messages = list(kwargs.pop("messages"))
        ran: list[dict[str, Any]] = []

        def handler(**arguments: Any) -> str:
            ran.append(arguments)
            return "12 °C and raining"

        kwargs["tools"] = [
            msgspec.structs.replace(_as_tool(tool), function=handler) for tool in kwargs["tools"]
        ]
        response = await client.run_tools(messages, endpoint=endpoint, max_turns=2, **kwargs)
        transcript = response.transcript
        assert transcript is not None
        first = transcript[0]
        assert first.role == "assistant"
        assert first.tool_calls
        answers = [m for m in transcript if m.role == "tool"]
        assert [m.tool_call_id for m in answers[: len(first.tool_calls)]] == [
            call.id for call in first.tool_calls
        ]
        assert len(ran) == len(answers)
        assert transcript[-1] == response.message

    @pytest.mark.anyio
    async def test_structured_output_is_parsed(
        self, rich_client: Any, structured_request: Any
    ) -> None:
        client, endpoint = rich_client
        if not endpoint.capabilities.structured_output:
            pytest.skip("the endpoint does not declare structured_output")
        kwargs = dict(structured_request)
        messages = list(kwargs.pop("messages"))
        response = await client.chat(messages, endpoint=endpoint, **kwargs)
        output = kwargs["output"]
        assert response.parsed is not None
        if isinstance(output, type):
            assert isinstance(response.parsed, output)
            assert msgspec.json.decode(response.text, type=output) == response.parsed
        else:
            assert msgspec.json.decode(response.text) == response.parsed

    @pytest.mark.anyio
    async def test_reasoning_is_never_in_the_text(
        self, rich_client: Any, reasoning_request: Any
    ) -> None:
        client, endpoint = rich_client
        if not endpoint.capabilities.reasoning:
            pytest.skip("the endpoint does not declare reasoning")
        kwargs = dict(reasoning_request)
        messages = list(kwargs.pop("messages"))
        run = client.chat(messages, endpoint=endpoint, emit_tokens=True, **kwargs)
        batches = [batch async for batch in run.tokens]
        response = await run
        assert response.reasoning, "the endpoint produced no reasoning"
        assert response.text
        assert response.reasoning not in response.text
        assert "".join(batch.reasoning for batch in batches) == response.reasoning
        assert "".join(batch.text for batch in batches) == response.text

    @pytest.mark.anyio
    async def test_an_image_part_is_accepted(self, rich_client: Any, vision_request: Any) -> None:
        client, endpoint = rich_client
        if not (endpoint.capabilities.vision and endpoint.capabilities.chat):
            pytest.skip("the endpoint does not declare vision")
        kwargs = dict(vision_request)
        messages = list(kwargs.pop("messages"))
        response = await client.chat(messages, endpoint=endpoint, **kwargs)
        assert response.finish_reason in ("stop", "length")

    @pytest.mark.anyio
    async def test_embed_batch_gives_one_vector_per_input(
        self, rich_client: Any, embed_batch_inputs: list[str]
    ) -> None:
        client, endpoint = rich_client
        if not (endpoint.capabilities.embed and endpoint.capabilities.embed_batch):
            pytest.skip("the endpoint does not declare embed_batch")
        response = await client.embed(embed_batch_inputs, endpoint=endpoint)
        assert len(response.vectors) == len(embed_batch_inputs)
        width = len(response.vectors[0])
        assert width > 0
        assert all(len(vector) == width for vector in response.vectors)
        assert response.values == response.vectors[0]
        single = await client.embed(embed_batch_inputs[0], endpoint=endpoint)
        assert single.vectors == [single.values]
        assert len(single.values) == width


def _as_tool(value: Any) -> Tool:
    return value if isinstance(value, Tool) else msgspec.convert(value, Tool)


def _text_call(client: SippClient, endpoint: EndpointRef, caps: Any, **kwargs: Any) -> Any:
    if caps.chat:
        return client.chat([{"role": "user", "content": "hi"}], endpoint=endpoint, **kwargs)
    return client.query("hi", endpoint=endpoint, **kwargs)
