#!/usr/bin/env bash
# Start one whole stack in the foreground: migrations (the services' and the gateway's),
# the operator key, demo data, then Redis, the four APIs, the four workers, the schedulers
# (one per service with periodic tasks) and the gateway under supervisord (the Procfile's
# lines; diandian_common/supervise.py). A process that dies is restarted (with a backoff when
# it keeps dying) and the others run on. Expects the virtualenv from scripts/setup.sh.
# Ctrl-C (SIGINT/SIGTERM) stops everything: the gateway, APIs, workers and schedulers first,
# Redis last, so the messages the workers held go back to their queues.
# The workers and schedulers write their logs to $DIANDIAN_LOG_DIR (default $VAR_DIR/log) and
# show only warnings and errors here; DIANDIAN_LOG_DIR= (empty) keeps everything on the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$PWD/.venv}
export PATH="$VENV/bin:$PATH"
eval "$(python -m diandian_common.config)"
export GATEWAY_HOST=${GATEWAY_HOST:-127.0.0.1}
export GUNICORN_OPTS=${GUNICORN_OPTS:---workers 2 --worker-class gthread --threads 4 --timeout 30 --graceful-timeout 10}
export CELERY_WORKER_OPTS=${CELERY_WORKER_OPTS:---concurrency 2 --loglevel INFO}
export DIANDIAN_LOG_DIR=${DIANDIAN_LOG_DIR-$VAR_DIR/log}
mkdir -p "$VAR_DIR/redis" ${DIANDIAN_LOG_DIR:+"$DIANDIAN_LOG_DIR"}

if [ "$(id -u)" = 0 ]; then
  # Everything below would run with root's rights: a bug in any process could then do anything.
  echo "[stack] WARNING: running as root: every process of the stack gets root's rights; run make run as an ordinary user" >&2
fi

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

# `make run` demos a real-protocol payment (scripts/run.sh sets DIANDIAN_PAYMENT_DEMO=emulator):
# in development only, the payment emulator (payment_emulator/README.md) stands in for WeChat
# Pay and Alipay. Its merchant key set is made once and kept in $VAR_DIR; its payment.env
# configures the orders service (the SDKs) and the gateway (WeChat's OAuth for JSAPI).
# PAYMENT_PROVIDER(S) set by the caller win (PAYMENT_PROVIDER=sandbox: the sandbox demo).
if [ "${DIANDIAN_PAYMENT_DEMO:-}" = emulator ]; then
  if [ "${DIANDIAN_ENV:-development}" = development ]; then
    export PAYMENT_EMULATOR_PORT=${PAYMENT_EMULATOR_PORT:-$((GATEWAY_PORT + 8))}
    python -m payment_emulator keys --out "$VAR_DIR/payment-merchant" \
      --state-dir "$VAR_DIR/payment-emulator" --port "$PAYMENT_EMULATOR_PORT" >&2
    set -a
    # shellcheck source=/dev/null
    . "$VAR_DIR/payment-merchant/payment.env"
    set +a
    export WECHAT_API_BASE_FOR_OAUTH=${WECHAT_API_BASE_FOR_OAUTH:-$WECHAT_OAUTH_BASE}  # one host here
    if [ -z "${PAYMENT_PROVIDERS:-}${PAYMENT_PROVIDER:-}" ]; then
      export PAYMENT_PROVIDERS=wechatpay,alipay
    fi
    processes+=(payment-emulator)
    echo "[stack] payment emulator (WeChat Pay, Alipay; no money moves) on 127.0.0.1:$PAYMENT_EMULATOR_PORT" >&2
  else
    echo "[stack] DIANDIAN_ENV=$DIANDIAN_ENV: no payment emulator" >&2
  fi
fi

