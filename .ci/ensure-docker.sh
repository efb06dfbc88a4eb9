#!/usr/bin/env bash
# Makes sure a Docker engine answers (for `sam local invoke` / `sam local start-api` and their tests).
# Idempotent: installs docker.io and debootstrap with apt-get when missing, starts dockerd in the
# background when `docker info` fails, and waits until it answers. Fails loudly when it cannot.
# DOCKER_WAIT_SECONDS (default 60) bounds the wait.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "ensure-docker: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null && SUDO="sudo" || SUDO="__none__"
fi
as_root() {
  [[ "$SUDO" == "__none__" ]] && die "need root (or sudo) to: $*"
  ${SUDO:+$SUDO} "$@"
}

missing=()
# The engine, not just a client: some images ship a bare `docker` CLI without dockerd.
command -v dockerd >/dev/null || [[ -x /usr/sbin/dockerd ]] || docker info >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them; install Docker yourself"
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  log "the Docker engine answers"
  exit 0
fi

# No engine: the service manager if there is one, else dockerd in the background.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  log "starting docker with systemctl"
  as_root systemctl start docker || log "systemctl start docker failed; trying dockerd directly"
fi
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || die "dockerd is not installed"
  if pgrep -x dockerd >/dev/null; then
    log "dockerd is running already; waiting for it"
  else
    mkdir -p .local
    log "starting dockerd in the background (log: .local/dockerd.log)"
    as_root nohup dockerd >.local/dockerd.log 2>&1 </dev/null &
    disown || true
  fi
fi

for _ in $(seq "${DOCKER_WAIT_SECONDS:-60}"); do
  if docker info >/dev/null 2>&1; then
    log "the Docker engine answers"
    exit 0
  fi
  sleep 1
done
[[ -f .local/dockerd.log ]] && tail -n 20 .local/dockerd.log >&2
die "the Docker engine did not answer within ${DOCKER_WAIT_SECONDS:-60}s"
