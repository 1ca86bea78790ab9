#!/usr/bin/env bash
# Stops the daemons scripts/testbed-start.sh started (and only those: it reads
# their pidfiles in $CROOT_TESTBED_RUN, default /run/croot-testbed). For
# developers; CI machines are thrown away instead.
set -uo pipefail

RUN_DIR=${CROOT_TESTBED_RUN:-/run/croot-testbed}
say() { echo "testbed: $*" >&2; }

stop_one() {
  local name=$1 pidfile="$RUN_DIR/$1.pid" pid
  [ -f "$pidfile" ] || { say "$name: not started by testbed-start.sh"; return 0; }
  pid=$(cat "$pidfile")
  if ! kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) already gone"
    rm -f "$pidfile"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) ignored SIGTERM for 30s: sending SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

# dockerd first: it stops its containers, which live in that containerd.
stop_one dockerd
stop_one containerd
