#!/usr/bin/env bash
# croot's main job on this machine, from a fresh checkout, as root: build,
# start a namespace sandbox that croot declares in its config (so there are
# real answers even with no container engine), start crootd, and ask it the
# three questions pmdaroot answers, for the sandbox and for every running
# container of every engine croot finds.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (crootd is a root service)" >&2; exit 1; }
if [ ! -f native/build/Release/croot_native.node ] || [ ! -f dist/bin/crootd.js ]; then
  echo "== installing and building (npm ci)"
  npm ci --no-audit --no-fund >/tmp/croot-demo-npm.log 2>&1 || { tail -30 /tmp/croot-demo-npm.log; exit 1; }
fi
work=$(mktemp -d /tmp/croot-demo.XXXXXX)
sock="$work/run/root.socket"
cleanup() {
  [ -n "${crootd:-}" ] && kill -TERM "$crootd" 2>/dev/null && wait "$crootd" 2>/dev/null || true
  [ -n "${init:-}" ] && kill -KILL "$init" 2>/dev/null || true
  [ -n "${sandbox:-}" ] && kill -KILL "$sandbox" 2>/dev/null && wait "$sandbox" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting a sandbox: new UTS and PID namespaces, hostname croot-demo-sandbox"
unshare --uts --pid --fork --kill-child --mount-proc sh -c 'hostname croot-demo-sandbox; exec sleep 3600' </dev/null >/dev/null 2>&1 &
sandbox=$!
for _ in $(seq 50); do
  init=$(pgrep -P "$sandbox" -x sleep || true)
  [ -n "$init" ] && break; sleep 0.1
done
[ -n "$init" ] || { echo "demo: the sandbox did not start" >&2; exit 1; }
cat >"$work/croot.json" <<JSON
{ "containers": [ { "name": "demo-sandbox", "pid": $init } ] }
JSON
echo "   sandbox init pid $init (host view); config $work/croot.json"

echo "== starting crootd on $sock"
node dist/bin/crootd.js --socket "$sock" --config "$work/croot.json" --log-file "$work/crootd.log" &
crootd=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "demo: crootd did not start:" >&2; cat "$work/crootd.log" >&2; exit 1; }

croot() { node dist/bin/croot.js --config "$work/croot.json" "$@"; }
echo
echo "== engines and containers croot sees"
croot list
echo
echo "== asking crootd over PCP's root protocol"
names="demo-sandbox"
for n in $(croot list --json | node -e '
  const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
  for (const c of d.containers) if (c.running && c.engine !== "static") console.log(`${c.engine}:${c.names[0] ?? c.id}`);'); do
  names="$names $n"
done
printf '%-34s %-24s %8s  %s\n' NAME HOSTNAME PID CGROUP
for n in $names; do
  h=$(croot --socket "$sock" hostname "$n" 2>&1) || true
  p=$(croot --socket "$sock" pid "$n" 2>&1) || true
  c=$(croot --socket "$sock" cgroup "$n" 2>&1) || true
  printf '%-34s %-24s %8s  %s\n' "$n" "$h" "$p" "$c"
done
echo
echo "== the truth, from the host: hostname inside the sandbox = $(nsenter -t "$init" -u hostname), cgroup line: $(grep -E '^0::|memory' /proc/$init/cgroup | head -1)"
echo
echo "== a name that matches nothing"
croot --socket "$sock" hostname no-such-container || true
echo
echo "== crootd's log"
cat "$work/crootd.log"
