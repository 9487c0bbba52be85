#!/usr/bin/env bash
# Install edge-agent on Raspberry Pi OS Bookworm (or Debian 12+) as a systemd service.
#
#   sudo ./scripts/install.sh [--example NAME] [--kiosk] [--no-apt] [--no-start]
#   sudo ./scripts/install.sh --uninstall [--purge]
#
# What it does (each step is skipped when already done, so running it again is safe):
#   1. apt packages: python3-venv, python3-lgpio, CUPS, python3-picamera2 where the OS has it
#      (Raspberry Pi OS), python3-opencv; with --kiosk also chromium and a CJK font
#   2. a system user `edge-agent` in the groups gpio, video and lp (groups made when missing)
#   3. /opt/edge-agent/.venv (--system-site-packages, so apt's picamera2 and lgpio are seen) with edge-agent in it
#   4. /etc/edge-agent/config.toml from config/<NAME>.toml - never overwriting one that exists -, an
#      /etc/edge-agent/environment file for *_env keys (0600), key files (*key_file, *password_file,
#      *token_file) owned by the service user with mode 0600
#   5. the unit in /etc/systemd/system, enabled; started when `edge-agent check-config` passes
#
# --uninstall stops and removes the service and /opt/edge-agent, and keeps the config, the queue and the results
# (/etc/edge-agent, /var/lib/edge-agent) and the user; --purge removes those too.
# --root DIR installs into DIR as if it were / (for tests and image builds): no apt, no service start.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=""
EXAMPLE="photobooth"
KIOSK=0
APT=1
START=1
UNINSTALL=0
PURGE=0
USER_NAME="edge-agent"
PREFIX="/opt/edge-agent"
CONF="/etc/edge-agent"
STATE="/var/lib/edge-agent"
UNITS="/etc/systemd/system"
PY="${EDGE_AGENT_PYTHON:-/usr/bin/python3}"  # the system Python: its site-packages hold apt's picamera2

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  echo "examples: $(cd "$SRC/config" && ls ./*.toml | sed 's|^\./||; s|\.toml$||' | tr '\n' ' ')"
}
die() { echo "install.sh: $*" >&2; exit 2; }
say() { echo "edge-agent install: $*"; }

while (($#)); do
  case "$1" in
    --example) EXAMPLE="${2:?--example needs a name}"; shift 2 ;;
    --example=*) EXAMPLE="${1#*=}"; shift ;;
    --kiosk) KIOSK=1; shift ;;
    --no-apt) APT=0; shift ;;
    --no-start) START=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0 $*"
if [ -n "$ROOT" ]; then
  ROOT="$(cd "$ROOT" && pwd)" || die "--root: no such directory"
  APT=0; START=0
fi
[ -f "$SRC/config/$EXAMPLE.toml" ] || die "no example config named '$EXAMPLE' (see --help)"

# ------------------------------------------------------------------------------------------------ helpers
R() { echo "$ROOT$1"; }  # a path inside the target root
user_tool() {  # useradd/groupadd/usermod/userdel against the target root's /etc files
  local tool="$1"; shift
  if [ -n "$ROOT" ]; then "$tool" --prefix "$ROOT" "$@"; else "$tool" "$@"; fi
}
id_of() {  # id_of passwd|group NAME -> the numeric id in the target root (not the host's)
  awk -F: -v n="$2" '$1 == n { print $3 }' "$(R /etc/"$1")"
}
systemctl_() {
  if [ -n "$ROOT" ]; then systemctl --root="$ROOT" "$@"; else systemctl "$@"; fi
}

# ------------------------------------------------------------------------------------------------ uninstall
if ((UNINSTALL)); then
  if [ -f "$(R "$UNITS/edge-agent.service")" ]; then
    [ -n "$ROOT" ] || systemctl disable --now edge-agent.service >/dev/null 2>&1 || true
    [ -z "$ROOT" ] || systemctl_ disable edge-agent.service >/dev/null 2>&1 || true
    rm -f "$(R "$UNITS/edge-agent.service")"
    [ -n "$ROOT" ] || systemctl daemon-reload
    say "service stopped and removed"
  fi
  rm -rf "$(R "$PREFIX")"
  say "removed $PREFIX"
  if ((PURGE)); then
    rm -rf "$(R "$CONF")" "$(R "$STATE")"
    if [ -n "$(id_of passwd "$USER_NAME")" ]; then user_tool userdel "$USER_NAME" >/dev/null 2>&1 || true; fi
    say "purged $CONF, $STATE (queue and results) and the user $USER_NAME"
  else
    say "kept $CONF (config, keys) and $STATE (queue and results); --purge removes them"
  fi
  exit 0
fi

# ------------------------------------------------------------------------------------------------ 1. packages
apt_has() { apt-cache show "$1" >/dev/null 2>&1; }
if ((APT)); then
  pkgs=(python3-venv python3-pip cups cups-client cups-bsd)
  for p in python3-lgpio python3-picamera2 python3-opencv; do
    if apt_has "$p"; then pkgs+=("$p"); else say "$p is not in this OS's packages; skipped"; fi
  done
  ((KIOSK)) && pkgs+=(chromium fonts-wqy-microhei)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "apt install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "system packages already installed"
  fi
fi

# ------------------------------------------------------------------------------------------------ 2. user
for g in gpio video lp; do
  if [ -z "$(id_of group "$g")" ]; then user_tool groupadd --system "$g"; say "made group $g"; fi
