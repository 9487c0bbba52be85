#!/usr/bin/env bash
# The whole loop on this machine: built-in simulator + synthetic camera + the agent + 3 jobs.
# Usage: ./scripts/demo.sh [--count N] [--serve]
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/edge-agent demo "$@"
