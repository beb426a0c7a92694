# Shared by the scripts that need a Docker engine (scripts/test-compose.sh,
# scripts/test-fresh-machine.sh). The caller defines say, fail, skip and show_log, sets LOG_DIR,
# and calls docker_engine_stop from its EXIT trap.
#
# - A running engine is used and left alone. Without one, as root on Debian/Ubuntu, docker.io is
#   installed and `dockerd` started (overlay2 storage where the kernel allows it, else vfs, which
#   works everywhere), and docker_engine_stop stops it again. Elsewhere the caller's test is skipped.
# - offline_base_image builds the Debian base image from Debian's packages (debootstrap) for
#   machines that cannot pull from an image registry.

OUR_DOCKERD_PID=""

is_root_debian() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# overlay2 shares layers instead of copying them; it needs the kernel's overlay filesystem to
# accept the data root's filesystem as its upper layer (not so on an overlay root, e.g. in a
# container). vfs, which copies every layer in full, works everywhere.
storage_driver() {
  if [ -n "${DOCKERD_STORAGE_DRIVER:-}" ]; then echo "$DOCKERD_STORAGE_DRIVER"; return; fi
  local probe driver=vfs
  probe="$(mktemp -d /var/lib/.diandian-overlay-probe.XXXXXX)"
  mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
       "$probe/merged" 2>/dev/null; then
    umount "$probe/merged" && driver=overlay2
  fi
  rm -rf "$probe"
  echo "$driver"
}

apt_install() {
  say "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$@" >"$LOG_DIR/apt.log" 2>&1 \
    || { apt-get update -qq >>"$LOG_DIR/apt.log" 2>&1 \
         && apt-get install -y -qq --no-install-recommends "$@" >>"$LOG_DIR/apt.log" 2>&1; } \
    || { show_log "$LOG_DIR/apt.log"; fail "apt-get install $* failed"; }
}

docker_engine_start() {
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    say "using the running engine (left running afterwards)"
    return
  fi
  is_root_debian || skip "no Docker engine answers, and installing one needs root and apt-get; start dockerd and run again"
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || apt_install docker.io
  local driver
  driver="$(storage_driver)"
  say "starting dockerd --storage-driver=$driver (log: $LOG_DIR/dockerd.log)"
  dockerd --storage-driver="$driver" >"$LOG_DIR/dockerd.log" 2>&1 &
  OUR_DOCKERD_PID=$!
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$OUR_DOCKERD_PID" 2>/dev/null || { show_log "$LOG_DIR/dockerd.log"; fail "dockerd exited"; }
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { show_log "$LOG_DIR/dockerd.log"; fail "dockerd did not answer within 60 s"; }
}

docker_engine_stop() {  # stops the dockerd that docker_engine_start started, if any
  [ -n "$OUR_DOCKERD_PID" ] || return 0
  say "stopping the dockerd this run started (pid $OUR_DOCKERD_PID)"
  kill "$OUR_DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$OUR_DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$OUR_DOCKERD_PID" 2>/dev/null && kill -9 "$OUR_DOCKERD_PID" 2>/dev/null || true
  OUR_DOCKERD_PID=""
}

offline_base_image() {  # offline_base_image IMAGE: debootstrapped Debian bookworm, built once
  docker image inspect "$1" >/dev/null 2>&1 && return
  command -v debootstrap >/dev/null 2>&1 || { is_root_debian && apt_install debootstrap; } \
    || fail "debootstrap is needed to build $1"
  deploy/offline/build-base-image.sh "$1"
}
