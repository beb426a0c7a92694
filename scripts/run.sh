#!/usr/bin/env bash
# `make run`: set up (idempotent) and start the whole stack in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A newcomer pays through the local WeChat Pay / Alipay emulator (README, "What guests see");
# DIANDIAN_PAYMENT_DEMO= (empty) starts the stack without it.
export DIANDIAN_PAYMENT_DEMO=${DIANDIAN_PAYMENT_DEMO-emulator}
exec scripts/start-stack.sh
