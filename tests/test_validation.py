"""Hostile input to the request and descriptor converters: a typed error, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sipp import ChatRequest, ConfigurationError, InvalidRequestError, QueryRequest
from sipp._validation import convert_descriptor, convert_request
from sipp.testing import ScriptedDescriptor

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "prompt",
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "emit_tokens",
        "timeout",
        "retries",
        "local",
        "provider_options",
        "endpoint_options",
        "other",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6))
def test_query_requests_convert_or_fail_with_a_named_field(data: dict[str, Any]) -> None:
    for type_ in (QueryRequest, ChatRequest):
        try:
            convert_request(data, type_)
        except InvalidRequestError as error:
            message = str(error)
            assert message


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_descriptors_convert_or_fail_with_a_configuration_error(data: dict[str, Any]) -> None:
    try:
        convert_descriptor({"kind": "scripted", **data}, ScriptedDescriptor, "e")
    except ConfigurationError as error:
        message = str(error)
        assert "endpoint 'e'" in message
