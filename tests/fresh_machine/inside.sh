#!/usr/bin/env bash
# Runs inside a fresh container (scripts/test-fresh-machine.sh): a clean clone of the
# repository, the README's set-up, then the certificate's font probe and render tests.
#
#   inside.sh root      as root with apt-get: set-up must install every font the certificate
#                       needs, and the certificate for 김민준 · 龘 · 𠀀 · Zoë has no missing glyph
#   inside.sh no-root   a user who cannot install: set-up says what is missing, and the
#                       certificate still cuts its subset from Droid Sans Fallback
set -euo pipefail
MODE="${1:?root or no-root}"
say() { echo "[fresh-machine:$MODE] $*"; }

say "Chinese fonts before set-up: $(fc-list :lang=zh family 2>/dev/null | paste -sd, || true)"
# /src may belong to another user; git reads safe.directory only from the user's own config.
git config --global --add safe.directory '*'
git clone -q /src "$HOME/diandian"
cd "$HOME/diandian"
# The pip packages come from wheels built on the host (PIP_NO_INDEX, PIP_FIND_LINKS); every
# system package comes from set-up's own probes. Chromium is left out (SETUP_BROWSER=0): the
# browser tests are not what this checks.
scripts/setup.sh 2>&1 | tee /tmp/setup.log
TESTS=(services/certificates/tests/test_fonts.py services/certificates/tests/test_render.py)

if [ "$MODE" = root ]; then
  .venv/bin/python -m certificates.fonts check | sed "s/^/[fresh-machine:$MODE] fonts: /"
  .venv/bin/pytest -q -p no:cacheprovider "${TESTS[@]}" \
    -o addopts="--import-mode=importlib -rA" 2>&1 | tee /tmp/pytest.log
  # The tests that prove the point ran and were not skipped.
  for test in test_names_in_any_script_render_without_tofu \
              test_common_text_comes_from_the_common_subset_of_the_cjk_font \
              test_on_this_machine_set_up_left_nothing_missing; do
    grep -q "^PASSED .*::$test" /tmp/pytest.log || { say "FAILED: $test did not pass"; exit 1; }
  done
else
  grep -q "WARNING: the certificate's fonts are incomplete" /tmp/setup.log \
    || { say "FAILED: set-up did not say which fonts are missing"; exit 1; }
  grep -q "install Debian's fonts-hanazono" /tmp/setup.log \
    || { say "FAILED: set-up did not name fonts-hanazono"; exit 1; }
  if .venv/bin/python -m certificates.fonts check > /tmp/fonts.txt; then
    say "FAILED: the fonts probe says complete on a machine without the fonts"; exit 1
  fi
  sed "s/^/[fresh-machine:$MODE] fonts: /" /tmp/fonts.txt
  grep -q "^common subset cut from: Droid Sans Fallback" /tmp/fonts.txt \
    || { say "FAILED: the subset is not cut from Droid Sans Fallback"; exit 1; }
  .venv/bin/pytest -q -p no:cacheprovider "${TESTS[@]}" \
    -o addopts="--import-mode=importlib -rA" 2>&1 | tee /tmp/pytest.log
  grep -q "^PASSED .*::test_common_text_comes_from_the_common_subset_of_the_cjk_font" /tmp/pytest.log \
    || { say "FAILED: the common text did not come from the subset"; exit 1; }
  grep -q "^SKIPPED .*set-up cannot install them" /tmp/pytest.log \
    || { say "FAILED: the glyph test did not say why it was skipped"; exit 1; }
fi
# The share card (gateway/share_card.py) draws with the CJK font the certificate finds.
.venv/bin/pytest -q -p no:cacheprovider gateway/tests/test_share_card.py -k "font or drawing" \
  -o addopts="--import-mode=importlib -rA" 2>&1 | tee /tmp/pytest-card.log
grep -q "^PASSED .*::test_the_card_draws_its_chinese_with_the_cjk_font_the_certificate_finds" /tmp/pytest-card.log \
  || { say "FAILED: the share card has no Chinese font"; exit 1; }
say "passed: $(tail -n 1 /tmp/pytest.log)"
