#!/usr/bin/env bash
# make test-compose: build the Docker Compose stack (deploy/), start it under a project name
# of its own with the gateway on a free port of 127.0.0.1, drive it through that port
# (tests/compose/), scale and kill certificate workers, restart orders and its database, and
# always tear down what was started.
#
# - A running Docker engine is used and left alone. Without one, as root on Debian/Ubuntu,
#   docker.io is installed and `dockerd` started here (overlay2 storage where the kernel
#   allows it, else vfs, which works everywhere), and stopped again at the end. Elsewhere the test is skipped with one line.
# - `docker compose` where present, otherwise `docker-compose`.
# - Without an image registry, the base image comes from Debian's packages
#   (deploy/offline/build-base-image.sh) and Redis/PostgreSQL from deploy/compose.offline.yml.
# - Wheels are built on the host (scripts/build-wheels.sh); wheels and image layers are
#   cached between runs, so a second run rebuilds only the code layers.
#
# Environment: DOCKERD_STORAGE_DRIVER (overlay2 where the kernel allows, else vfs),
# DIANDIAN_COMPOSE_KEEP=1 leaves the stack running
# for a look (tear it down with the printed command).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/docker-engine.sh
. scripts/lib/docker-engine.sh

PYTHON=.venv/bin/python
LOG_DIR="$PWD/var/test-compose"
mkdir -p "$LOG_DIR"
START=$SECONDS
STAGE_START=$SECONDS
OFFLINE_BASE=diandian/debian:bookworm
APP_IMAGE=diandian:latest
PUBLIC_BASE=python:3.11-slim

say() { echo "[test-compose] $*"; }
stage() {  # stage NAME: closes the previous stage with its time, opens the next
  say "$(printf '%5ds' $((SECONDS - START))) | $*"
  STAGE_START=$SECONDS
}
staged() { say "      took $((SECONDS - STAGE_START))s"; }
skip() { say "SKIPPED: $*"; exit 0; }
fail() { say "FAILED: $*" >&2; exit 1; }
show_log() { [ -f "$1" ] && tail -n "${2:-40}" "$1" >&2 || true; }

PROJECT=""
COMPOSE=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$PROJECT" ]; then
    if [ "$status" -ne 0 ]; then
      "${COMPOSE[@]}" ps >"$LOG_DIR/ps.txt" 2>&1 || true
      "${COMPOSE[@]}" logs --no-color --tail 200 >"$LOG_DIR/stack.log" 2>&1 || true
      say "containers: $LOG_DIR/ps.txt, their logs: $LOG_DIR/stack.log (last lines below)"
      grep -v " Exit 0 " "$LOG_DIR/ps.txt" >&2 || true
      tail -n 60 "$LOG_DIR/stack.log" >&2 || true
    fi
    if [ "${DIANDIAN_COMPOSE_KEEP:-0}" = 1 ]; then
      say "left running: ${COMPOSE[*]} down -v --remove-orphans"
    else
      stage "tearing down $PROJECT (containers, networks, volumes)"
      "${COMPOSE[@]}" down -v --remove-orphans --timeout 10 >"$LOG_DIR/down.log" 2>&1 \
        || { say "teardown failed:"; show_log "$LOG_DIR/down.log"; }
      staged
    fi
  fi
  if [ "${DIANDIAN_COMPOSE_KEEP:-0}" != 1 ]; then
    docker_engine_stop
  fi
  say "$(printf '%5ds' $((SECONDS - START))) | finished with exit status $status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a Docker engine ---------------------------------------------------------------------
stage "finding a Docker engine"
docker_engine_start
if docker compose version >/dev/null 2>&1; then
  COMPOSE_CMD=(docker compose)
else
  command -v docker-compose >/dev/null 2>&1 || { is_root_debian && apt_install docker-compose; } \
    || skip "neither \`docker compose\` nor \`docker-compose\` is installed"
  COMPOSE_CMD=(docker-compose)
fi
# The classic builder where BuildKit's buildx plugin is missing (Debian's docker.io).
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
export COMPOSE_HTTP_TIMEOUT=300   # docker-compose 1.29 gives up after 60 s on a busy engine
say "engine $(docker version --format '{{.Server.Version}}'), compose: ${COMPOSE_CMD[*]} ($("${COMPOSE_CMD[@]}" version --short 2>/dev/null || true))"
staged

