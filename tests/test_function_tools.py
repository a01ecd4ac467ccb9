"""sipp.tool: JSON schemas from type hints and docstrings, and clear errors for the rest."""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any, Literal, Optional, TypedDict

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sipp
from sipp import InvalidRequestError, Tool


class Location(msgspec.Struct):
    lat: float
    lon: float


@dataclasses.dataclass
class Filters:
    verbose: bool = False
    tags: list[str] = dataclasses.field(default_factory=list)


class Span(TypedDict):
    start: int
    end: int


class Opaque:
    """Not a type msgspec can describe."""


class Node(msgspec.Struct):
    name: str
    children: list[Node] = []


def test_plain_types_required_and_defaults() -> None:
    def search(query: str, limit: int = 10, ratio: float = 0.5, exact: bool = False) -> str:
        return query

    tool = sipp.tool(search)
    assert isinstance(tool, Tool)
    assert tool.name == "search"
    assert tool.function is search
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "default": 10},
            "ratio": {"type": "number", "default": 0.5},
            "exact": {"type": "boolean", "default": False},
        },
        "required": ["query"],
    }


def test_docstring_first_paragraph_and_google_args() -> None:
    @sipp.tool
    def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        """Current weather
        for a city.

        Longer prose that is not the description.

        Args:
            city: the city name,
                as people write it.
            unit (str): Celsius or Fahrenheit.

        Returns:
            a sentence.
        """
        return city

    assert weather.description == "Current weather for a city."
    properties = weather.parameters["properties"]
    assert properties["city"] == {
        "type": "string",
        "description": "the city name, as people write it.",
    }
    assert properties["unit"] == {
        "enum": ["C", "F"],
        "description": "Celsius or Fahrenheit.",
        "default": "C",
    }
    assert weather.parameters["required"] == ["city"]


def test_containers_optional_and_literal() -> None:
    def f(
        tags: list[str],
        scores: dict[str, float],
        mode: Literal["a", "b"],
        note: Optional[str] = None,  # noqa: UP045 (Optional is what the spec names)
        extra: int | None = None,
    ) -> None:
        pass

    properties = sipp.tool(f).parameters["properties"]
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert properties["mode"] == {"enum": ["a", "b"]}
    assert properties["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert properties["extra"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert sipp.tool(f).parameters["required"] == ["tags", "scores", "mode"]


def test_structs_dataclasses_and_typeddicts_are_inlined() -> None:
    def locate(where: Location, filters: Filters, span: Span | None = None) -> None:
        pass

    parameters = sipp.tool(locate).parameters
    assert "$defs" not in parameters
    assert "$ref" not in msgspec.json.encode(parameters).decode()
    where = parameters["properties"]["where"]
    assert where["type"] == "object"
    assert where["required"] == ["lat", "lon"]
    filters = parameters["properties"]["filters"]
    assert filters["properties"]["tags"]["items"] == {"type": "string"}
    span = parameters["properties"]["span"]["anyOf"][0]
    assert span["properties"] == {"start": {"type": "integer"}, "end": {"type": "integer"}}


def test_recursive_types_keep_their_defs() -> None:
    def walk(root: Node) -> None:
        pass

    parameters = sipp.tool(walk).parameters
    assert parameters["properties"]["root"] == {"$ref": "#/$defs/Node"}
    assert set(parameters["$defs"]) == {"Node"}
    children = parameters["$defs"]["Node"]["properties"]["children"]
    assert children["items"] == {"$ref": "#/$defs/Node"}


def test_annotated_meta_description_wins_over_docstring() -> None:
    def f(n: Annotated[int, msgspec.Meta(ge=1, description="how many")]) -> None:
        """Do it.

        Args:
            n: ignored, the annotation says it.
        """

    assert sipp.tool(f).parameters["properties"]["n"] == {
        "type": "integer",
        "minimum": 1,
        "description": "how many",
    }


def test_decorator_with_options_and_async_functions() -> None:
    @sipp.tool(name="lookup_v2", description="Look a thing up.")
    async def lookup(key: str) -> str:
        """Ignored."""
        return key

    assert lookup.name == "lookup_v2"
    assert lookup.description == "Look a thing up."
    assert callable(lookup.function)


def test_methods_partials_and_tools_pass_through() -> None:
    class Service:
        def fetch(self, url: str) -> str:
            return url

    tool = sipp.tool(Service().fetch)
    assert list(tool.parameters["properties"]) == ["url"]

    def scaled(x: int, factor: int) -> int:
        return x * factor

    partial = sipp.tool(functools.partial(scaled, factor=2), name="double")
    assert partial.name == "double"
    assert sipp.tool(partial) is partial


def test_plain_functions_are_accepted_as_tools_by_requests() -> None:
    from sipp import ChatRequest

    def ping(host: str) -> str:
        return host

    request = ChatRequest(
        messages=[sipp.ChatMessage(role="user", content="x")], tools=[sipp.tool(ping)]
    )
    assert request.tools is not None and request.tools[0].name == "ping"


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (lambda x: x, "name"),
        (functools.partial(lambda x: x), "name"),
    ],
)
def test_nameless_callables_need_a_name(function: Any, expected: str) -> None:
    with pytest.raises(InvalidRequestError, match=expected):
        sipp.tool(function)


