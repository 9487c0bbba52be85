# Sourced by the scripts: make ./.venv with edge-agent installed (re-installed when pyproject.toml changes).
# EXTRAS picks the optional dependency groups (default: opencv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXTRAS="${EXTRAS:-opencv}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() {  # apt_install PKG... : install Debian packages (apt-get update first)
  echo "installing system packages: $*" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv python3-pip
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.edge-agent-installed-$EXTRAS"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing Python dependencies into .venv ($EXTRAS) ..." >&2
  log="$(mktemp)"
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[$EXTRAS]"; } \
      >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "pip install failed" >&2; exit 1
  fi
  rm -f "$log"
  touch "$stamp"
fi
