#!/usr/bin/env bash
# Idempotent set-up shared by `make run` and `make test`: a virtualenv with the pinned
# dependencies, and the system pieces the platform needs (redis-server, WeasyPrint's
# Pango and HarfBuzz libraries, the certificate's fonts, Chromium for the browser tests),
# each found by probing what the code uses. Installs through apt-get when it can; says clearly what
# to do when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
APT_UPDATED=0
apt_install() {
  if ! can_apt; then return 1; fi
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; APT_UPDATED=1; fi
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Python -----------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "python3 (3.11+) not found; install it (Debian: apt-get install python3 python3-venv; macOS: brew install python@3.11)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ is required, found $("$PYTHON" --version)"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV" || { apt_install python3-venv && "$PYTHON" -m venv "$VENV"; } || die "could not create a virtualenv"
fi
STAMP="$VENV/.requirements.sha256"
# The run-time packages and the test tools (requirements-dev.txt includes requirements.txt).
WANT=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  say "installing Python packages (requirements-dev.txt)"
  mkdir -p var
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt > var/pip-install.log 2>&1; then
    tail -20 var/pip-install.log >&2
    die "pip install failed (full log: var/pip-install.log)"
  fi
  echo "$WANT" > "$STAMP"
fi
# Make the platform's packages importable from the venv without installing them:
# the repo root (diandian_common, gateway) and services/ (calculator, orders, ...).
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$ROOT" "$ROOT/services" > "$SITE/diandian.pth"

# --- Redis ------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server || true
  # Debian starts a system Redis on 6379 when installing; we never rely on it.
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server not found. Install it: Debian/Ubuntu 'sudo apt-get install redis-server', macOS 'brew install redis'. Or point REDIS_URL at a running Redis."

# --- WeasyPrint's system libraries and the certificate's fonts -----------------
# Each probe asks what the code itself uses: WeasyPrint importing Pango, WeasyPrint loading
# libharfbuzz-subset, and `python -m certificates.fonts` checking every font need of the
# certificate stylesheet (services/certificates/fonts.py: FONT_NEEDS) against fontconfig.
if ! "$VENV/bin/python" -c 'import weasyprint' >/dev/null 2>&1; then
  apt_install libpango-1.0-0 libpangoft2-1.0-0 || true
  "$VENV/bin/python" -c 'import weasyprint' >/dev/null 2>&1 || die "WeasyPrint cannot load Pango. Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0; macOS: brew install pango"
fi
# libharfbuzz-subset makes WeasyPrint subset fonts natively (~10x faster than its
# pure-Python fallback): certificates render in ~0.1 s instead of ~1 s.
HB_SUBSET_PROBE='import sys; from weasyprint.text.ffi import harfbuzz_subset; sys.exit(harfbuzz_subset is None)'
if ! "$VENV/bin/python" -c "$HB_SUBSET_PROBE" >/dev/null 2>&1; then
  apt_install libharfbuzz-subset0 || true
  "$VENV/bin/python" -c "$HB_SUBSET_PROBE" >/dev/null 2>&1 \
    || say "WARNING: WeasyPrint cannot load libharfbuzz-subset; certificates render ~10x slower. Debian/Ubuntu: apt-get install libharfbuzz-subset0"
fi
FONTS_PROBE=("$VENV/bin/python" -m certificates.fonts)
MISSING_FONT_PACKAGES=$("${FONTS_PROBE[@]}" packages)
if [ -n "$MISSING_FONT_PACKAGES" ]; then
  # shellcheck disable=SC2086 # a list of package names
  apt_install $MISSING_FONT_PACKAGES fontconfig || true
fi
if ! FONTS_REPORT=$("${FONTS_PROBE[@]}" check 2>&1); then
  say "WARNING: the certificate's fonts are incomplete; what is missing shows boxes in certificates:"
  printf '%s\n' "$FONTS_REPORT" | sed 's/^/[setup]   /' >&2
  say "as root on Debian/Ubuntu this script installs them; elsewhere install what is named above (macOS ships PingFang: set CERTIFICATES_CJK_FONT to its path)."
fi

# --- Chromium for the browser tests (tests/browser) ---------------------------
# Playwright drives the system's Chromium; Playwright's own browser download is not used.
# SETUP_BROWSER=0 leaves it out (the browser tests are then skipped).
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ "${SETUP_BROWSER:-1}" != 0 ] && [ ! -x "$CHROMIUM" ]; then
  apt_install chromium || true
  [ -x "$CHROMIUM" ] || say "NOTE: no Chromium at $CHROMIUM, so the browser tests (tests/browser) will be skipped. Install it (Debian/Ubuntu: sudo apt-get install chromium) or point CHROMIUM_PATH at a Chromium binary."
fi
say "ready ($VENV)"
