#!/usr/bin/env bash
# Start one whole stack in the foreground: migrations (the services' and the gateway's),
# the operator key, demo data, then Redis, the four APIs, the four workers, the schedulers
# (one per service with periodic tasks) and the gateway under honcho (Procfile).
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

# The gateway signs operator assertions for the services with INTERNAL_API_SECRET. Unless
# the caller set one, this stack gets its own, made once and kept with its data.
if [ -z "${INTERNAL_API_SECRET:-}" ]; then
  secret_file="$VAR_DIR/internal-api-secret"
  if [ ! -s "$secret_file" ]; then
    (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$secret_file")
  fi
  INTERNAL_API_SECRET=$(cat "$secret_file")
  export INTERNAL_API_SECRET
fi

processes=(calculator orders certificates ranking calculator-worker orders-worker
           certificates-worker ranking-worker orders-beat certificates-beat ranking-beat gateway)
if [ "$DIANDIAN_OWN_REDIS" = 1 ]; then
  processes=(redis "${processes[@]}")
fi

echo "[stack] migrating databases" >&2
python -m diandian_common.migrate upgrade
echo "[stack] operator key: mirroring OPERATOR_API_KEY into the gateway's key store" >&2
flask --app gateway.app keys ensure-operator
echo "[stack] seeding demo data (first start only; idempotent)" >&2
flask --app calculator.app seed-demo
flask --app orders.app seed-demo

cat >&2 <<MSG
[stack] starting ${#processes[@]} processes; data in $VAR_DIR
[stack] open $PUBLIC_BASE_URL  (API: $PUBLIC_BASE_URL/api/v1/scenes, health: $PUBLIC_BASE_URL/healthz)
MSG
exec honcho start --no-colour -f Procfile "${processes[@]}" 2>&1