done
if [ -z "$(id_of passwd "$USER_NAME")" ]; then
  user_tool useradd --system --user-group --home-dir "$STATE" --no-create-home \
    --shell /usr/sbin/nologin --comment "edge-agent photo booth" --groups gpio,video,lp "$USER_NAME"
  say "made system user $USER_NAME (groups gpio, video, lp)"
else
  user_tool usermod --append --groups gpio,video,lp "$USER_NAME"
fi
uid="$(id_of passwd "$USER_NAME")"
gid="$(id_of group "$USER_NAME")"

# ------------------------------------------------------------------------------------------------ 3. program
venv="$(R "$PREFIX/.venv")"
mkdir -p "$(R "$PREFIX")"
if [ ! -x "$venv/bin/python" ]; then
  "$PY" -m venv --system-site-packages "$venv"
  say "made $PREFIX/.venv"
fi
# the program is re-installed only when its source changed
hash="$(cd "$SRC" && find agent hardware pyproject.toml -type f \( -name '*.py' -o -name '*.toml' -o -name '*.json' \
  -o -name '*.html' -o -name '*.css' -o -name '*.js' -o -name 'py.typed' \) -print0 | sort -z | xargs -0 sha256sum \
  | sha256sum | cut -c1-16)"
stamp="$(R "$PREFIX/.installed")"
if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
  extras=""
  "$venv/bin/python" -c 'import cv2' 2>/dev/null || extras="[opencv]"  # apt's python3-opencv when present
  build="$(mktemp -d)"
  cp -r "$SRC/agent" "$SRC/hardware" "$SRC/pyproject.toml" "$SRC/README.md" "$build/"  # no build files in $SRC
  say "installing edge-agent$extras into $PREFIX/.venv ..."
  log="$(mktemp)"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$build$extras" >"$log" 2>&1; then
    cat "$log" >&2; rm -rf "$build" "$log"; die "pip install failed (output above)"
  fi
  rm -rf "$build" "$log"
  echo "$hash" >"$stamp"
else
  say "edge-agent is up to date in $PREFIX/.venv"
fi
install -m 0644 "$SRC/README.md" "$(R "$PREFIX/README.md")"
mkdir -p "$(R "$PREFIX/examples")"
install -m 0644 "$SRC"/config/*.toml "$(R "$PREFIX/examples/")"

# ------------------------------------------------------------------------------------------------ 4. config
install -d -m 0750 -o 0 -g "$gid" "$(R "$CONF")"
install -d -m 0750 -o "$uid" -g "$gid" "$(R "$STATE")"
cfg="$(R "$CONF/config.toml")"
if [ -e "$cfg" ]; then
  say "kept the existing $CONF/config.toml"
else
  install -m 0640 -o 0 -g "$gid" "$SRC/config/$EXAMPLE.toml" "$cfg"
  say "wrote $CONF/config.toml from the '$EXAMPLE' example: edit it, then: sudo systemctl restart edge-agent"
fi
envfile="$(R "$CONF/environment")"
if [ ! -e "$envfile" ]; then
  umask 077
  cat >"$envfile" <<'EOF'
# Environment of the edge-agent service (read by systemd as root; mode 0600).
# Secrets named by *_env keys in config.toml go here, e.g.:
# EASYAI_API_KEY=...
# HAIYI_API_KEY=...
EOF
  umask 022
fi
chown 0:0 "$envfile"; chmod 0600 "$envfile"
# key files the config names: readable by the service user only
"$PY" - "$cfg" "$ROOT" <<'EOF' | while IFS= read -r f; do chown "$uid:$gid" "$f"; chmod 0600 "$f"; done
import sys, tomllib
from pathlib import Path
cfg, root = Path(sys.argv[1]), sys.argv[2]
try:
    data = tomllib.loads(cfg.read_text(encoding="utf-8-sig"))
except (OSError, ValueError):
    sys.exit(0)  # check-config below says what is wrong
def walk(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and k.endswith(("key_file", "password_file", "token_file")):
                yield v
            else:
                yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)
for f in walk(data):
    p = Path(root + f) if f.startswith("/") else cfg.parent / f
    # a symlink could point anywhere (root runs this): only plain files in the config folder are handed over
    if p.is_file() and not p.is_symlink() and p.parent.resolve() == cfg.parent.resolve():
        print(p)
EOF

# ------------------------------------------------------------------------------------------------ 5. service
unit="$(R "$UNITS/edge-agent.service")"
mkdir -p "$(dirname "$unit")"
if ! cmp -s "$SRC/systemd/edge-agent.service" "$unit"; then
  install -m 0644 "$SRC/systemd/edge-agent.service" "$unit"
  [ -n "$ROOT" ] || systemctl daemon-reload
  say "installed $UNITS/edge-agent.service"
fi
systemctl_ enable edge-agent.service >/dev/null 2>&1 || systemctl_ enable edge-agent.service
check() {  # check-config as the service will see it: with the environment file's variables
  (set -a; . "$envfile"; set +a; exec "$venv/bin/edge-agent" check-config "$cfg")
}
if check >/dev/null 2>&1; then
  if ((START)); then
    systemctl restart edge-agent.service
    say "service started: systemctl status edge-agent ; edge-agent status ; edge-agent doctor"
  else
    say "service enabled (not started)"
  fi
else
  say "the config does not pass yet; fix what this says, then: sudo systemctl restart edge-agent"
  check || true
fi
