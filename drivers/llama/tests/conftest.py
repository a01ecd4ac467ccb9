"""Fixtures for the local driver's tests: the real test model, loaded per test.

Loading the 98 MB model takes well under a second, so each test opens its own
endpoint on its own backend (the anyio backend fixture is per test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sipp_llama.testing import test_model_path, without_chat_template


@pytest.fixture(scope="session")
def model_path() -> Path:
    return test_model_path()


@pytest.fixture(scope="session")
def no_template_model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return without_chat_template(model_path, tmp_path_factory.mktemp("gguf") / "plain.gguf")


@pytest.fixture
def descriptor(model_path: Path) -> dict[str, Any]:
    # One thread: on a shared 2-CPU machine a second llama.cpp thread that gets
    # descheduled stalls every layer; one thread keeps timings steady.
    return {"kind": "local", "source": str(model_path), "n_threads": 1, "n_ctx": 1024}
