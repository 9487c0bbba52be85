#!/usr/bin/env bash
# Sets itself up (venv, Python deps, and the system services the tests use: mosquitto, CUPS with a PDF printer,
# Chromium), checks the code (ruff, mypy, the import contract), then runs the whole suite. Extra arguments go to
# pytest. Under CI=true a missing service fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need+=(mosquitto)
[ -x /usr/sbin/cupsd ] || need+=(cups cups-client cups-bsd)
[ -e /usr/lib/cups/backend/cups-pdf ] || need+=(printer-driver-cups-pdf)
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/bin/pdfinfo ] || need+=(poppler-utils)
# the kiosk screenshots show Chinese text: a CJK font
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
if ((${#need[@]})); then
  echo "installing system packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the tests start their own brokers on free ports; the packaged service is not needed
  $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
EXTRAS="opencv,test"
source scripts/_venv.sh
# the habits that keep the code in shape, before the suite: lint, format, types, the import contract
echo "ruff check, ruff format --check, mypy ..." >&2
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy --no-error-summary
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_import_contract.py
# two workers, one test file each at a time (a file's broker, CUPS queue and browser stay together): the suite
# takes about half the time on two cores; TEST_WORKERS=0 runs it in one process
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
