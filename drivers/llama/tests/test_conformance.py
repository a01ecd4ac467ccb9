"""The core's conformance kit against the local driver and the real test model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sipp.testing.conformance import DriverConformance


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
