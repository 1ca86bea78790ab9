#!/usr/bin/env bash
# Puts crootd in the place of PCP's pmdaroot under the real pmcd:
#   1. stops pmcd (and with it PCP's pmdaroot), remembering whether it ran;
#   2. copies /etc/pcp/pmcd/pmcd.conf to pmcd.conf.croot-backup and removes
#      the `root` agent line from pmcd.conf;
#   3. starts crootd on /var/lib/pcp/pmcd/root.socket (stderr, and so the
#      agents' stderr, appended to $CROOT_DROPIN_LOG);
#   4. starts pmcd, which now asks crootd to start every PMDA;
#   5. shows pmcd.agent.status, kernel.uname.nodename, and the node name
#      inside each container named on the command line.
# Undo everything with scripts/pmcd-dropin-restore.sh.
#
# Usage: scripts/pmcd-dropin.sh [CONTAINER...]
# Env:   CROOTD            command that runs crootd (default: node dist/bin/crootd.js)
#        CROOT_DROPIN_LOG  crootd's log (default /var/log/pcp/crootd.log)
#        CROOT_DROPIN_RUN  state directory (default /run/croot-dropin)
set -euo pipefail
cd "$(dirname "$0")/.."

CONF=/etc/pcp/pmcd/pmcd.conf
BACKUP=$CONF.croot-backup
SOCKET=/var/lib/pcp/pmcd/root.socket
RC=/etc/init.d/pmcd
LOG=${CROOT_DROPIN_LOG:-/var/log/pcp/crootd.log}
RUN_DIR=${CROOT_DROPIN_RUN:-/run/croot-dropin}
USER_CROOTD=${CROOTD:-}
CROOTD=${CROOTD:-node $PWD/dist/bin/crootd.js}

say() { echo "pmcd-dropin: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x "$RC" ] || die "$RC not found (is pcp installed?)"
[ ! -e "$BACKUP" ] || die "$BACKUP exists: a drop-in is already in place (scripts/pmcd-dropin-restore.sh undoes it)"
if [ -z "$USER_CROOTD" ]; then
  [ -f dist/bin/crootd.js ] || die "dist/bin/crootd.js missing: run 'npm run build' first"
  grep -q processServiceModule dist/bin/*.js ||
    die "this crootd build does not load the process service (processServiceModule): pmcd could not start its agents"
fi
mkdir -p "$RUN_DIR" "$(dirname "$LOG")"

# 1. stop pmcd (its pmdaroot goes with it)
if pgrep -x pmcd >/dev/null; then echo yes >"$RUN_DIR/pmcd-was-running"; else echo no >"$RUN_DIR/pmcd-was-running"; fi
"$RC" stop >/dev/null 2>&1 || true
for _ in $(seq 1 100); do
  pgrep -x pmcd >/dev/null || break
  sleep 0.1
done
! pgrep -x pmcd >/dev/null || die "pmcd did not stop"

# 2. pmcd.conf without the root line (written in place: owner and mode kept);
#    from here on, a failure undoes everything
trap 'status=$?; if [ "$status" -ne 0 ]; then say "failed; undoing"; "$PWD/scripts/pmcd-dropin-restore.sh"; fi' EXIT
cp -p "$CONF" "$BACKUP"
awk '!/^[[:space:]]*root[[:space:]]/' "$BACKUP" >"$CONF"
say "removed the root line from $CONF (original in $BACKUP)"

# 3. crootd, detached, on PCP's root socket
say "starting crootd: $CROOTD --socket $SOCKET (log $LOG)"
# shellcheck disable=SC2086 # CROOTD is a command line
setsid nohup $CROOTD --socket "$SOCKET" </dev/null >>"$LOG" 2>&1 &
echo $! >"$RUN_DIR/crootd.pid"
for _ in $(seq 1 100); do
  [ -S "$SOCKET" ] && break
  kill -0 "$(cat "$RUN_DIR/crootd.pid")" 2>/dev/null || die "crootd exited; last lines of $LOG:
$(tail -n 20 "$LOG")"
  sleep 0.1
done
[ -S "$SOCKET" ] || die "crootd did not listen on $SOCKET"

# 4. pmcd
"$RC" start >/dev/null
say "pmcd started"

# 5. show it
for _ in $(seq 1 40); do
  pminfo -f pmcd.agent.status 2>/dev/null | grep -q 'value' && break
  sleep 0.25
done
pminfo -f pmcd.agent.status
pminfo -f kernel.uname.nodename
echo "agents crootd started:"
grep 'started process' "$LOG" | tail -n 20 || true
for name in "$@"; do
  echo "--- container $name"
  pminfo --container="$name" -f kernel.uname.nodename || true
done
