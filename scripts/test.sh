#!/usr/bin/env bash
# Sets itself up (venv, Python deps, and the system services the tests use: mosquitto, CUPS with a PDF printer,
# Chromium), then runs the whole suite. Extra arguments go to pytest. Under CI=true a missing service fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need+=(mosquitto)
[ -x /usr/sbin/cupsd ] || need+=(cups cups-client cups-bsd)
[ -e /usr/lib/cups/backend/cups-pdf ] || need+=(printer-driver-cups-pdf)
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]})); then
  echo "installing system packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the tests start their own brokers on free ports; the packaged service is not needed
  $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
EXTRAS="opencv,test"
source scripts/_venv.sh
exec .venv/bin/python -m pytest "$@"