def test_missing_hints_varargs_and_unsupported_types_are_refused() -> None:
    def no_hint(city) -> str:  # type: ignore[no-untyped-def]
        return str(city)

    def var_args(*cities: str) -> None:
        pass

    def var_kwargs(**cities: str) -> None:
        pass

    def callback(fn: Any) -> None:
        pass

    def opaque(thing: Opaque) -> None:
        pass

    def bad_ref(thing: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(InvalidRequestError, match="'city' needs a type hint"):
        sipp.tool(no_hint)
    with pytest.raises(InvalidRequestError, match=r"\*cities"):
        sipp.tool(var_args)
    with pytest.raises(InvalidRequestError, match=r"\*cities"):
        sipp.tool(var_kwargs)
    with pytest.raises(InvalidRequestError, match="cannot describe"):
        sipp.tool(opaque)
    with pytest.raises(InvalidRequestError, match="cannot resolve its type hints"):
        sipp.tool(bad_ref)
    with pytest.raises(InvalidRequestError, match="needs a function"):
        sipp.tool(42)  # type: ignore[call-overload]
    # Any is allowed: an unconstrained argument.
    assert sipp.tool(callback).parameters["properties"]["fn"] == {}


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_hostile_docstrings_never_crash(doc: str) -> None:
    def f(city: str, unit: str = "C") -> None:
        pass

    f.__doc__ = doc
    tool = sipp.tool(f)
    assert isinstance(tool.description, str)
    assert "\n" not in tool.description
    for schema in tool.parameters["properties"].values():
        assert isinstance(schema.get("description", ""), str)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_hostile_names_are_refused_or_kept_exactly(name: str) -> None:
    def f(x: int) -> None:
        pass

    valid = 1 <= len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    if valid:
        assert sipp.tool(f, name=name).name == name
    else:
        with pytest.raises(InvalidRequestError, match="tool name"):
            sipp.tool(f, name=name)


def test_an_unresolvable_return_hint_does_not_matter() -> None:
    def lookup(key: str) -> OnlyForTypeCheckers:  # type: ignore[name-defined]  # noqa: F821
        raise NotImplementedError

    assert sipp.tool(lookup).parameters["properties"] == {"key": {"type": "string"}}

    @functools.wraps(lookup)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return lookup(*args, **kwargs)

    # A decorated function is described by the function it wraps.
    assert sipp.tool(wrapped).parameters["properties"] == {"key": {"type": "string"}}


def test_callable_objects_are_described_by_their_call() -> None:
    class Counter:
        limit: int = 3

        async def __call__(self, step: int = 1) -> int:
            return step

    tool = sipp.tool(Counter(), name="count")
    assert tool.parameters["properties"] == {"step": {"type": "integer", "default": 1}}
    from sipp._function_tools import signature_of

    assert signature_of(tool.function).is_async
