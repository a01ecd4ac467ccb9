"""Configurations of the admin console tests (the ``[server]`` table is added per process)."""

from __future__ import annotations

ADMIN_PASSWORD = "correct horse battery staple 42"
ADMIN_ENV = {"GW_ADMIN_PASSWORD": ADMIN_PASSWORD}

CONSOLE = """
[server]
max_concurrent_requests = 64

[[targets]]
name = "echo"
kind = "scripted"

[[targets]]
name = "words"
kind = "scripted"
reply = "one two three four five six seven eight"
token_delay = 0.004

[[targets]]
name = "slow"
kind = "scripted"
reply = "a b c d e f g h"
token_delay = 0.05
max_concurrent = 2

[[targets]]
name = "broken"
kind = "scripted"
reply = "never"
fail_at = 0
failure = "provider"

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"

[[tokens]]
caller = "batch"
token_env = "GW_LIMITED_TOKEN"
rate_limit = { requests_per_minute = 6000, burst = 100 }

[security]
ip_rate_limit = { requests_per_minute = 60000, burst = 1000 }

[admin]
path = "/admin"
password_env = "GW_ADMIN_PASSWORD"
session_ttl = 600
login_rate_limit = { requests_per_minute = 60, burst = 20 }
"""
