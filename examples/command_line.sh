#!/usr/bin/env bash
# The `sipp` command (pip install "sipp[cli]"): named endpoints, piped prompts, JSON, stats.
# Runs with no model and no key: the endpoint is the deterministic `scripted` kind.
# Real endpoints look like:
#   sipp endpoints add claude --kind provider --provider anthropic \
#        --model claude-sonnet-4-5 --api-key-env ANTHROPIC_API_KEY
#   sipp chat -e claude
set -euo pipefail

# A throwaway config dir for the example; normally $XDG_CONFIG_HOME/sipp (~/.config/sipp).
export SIPP_CONFIG_DIR="$(mktemp -d)"
trap 'rm -rf "$SIPP_CONFIG_DIR"' EXIT
sipp=(python3 -m sipp)
[ -n "${PYTHON:-}" ] && sipp=("$PYTHON" -m sipp)

"${sipp[@]}" endpoints add bot --kind scripted --set reply="Piped prompts work."
"${sipp[@]}" endpoints list --json
echo "What do pipes do?" | "${sipp[@]}" query -e bot --stats   # stats go to stderr
"${sipp[@]}" query -e bot -s "Be brief." --json "hello" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["text"], r["finish_reason"])'
"${sipp[@]}" endpoints remove bot