echo "[stack] migrating databases" >&2
python -m diandian_common.migrate upgrade
echo "[stack] operator key: mirroring OPERATOR_API_KEY into the gateway's key store" >&2
flask --app gateway.app keys ensure-operator
echo "[stack] seeding demo data (first start only; idempotent)" >&2
flask --app calculator.app seed-demo
flask --app orders.app seed-demo

logs_note=${DIANDIAN_LOG_DIR:+; worker and scheduler logs in $DIANDIAN_LOG_DIR}
cat >&2 <<MSG
[stack] starting ${#processes[@]} processes; data in $VAR_DIR$logs_note
[stack] open $PUBLIC_BASE_URL  (API: $PUBLIC_BASE_URL/api/v1/scenes, health: $PUBLIC_BASE_URL/healthz)
MSG

# The start-up lines scroll that away, so a waiter says it again once the gateway's /healthz
# answers 200 and every worker answers a ping, or says clearly that the stack did not come up
# within DIANDIAN_START_TIMEOUT seconds. It ends then, or as soon as supervisord (this script's
# pid after the exec) is gone; Ctrl-C reaches it too. Started from a subshell, so that init, not
# supervisord, reaps it when it ends.
DIANDIAN_START_TIMEOUT=${DIANDIAN_START_TIMEOUT:-120}
case $GATEWAY_HOST in
  0.0.0.0|::|'') probe_host=127.0.0.1 ;;
  *:*) probe_host="[$GATEWAY_HOST]" ;;   # an IPv6 address
  *) probe_host=$GATEWAY_HOST ;;
esac
workers=()
for name in "${processes[@]}"; do [[ $name == *-worker ]] && workers+=("${name%-worker}"); done
health_url=http://$probe_host:$GATEWAY_PORT/healthz
(python - "$$" "$health_url" "$DIANDIAN_START_TIMEOUT" "${workers[@]}" >&2 <<'WAITER' &
import os, signal, sys, time, urllib.error, urllib.request

signal.signal(signal.SIGINT, signal.SIG_DFL)   # a background job of a script starts with it ignored
stack, health, timeout, workers = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), set(sys.argv[4:])
deadline = time.monotonic() + timeout
base, log_dir = os.environ["PUBLIC_BASE_URL"], os.environ.get("DIANDIAN_LOG_DIR")


def waiting() -> bool:
    try:
        os.kill(stack, 0)
    except ProcessLookupError:   # supervisord has exited: the stack is gone, nothing to announce
        sys.exit(0)
    return time.monotonic() < deadline


def gave_up(what: str) -> None:
    where = f"the lines above and {log_dir}" if log_dir else "the lines above"
    print(f"[stack] WARNING: Diandian did not come up within {timeout:.0f} s: {what}; see {where}",
          flush=True)
    sys.exit(1)


last = "no answer"
while waiting():
    try:
        with urllib.request.urlopen(health, timeout=2):
            break
    except urllib.error.HTTPError as exc:   # 503: a service or Redis is not up (yet)
        last = f"{exc.code} {exc.read().decode(errors='replace').strip()[:300]}"
    except OSError as exc:
        last = str(getattr(exc, "reason", exc))
    time.sleep(0.5)
else:
    gave_up(f"no 200 from {health} (last: {last})")

from celery import Celery   # imported only now: it takes a while, and the stack may not come up

control = Celery(broker=os.environ.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"]).control
while workers and waiting():
    try:
        workers -= {node.partition("@")[0] for reply in control.ping(timeout=1) for node in reply}
    except Exception:   # the broker is briefly unreachable: ask again
        time.sleep(0.5)
if workers:
    gave_up(f"no answer to a ping from the {', '.join(sorted(workers))} worker(s)")
logs = f"; worker and scheduler logs in {log_dir}" if log_dir else ""
print(f"[stack] Diandian is up: {base}/  (API: {base}/api/v1/scenes{logs}; Ctrl-C stops everything)",
      flush=True)
WAITER
)
exec python -m diandian_common.supervise run "${processes[@]}" 2>&1
