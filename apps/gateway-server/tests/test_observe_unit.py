"""The observer's per-request bookkeeping: the access-log line and the metric series.

The request path's observer caches metric children and writes the access
log with msgspec; what it writes must be what ``json.dumps`` of the record
wrote, every field, for any name a client can send.
"""

from __future__ import annotations

import json
import logging

import pytest
from sipp_gateway_server._observe import Metrics, Observer, RecentRequests, RequestRecord


def _observer() -> Observer:
    metrics = Metrics(lambda: [], lambda: 0)
    return Observer(
        metrics, RecentRequests(), access_log=True, targets=["mock"], callers=["web-app"]
    )


def _record(target: str = "mock", caller: str = "web-app", status: int = 200) -> RequestRecord:
    record = RequestRecord("req_1", "openai.chat", 0.0, client="192.0.2.1", caller=caller)
    record.target, record.status, record.tokens_in, record.tokens_out = target, status, 5, 8
    return record


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("mock", id="configured"),
        pytest.param("naïve-\u2028-target", id="non-ascii"),
        pytest.param('quote"back\\slash\nnewline', id="escapes"),
    ],
)
def test_the_log_line_is_json_dumps_of_the_record(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    observer = _observer()
    with caplog.at_level(logging.INFO, logger="sipp.gateway.access"):
        observer.finish(_record(target))
    (message,) = [r.getMessage() for r in caplog.records if r.name == "sipp.gateway.access"]
    shown = observer.recent.items[-1]
    assert message == json.dumps(shown, separators=(",", ":"))
    assert set(json.loads(message)) == {
        "time", "request_id", "client", "caller", "target", "route", "status", "code",
        "latency_ms", "ttft_ms", "tokens_in", "tokens_out", "stream", "cancel_reason",
    }  # fmt: skip


def test_the_log_time_moves_on_with_the_clock() -> None:
    from sipp_gateway_server import _observe

    assert _observe._timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert _observe._timestamp(1.25) == "1970-01-01T00:00:01.250Z"
    assert _observe._timestamp(86399.999) == "1970-01-01T23:59:59.999Z"
    assert _observe._timestamp(86400.5) == "1970-01-02T00:00:00.500Z"


def test_each_request_counts_in_its_own_series() -> None:
    observer = _observer()
    for status in (200, 200, 429):
        observer.finish(_record(status=status))
    observer.finish(_record(caller="other"))
    observer.rejected("rate")
    text = observer.metrics.render().decode()
    assert 'caller="web-app",route="openai.chat",status="200",target="mock"} 2.0' in text
    assert 'caller="web-app",route="openai.chat",status="429",target="mock"} 1.0' in text
    assert 'caller="other",route="openai.chat",status="200",target="mock"} 1.0' in text
    assert 'sipp_gateway_input_tokens_total{caller="web-app",target="mock"} 15.0' in text
    assert 'sipp_gateway_rejections_total{reason="rate"} 1.0' in text
    latency = 'sipp_gateway_request_duration_seconds_count{route="openai.chat",target="mock"}'
    assert f"{latency} 4.0" in text
