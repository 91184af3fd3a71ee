#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, for the container suite and `make image`.
#   deploy/engine.sh start   installs docker.io (apt) when dockerd is missing, starts /usr/sbin/dockerd
#                            in the background when no engine answers, waits for it (bounded), and
#                            prints the pid it started ("" when an engine was already running).
#   deploy/engine.sh stop PID  stops the engine that `start` started (SIGTERM, then SIGKILL).
# Needs root for the install and the start; a running engine is used as it is.
set -euo pipefail
log() { echo "engine: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

start() {
  if engine_answers; then
    log "a Docker engine already answers; using it"
    echo ""
    return 0
  fi
  if ! command -v docker >/dev/null 2>&1 || [ ! -x /usr/sbin/dockerd ]; then
    log "installing docker.io and busybox-static with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends docker.io busybox-static iptables >&2
  fi
  local logfile=${DOCKERD_LOG:-/tmp/parabft-dockerd.log}
  log "starting /usr/sbin/dockerd (log: $logfile)"
  /usr/sbin/dockerd >"$logfile" 2>&1 &
  local pid=$!
  local deadline=$((SECONDS + ${ENGINE_WAIT_S:-180}))
  until engine_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "dockerd exited; last log lines:"; tail -n 20 "$logfile" >&2; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "dockerd did not answer within ${ENGINE_WAIT_S:-180} s"; kill "$pid" 2>/dev/null || true; exit 1
    fi
    sleep 1
  done
  log "engine up (pid $pid)"
  echo "$pid"
}

stop() {
  local pid=${1:-}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  # containerd runs as dockerd's child and exits with it; nothing else to stop.
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop PID" >&2; exit 2 ;;
esac
