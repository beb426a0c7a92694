#!/usr/bin/env bash
# Builds wheels of every pinned run-time package (requirements.txt) into deploy/wheels/, from
# which deploy/Dockerfile installs without reaching the package index (pip inside a container
# may not be able to). The wheels are cached per requirements.txt content, so a second run
# only copies them. Debian bookworm's Python is 3.11, like the host's, so the host's wheels fit.
#
#   scripts/build-wheels.sh          # uses .venv's pip (make setup) or python3's
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
CACHE_DIR="${DIANDIAN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diandian}"
key="$(sha256sum requirements.txt | cut -c1-16)"
cached="$CACHE_DIR/wheels/$key"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "[wheels] the image's Python is 3.11; $PYTHON is $("$PYTHON" --version)" >&2; exit 1; }

if [ ! -f "$cached/.complete" ]; then
  echo "[wheels] building wheels for requirements.txt into $cached"
  rm -rf "$cached" && mkdir -p "$cached"
  "$PYTHON" -m pip wheel -q --disable-pip-version-check -r requirements.txt -w "$cached" \
    > "$cached.log" 2>&1 || { tail -20 "$cached.log" >&2; exit 1; }
  touch "$cached/.complete"
  # Older keys are other requirements.txt versions: keep the cache from growing forever.
  find "$CACHE_DIR/wheels" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
else
  echo "[wheels] cached ($cached)"
fi
rm -rf deploy/wheels && mkdir -p deploy/wheels
cp -l "$cached"/*.whl deploy/wheels/ 2>/dev/null || cp "$cached"/*.whl deploy/wheels/
echo "[wheels] $(ls deploy/wheels | wc -l) wheels in deploy/wheels"
