#!/usr/bin/env bash
# make test-fresh-machine: the README's set-up on a machine that has never seen this project,
# so that what a developer installed by hand cannot hide a missing install step.
#
# A container of tests/fresh_machine/Dockerfile (Debian bookworm from Debian's packages, with
# Python, make, git and Droid Sans Fallback as its only Chinese font) gets a clean clone of the
# committed HEAD, runs scripts/setup.sh with the pip packages from wheels built on the host, then
# checks the certificate's fonts (tests/fresh_machine/inside.sh):
#   - as root: set-up installs every font the certificate needs; a certificate for
#     김민준 · 龘 · 𠀀 · Zoë renders from the common subset with no missing glyph;
#   - as a user who cannot install: set-up names what is missing, and the subset is still cut
#     from the installed Chinese font (Droid Sans Fallback), never silently the slow path.
# The Docker engine is found or started as for make test-compose (scripts/lib/docker-engine.sh);
# without one and without root, the check is skipped with one line.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/docker-engine.sh
. scripts/lib/docker-engine.sh

LOG_DIR="$PWD/var/test-fresh-machine"
mkdir -p "$LOG_DIR"
BASE_IMAGE=diandian/debian:bookworm
IMAGE=diandian/fresh-machine:bookworm
START=$SECONDS

say() { echo "[test-fresh-machine] $(printf '%4ds' $((SECONDS - START))) | $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
fail() { say "FAILED: $*" >&2; exit 1; }
show_log() { [ -f "$1" ] && tail -n "${2:-40}" "$1" >&2 || true; }
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  docker_engine_stop
  say "finished with exit status $status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

docker_engine_start
offline_base_image "$BASE_IMAGE"
# The classic builder where BuildKit's buildx plugin is missing (Debian's docker.io).
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
say "building $IMAGE (a fresh machine: Python, make, git, Droid Sans Fallback)"
docker build -q -t "$IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" tests/fresh_machine \
  >"$LOG_DIR/build.log" 2>&1 || { show_log "$LOG_DIR/build.log"; fail "image build failed"; }
# Wheels of everything `make test` installs, built on the host (the container's pip may not
# reach the package index).
WHEELS="$LOG_DIR/wheels"
REQUIREMENTS=requirements-dev.txt WHEEL_DIR="$WHEELS" scripts/build-wheels.sh

run_fresh() {  # run_fresh NAME COMMAND...: a new container of the fresh image
  local name="$1"; shift
  say "$name (log: $LOG_DIR/$name.log)"
  if ! docker run --rm --name "diandian-fresh-$name-$$" \
        -v "$PWD:/src:ro" -v "$WHEELS:/wheels:ro" \
        -e PIP_NO_INDEX=1 -e PIP_FIND_LINKS=/wheels -e SETUP_BROWSER=0 \
        "$IMAGE" bash -c "$*" >"$LOG_DIR/$name.log" 2>&1; then
    show_log "$LOG_DIR/$name.log" 60
    fail "$name"
  fi
  grep -E '^\[fresh-machine' "$LOG_DIR/$name.log" | sed 's/^/    /'
}

run_fresh as-root 'bash /src/tests/fresh_machine/inside.sh root'
# A user without root on a machine whose administrator installed Redis, Pango and HarfBuzz,
# but none of the certificate's fonts.
run_fresh without-root '
  set -e
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    redis-server libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig >/dev/null
  useradd --create-home guest
  runuser -u guest -- env HOME=/home/guest PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels SETUP_BROWSER=0 \
    bash /src/tests/fresh_machine/inside.sh no-root'
say "passed"
