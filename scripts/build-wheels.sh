#!/usr/bin/env bash
# Builds wheels of every pinned run-time package (requirements.txt) into deploy/wheels/, from
# which deploy/Dockerfile installs without reaching the package index (pip inside a container
# may not be able to). The wheels are cached per requirements.txt content, so a second run
# only copies them. Debian bookworm's Python is 3.11, like the host's, so the host's wheels fit.
#
#   scripts/build-wheels.sh          # uses .venv's pip (make setup) or python3's
#
# REQUIREMENTS (default requirements.txt) and WHEEL_DIR (default deploy/wheels) choose another
# set: scripts/test-fresh-machine.sh builds requirements-dev.txt (run time + test tools) for a
# fresh container's `make test` set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUIREMENTS="${REQUIREMENTS:-requirements.txt}"
WHEEL_DIR="${WHEEL_DIR:-deploy/wheels}"

PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
CACHE_DIR="${DIANDIAN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diandian}"
# requirements-dev.txt includes requirements.txt: the key covers both, and the file's name.
key="$( { echo "$REQUIREMENTS"; cat "$REQUIREMENTS" requirements.txt; } | sha256sum | cut -c1-16)"
cached="$CACHE_DIR/wheels/$key"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "[wheels] the image's Python is 3.11; $PYTHON is $("$PYTHON" --version)" >&2; exit 1; }

if [ ! -f "$cached/.complete" ]; then
  echo "[wheels] building wheels for $REQUIREMENTS into $cached"
  rm -rf "$cached" && mkdir -p "$cached"
  "$PYTHON" -m pip wheel -q --disable-pip-version-check -r "$REQUIREMENTS" -w "$cached" \
    > "$cached.log" 2>&1 || { tail -20 "$cached.log" >&2; exit 1; }
  touch "$cached/.complete"
  # Older keys of the same file are its earlier versions: keep the cache from growing forever.
  for other in "$CACHE_DIR"/wheels/*/; do
    other="${other%/}"
    if [ "$other" != "$cached" ] && [ "$(cat "$other/.requirements" 2>/dev/null)" = "$REQUIREMENTS" ]; then
      rm -rf "$other"
    fi
  done
  echo "$REQUIREMENTS" > "$cached/.requirements"
else
  echo "[wheels] cached ($cached)"
fi
rm -rf "$WHEEL_DIR" && mkdir -p "$WHEEL_DIR"
cp -l "$cached"/*.whl "$WHEEL_DIR"/ 2>/dev/null || cp "$cached"/*.whl "$WHEEL_DIR"/
echo "[wheels] $(ls "$WHEEL_DIR" | wc -l) wheels in $WHEEL_DIR"
