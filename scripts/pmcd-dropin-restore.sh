#!/usr/bin/env bash
# Undoes scripts/pmcd-dropin.sh: stops pmcd, stops crootd, puts the original
# /etc/pcp/pmcd/pmcd.conf back, and starts pmcd again (with PCP's own
# pmdaroot) if it was running before. Safe to run more than once, and after
# an interrupted test run (it also restores pmcd.conf.croot-backup left by
# test/pcp-pmcd-dropin.int.test.ts).
set -euo pipefail

CONF=/etc/pcp/pmcd/pmcd.conf
BACKUP=$CONF.croot-backup
RC=/etc/init.d/pmcd
RUN_DIR=${CROOT_DROPIN_RUN:-/run/croot-dropin}

say() { echo "pmcd-dropin-restore: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "must run as root"; exit 1; }

"$RC" stop >/dev/null 2>&1 || true

if [ -f "$RUN_DIR/crootd.pid" ]; then
  pid=$(cat "$RUN_DIR/crootd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "stopped crootd ($pid)"
  fi
  rm -f "$RUN_DIR/crootd.pid"
fi

if [ -f "$BACKUP" ]; then
  cat "$BACKUP" >"$CONF"
  rm -f "$BACKUP"
  say "restored $CONF"
fi

if [ "$(cat "$RUN_DIR/pmcd-was-running" 2>/dev/null || echo no)" = yes ]; then
  "$RC" start >/dev/null
  say "pmcd started again (with PCP's pmdaroot)"
fi
rm -f "$RUN_DIR/pmcd-was-running"
