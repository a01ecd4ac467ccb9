"""Configurations the end-to-end tests serve (the ``[server]`` table is added per process)."""

from __future__ import annotations

MAIN = """
[server]
max_request_bytes = 2048
max_concurrent_requests = 64
drain_timeout = 2.0
allowed_origins = ["https://app.example"]

[[targets]]
name = "echo"
kind = "scripted"

[[targets]]
name = "words"
kind = "scripted"
reply = "one two three four five six seven eight"
token_delay = 0.005

[[targets]]
name = "private"
kind = "scripted"
reply = "private answer"

[[targets]]
name = "slow"
kind = "scripted"
reply = "a b c d e f g h i j k l m n o p q r s t"
token_delay = 0.1
max_concurrent = 1

[[targets]]
name = "broken"
kind = "scripted"
reply = "never"
fail_at = 0
failure = "provider"

[[targets]]
name = "busy"
kind = "scripted"
reply = "never"
fail_at = 0
failure = "rate_limited"
retry_after = 7

[[targets]]
name = "midway"
kind = "scripted"
reply = "one two three four"
fail_at = 2
failure = "transport"

[[targets]]
name = "vectors"
kind = "scripted"
embedding = [0.25, -0.5]

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
targets = ["echo", "words", "slow", "broken", "busy", "midway", "vectors"]

[[tokens]]
caller = "admin"
token_env = "GW_ADMIN_TOKEN"

[[tokens]]
caller = "limited"
token_env = "GW_LIMITED_TOKEN"
targets = ["echo"]
rate_limit = { requests_per_minute = 6, burst = 2 }

[[signing_keys]]
key_id = "2026-11"
secret_env = "GW_SIGNING_KEY"
audience = "sipp-gateway"
max_lifetime = 900

[security]
client_ip = "x_forwarded_for"
trusted_proxies = ["127.0.0.1/32"]
blocklist = ["203.0.113.0/24"]
"""

#: Its own gateway: the per-IP limit would otherwise throttle the other tests.
IP_LIMITED = """
[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"

[security]
ip_rate_limit = { requests_per_minute = 60, burst = 3 }
"""

#: Key rotation: the old key still verifies until it is removed.
ROTATION = """
[[targets]]
name = "echo"
kind = "scripted"

[[signing_keys]]
key_id = "2026-11"
secret_env = "GW_SIGNING_KEY"

[[signing_keys]]
key_id = "2026-10"
secret_env = "GW_OLD_SIGNING_KEY"
"""
