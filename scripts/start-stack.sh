#!/usr/bin/env bash
# Start one whole stack in the foreground: migrations, demo data, then Redis, the four
# APIs, the four workers, the schedulers (one per service with periodic tasks) and the
# gateway under honcho (Procfile).
# Expects the virtualenv from scripts/setup.sh. Ctrl-C (SIGINT/SIGTERM) stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$PWD/.venv}
export PATH="$VENV/bin:$PATH"
eval "$(python -m diandian_common.config)"
export GATEWAY_HOST=${GATEWAY_HOST:-127.0.0.1}
export GUNICORN_OPTS=${GUNICORN_OPTS:---workers 2 --worker-class gthread --threads 4 --timeout 30 --graceful-timeout 10}
export CELERY_WORKER_OPTS=${CELERY_WORKER_OPTS:---concurrency 2 --loglevel INFO}
mkdir -p "$VAR_DIR/redis"

processes=(calculator orders certificates ranking calculator-worker orders-worker
           certificates-worker ranking-worker orders-beat certificates-beat ranking-beat gateway)
if [ "$DIANDIAN_OWN_REDIS" = 1 ]; then
  processes=(redis "${processes[@]}")
fi

echo "[stack] migrating databases" >&2
python -m diandian_common.migrate upgrade
echo "[stack] seeding demo data (first start only; idempotent)" >&2
flask --app calculator.app seed-demo
flask --app orders.app seed-demo

cat >&2 <<MSG
[stack] starting ${#processes[@]} processes; data in $VAR_DIR
[stack] open $PUBLIC_BASE_URL  (API: $PUBLIC_BASE_URL/api/v1/scenes, health: $PUBLIC_BASE_URL/healthz)
MSG
exec honcho start --no-colour -f Procfile "${processes[@]}" 2>&1
