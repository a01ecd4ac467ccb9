"""The core's conformance kit against the local driver and the real test model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sipp.testing.conformance import DriverConformance, KitAnswer


class TestLocalConformance(DriverConformance):
    # A raw completion prompt: the kit's instruction-style default makes this
    # small model end at once under greedy sampling.
    prompt = "Once upon a time, a lighthouse keeper"

    @pytest.fixture
    def descriptor(self, model_path: Path) -> dict[str, Any]:
        return {
            "kind": "local",
            "source": str(model_path),
            "n_threads": 1,
            "n_ctx": 512,
            "embeddings": True,
        }

    @pytest.fixture
    def request_options(self) -> dict[str, Any]:
        return {"max_tokens": 24, "temperature": 0}

    @pytest.fixture
    def rich_descriptor(self, descriptor: dict[str, Any]) -> dict[str, Any]:
        # Tool schemas and tool turns make longer prompts than the text checks.
        return {**descriptor, "n_ctx": 2048}

    @pytest.fixture
    def structured_request(self) -> dict[str, Any]:
        # Greedy: sampled, the tiny model now and then writes a control character
        # inside the JSON string, which the grammar allows and JSON does not.
        return {
            "messages": [{"role": "user", "content": "Answer in JSON: what is 2 + 2?"}],
            "output": KitAnswer,
            "max_tokens": 64,
            "temperature": 0,
        }

    @pytest.fixture
    def reasoning_request(self) -> dict[str, Any]:
        # The test model does not think on its own: a grammar makes it open with a
        # <think> block, which the driver must stream as reasoning.
        return {
            "messages": [{"role": "user", "content": "What is 17 * 3? Think first."}],
            "reasoning": {"effort": "low"},
            "local": {"grammar": THINK_GRAMMAR},
            "max_tokens": 64,
            "temperature": 0,
        }


THINK_GRAMMAR = r"""
root ::= "<think>" thought "</think>" "\n" answer
thought ::= [a-zA-Z0-9 ,.*]{1,40}
answer ::= [a-zA-Z0-9 ,.*]{1,20}
"""
