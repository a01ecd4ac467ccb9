"""Driver discovery: entry points by name, lazily; failures isolated."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import pytest

import sipp
from sipp import (
    ConfigurationError,
    DriverLoadError,
    DriverNotFoundError,
    SippClient,
    register_driver,
    unregister_driver,
)
from sipp.driver import DRIVER_API_VERSION
from sipp.testing import ScriptedDescriptor, ScriptedFactory


def test_installed_drivers_lists_entry_points_with_their_distribution() -> None:
    found = {info.name: info for info in sipp.installed_drivers()}
    assert found["scripted"].distribution == "sipp"
    assert found["echo"].distribution == "sipp-example-echo"
    assert found["echo"].source == "sipp_example_echo:driver"


def test_import_sipp_imports_no_driver_and_no_httpx() -> None:
    code = (
        "import sys, sipp; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'sipp_example_echo', 'llama_cpp', 'importlib_metadata', 'asyncio', 'trio')"
        " or m == 'importlib.metadata']; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.anyio
async def test_unknown_kind_lists_installed_drivers() -> None:
    async with SippClient() as client:
        with pytest.raises(DriverNotFoundError) as caught:
            await client.add("x", {"kind": "no-such-kind"})
    assert "scripted" in caught.value.installed
    assert "echo" in str(caught.value)


@pytest.mark.anyio
async def test_provider_kind_resolves_to_provider_dot_name() -> None:
    async with SippClient() as client:
        with pytest.raises(DriverNotFoundError) as caught:
            await client.add("x", {"kind": "provider", "provider": "nobody", "model": "m"})
    assert caught.value.name == "provider.nobody"


@pytest.mark.anyio
async def test_plugin_that_fails_to_import_is_a_driver_load_error_and_others_work() -> None:
    async with SippClient() as client:
        with pytest.raises(DriverLoadError) as caught:
            await client.add("x", {"kind": "broken"})
        assert isinstance(caught.value.__cause__, ModuleNotFoundError)
        endpoint = await client.add("ok", {"kind": "echo"})
        assert (await client.query("still fine", endpoint=endpoint)).text == "still fine"


@pytest.mark.anyio
async def test_plugin_for_another_contract_version_is_refused() -> None:
    async with SippClient() as client:
        with pytest.raises(DriverLoadError, match="version 0"):
            await client.add("x", {"kind": "outdated"})


@pytest.mark.anyio
async def test_register_driver_without_metadata() -> None:
    class Custom(ScriptedFactory):
        descriptor_type: ClassVar[Any] = ScriptedDescriptor

    factory = Custom()
    register_driver("scripted", factory)
    try:
        async with SippClient() as client:
            await client.add("x", {"kind": "scripted", "reply": "from the registered one"})
            assert (await client.query("hi")).text == "from the registered one"
        assert len(factory.opened) == 1
    finally:
        unregister_driver("scripted")


def test_register_driver_refuses_an_incompatible_factory() -> None:
    class Old:
        api_version = DRIVER_API_VERSION + 1

    with pytest.raises(DriverLoadError):
        register_driver("old", Old())  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_typed_descriptor_of_the_wrong_type_is_refused() -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match="EchoDescriptor"):
            await client.add("x", ScriptedDescriptor(kind="echo"))  # type: ignore[arg-type]
