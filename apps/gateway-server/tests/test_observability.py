"""Metrics, request logs, health, readiness and the status page, on the real process."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import httpx
import pytest
from gw_configs import MAIN
from gwtest import ADMIN_TOKEN, ENV, TOKEN, Gateway

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def gateway(gateways: Callable[[str, str], Gateway], backend: str) -> Gateway:
    return gateways(MAIN, backend)


async def test_metrics_count_requests_tokens_and_rejections(gateway: Gateway) -> None:
    marker = f"PROMPT-MARKER-{os.urandom(4).hex()}"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        body = {"model": "words", "prompt": marker, "stream": True}
        assert (await http.post("/v1/query", json=body, headers=AUTH)).status_code == 200
        assert (await http.post("/v1/query", json=body)).status_code == 401
        bad = {"authorization": "Bearer not-a-real-token-SECRETISH"}
        assert (await http.post("/v1/query", json=body, headers=bad)).status_code == 401
        # Metrics are on the management listener only.
        assert (await http.get("/metrics")).status_code == 404
        metrics = (await http.get(f"{gateway.management}/metrics")).text
    assert (
        'sipp_gateway_requests_total{caller="web-app",route="query",status="200",target="words"}'
        in metrics
    )
    assert 'sipp_gateway_rejections_total{reason="auth"}' in metrics
    assert 'sipp_gateway_time_to_first_token_seconds_count{target="words"}' in metrics
    assert 'sipp_gateway_output_tokens_total{caller="web-app",target="words"}' in metrics
    assert 'sipp_gateway_target_in_flight{target="slow"}' in metrics
    assert "sipp_gateway_in_flight " in metrics
    assert "sipp_gateway_upstream_errors_total" in metrics
    logs = gateway.wait_log('"status":401')
    for secret in (marker, *ENV.values(), "SECRETISH", "one two three"):
        assert secret not in metrics
        assert secret not in logs


async def test_one_json_log_line_per_request(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        headers = {**AUTH, "x-request-id": f"log-{os.urandom(4).hex()}"}
        await http.post("/v1/query", json={"model": "words", "prompt": "x"}, headers=headers)
    logs = gateway.wait_log(headers["x-request-id"])
    line = next(json.loads(x) for x in logs.splitlines() if headers["x-request-id"] in x)
    assert line["caller"] == "web-app"
    assert line["target"] == "words"
    assert line["route"] == "query"
    assert line["status"] == 200
    assert line["tokens_in"] == 1
    assert line["tokens_out"] == 8
    assert line["stream"] is False
    assert line["latency_ms"] > 0
    assert set(line) >= {"time", "request_id", "ttft_ms", "cancel_reason"}


async def test_health_readiness_and_status_page(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.management, timeout=10) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        page = await http.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert "<td>slow</td>" in page.text
        assert TOKEN not in page.text
        status = (await http.get("/status.json")).json()
        assert {t["name"] for t in status["targets"]} >= {"echo", "slow"}


async def test_refused_target_names_never_become_metric_labels(gateway: Gateway) -> None:
    # Item 2 of issue 11: a caller's `model` string became a label, even on 403/404.
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        before = len((await http.get(f"{gateway.management}/metrics")).content)
        for index in range(40):
            name = f"huge-{index:02d}-" + "x" * 1800
            headers = AUTH if index % 2 else admin  # 403 (not allowed) and 404 (unknown)
            response = await http.post(
                "/v1/query", json={"model": name, "prompt": "p"}, headers=headers
            )
            assert response.status_code == (403 if index % 2 else 404)
        metrics = (await http.get(f"{gateway.management}/metrics")).text
    assert "huge-" not in metrics
    assert 'target="_unknown"' in metrics
    # One more set of series at most, never one per refused name.
    assert len(metrics.encode()) < before + 8_000
    logs = gateway.wait_log("huge-39")
    assert "x" * 100 not in logs  # the log keeps a bounded prefix of the name
