#!/usr/bin/env bash
# Debian packages the tests drive: chromium (console browser tests), promtool and docker-compose
# (checks of the deployment files). Installed when missing; without them the tests that need them
# fail under CI=true and skip elsewhere, saying which is missing.
set -uo pipefail

sudo=$([ "$(id -u)" = 0 ] || echo sudo)
apt_install() {
  local apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get)
  { "${apt[@]}" install -y --no-install-recommends "$@" || { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "$@"; }; } >/dev/null
}

status=0
need() {  # need <command> <package>
  command -v "$1" >/dev/null && return 0
  echo "$1: missing, installing $2"
  apt_install "$2" || { echo "$1: install of $2 failed" >&2; status=1; }
}
need chromium chromium
need promtool prometheus
docker compose version >/dev/null 2>&1 || need docker-compose docker-compose
exit $status
