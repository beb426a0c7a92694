#!/usr/bin/env bash
# `make run`: set up (idempotent) and start the whole stack in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec scripts/start-stack.sh