# A run cut off before its teardown (CI killed, machine rebooted) leaves its containers
# behind, and a restarted engine would start them again: remove every earlier project of
# this script whose process is gone (project names end in the script's pid).
for stale in $(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | sort -u | grep '^diandian-test-' || true); do
  kill -0 "${stale##*-}" 2>/dev/null && continue
  say "removing the stack of an earlier run that did not finish ($stale)"
  docker ps -aq --filter "label=com.docker.compose.project=$stale" | xargs -r docker rm -f >/dev/null
  docker network ls -q --filter "label=com.docker.compose.project=$stale" | xargs -r docker network rm >/dev/null
  docker volume ls -q --filter "label=com.docker.compose.project=$stale" | xargs -r docker volume rm >/dev/null
done

# The stack runs in production mode, which refuses public or missing secrets: fresh random
# ones for this run, written the way an operator makes them (deploy/new-env.sh), exported
# for every compose command (even `build` interpolates the whole file) and for the tests
# (the operator key, testpay's webhook secret).
ENV_FILE="$LOG_DIR/compose.env"
rm -f "$ENV_FILE"
deploy/new-env.sh "$ENV_FILE" >/dev/null
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
# testpay only: the merchant key directory every orders container mounts stays empty.
PAYMENT_KEYS_DIR="$LOG_DIR/payment-keys"
mkdir -p "$PAYMENT_KEYS_DIR"
export PAYMENT_KEYS_DIR

# --- images ----------------------------------------------------------------------------------
stage "images"
FILES=(-f deploy/docker-compose.yml)
if docker image inspect "$PUBLIC_BASE" >/dev/null 2>&1 || timeout 60 docker pull -q "$PUBLIC_BASE" >/dev/null 2>&1; then
  BASE_IMAGE="$PUBLIC_BASE"
  say "the registry answers: base $BASE_IMAGE, official redis and postgres images"
else
  BASE_IMAGE="$OFFLINE_BASE"
  FILES+=(-f deploy/compose.offline.yml)
  say "no image registry: base image from Debian's packages ($BASE_IMAGE), deploy/compose.offline.yml"
  offline_base_image "$OFFLINE_BASE"
fi
FILES+=(-f tests/compose/compose.test.yml)
export BASE_IMAGE
scripts/build-wheels.sh

# The application image and (offline) the Redis and PostgreSQL images, side by side.
pids=()
docker build -f deploy/Dockerfile --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$APP_IMAGE" . \
  >"$LOG_DIR/build-app.log" 2>&1 &
pids+=($!)
if [ "$BASE_IMAGE" = "$OFFLINE_BASE" ]; then
  "${COMPOSE_CMD[@]}" "${FILES[@]}" build redis postgres >"$LOG_DIR/build-offline.log" 2>&1 &
  pids+=($!)
fi
for pid in "${pids[@]}"; do
  wait "$pid" || { show_log "$LOG_DIR/build-app.log"; show_log "$LOG_DIR/build-offline.log"; fail "image build failed (logs in $LOG_DIR)"; }
done
# Earlier builds of the application image, untagged by this one, would fill the disk
# (vfs stores every layer in full).
docker image prune -f --filter "label=io.diandian.image=application" >/dev/null
say "$APP_IMAGE: $(docker image inspect "$APP_IMAGE" --format '{{.Size}}' | awk '{printf "%d MB", $1/1e6}')"
staged

# --- the stack ---------------------------------------------------------------------------------
stage "starting the stack"
PROJECT="diandian-test-$(date +%s)-$$"
COMPOSE=("${COMPOSE_CMD[@]}" -p "$PROJECT" "${FILES[@]}")
GATEWAY_PORT="$("$PYTHON" -c 'from diandian_common.testing import free_port; print(free_port())')"
FLOWER_PORT="$("$PYTHON" -c 'from diandian_common.testing import free_port; print(free_port())')"
export GATEWAY_PORT FLOWER_PORT GATEWAY_BIND_ADDRESS=127.0.0.1 FLOWER_BIND_ADDRESS=127.0.0.1 \
  PUBLIC_BASE_URL="http://127.0.0.1:$GATEWAY_PORT" \
  RATE_LIMIT_ORDERS=1000/minute RATE_LIMIT_ORDERS_PER_ADDRESS=1000/minute  # the burst of 30 comes from one client and one address; the defaults would refuse it
say "project $PROJECT, gateway http://127.0.0.1:$GATEWAY_PORT, flower http://127.0.0.1:$FLOWER_PORT"
"${COMPOSE[@]}" up -d >"$LOG_DIR/up.log" 2>&1 || { show_log "$LOG_DIR/up.log"; fail "compose up failed"; }
staged

# --- driving it -----------------------------------------------------------------------------
stage "driving the stack through the gateway (tests/compose)"
DIANDIAN_COMPOSE_URL="$PUBLIC_BASE_URL" DIANDIAN_COMPOSE="${COMPOSE[*]}" \
  "$PYTHON" -m pytest tests/compose -m compose -q -s -p no:cacheprovider
staged
