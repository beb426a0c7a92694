#!/usr/bin/env bash
# Re-pins requirements.txt (run time: what the application image installs) and
# requirements-dev.txt (plus the test tools) from requirements.in / requirements-dev.in.
# Each is resolved in a fresh virtualenv, so the run-time pins hold nothing the tests pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pin() {  # pin IN_FILE [pip options] -> prints `name==version` lines of the resolved tree
  local in_file="$1"; shift
  "$PYTHON" -m venv "$work/venv-$in_file"
  "$work/venv-$in_file/bin/pip" install -q --disable-pip-version-check -r "$in_file" "$@"
  "$work/venv-$in_file/bin/pip" freeze --exclude-editable
}

runtime="$(pin requirements.in)"
{
  echo "# Pinned by \`make lock\` from requirements.in: the run-time tree (the application image)."
  echo "$runtime"
} > requirements.txt
# The test tools are resolved against the run-time pins, so both files agree.
everything="$(pin requirements-dev.in -c requirements.txt)"
{
  echo "# Pinned by \`make lock\` from requirements-dev.in: requirements.txt plus the test tools."
  echo "-r requirements.txt"
  # The test tools' own tree, minus what requirements.txt already pins.
  comm -23 <(echo "$everything" | sort) <(echo "$runtime" | sort)
} > requirements-dev.txt
echo "[lock] requirements.txt: $(echo "$runtime" | wc -l) pins; requirements-dev.txt: +$(comm -23 <(echo "$everything" | sort) <(echo "$runtime" | sort) | wc -l)"
