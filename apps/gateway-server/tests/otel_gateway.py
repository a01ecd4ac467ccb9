"""``python otel_gateway.py serve --config FILE``: the gateway with an OpenTelemetry SDK set up.

As a deployment with tracing would run it: a recording tracer provider is
installed before the gateway starts, so the gateway's runs have spans.
"""

import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

trace.set_tracer_provider(TracerProvider())

from sipp_gateway_server._cli import main  # noqa: E402

sys.exit(main())
