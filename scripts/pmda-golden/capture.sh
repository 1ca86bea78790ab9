#!/usr/bin/env bash
# Records the PDUs PCP 6.0.3's real pmcd exchanges with two real
# libpcp_pmda agents — PCP's pmdaroot (domain 1, started by pmcd itself) and
# pmdasample (domain 29, started through pmdaroot) — into pmda/__golden__/.
#
# A private pmcd (-c/-n: its own pmcd.conf and PMNS in a temporary folder;
# /etc/pcp is not touched) runs both agents behind tee-agent.js, and
# queries.py asks it one PMAPI call at a time. Also records what pminfo
# prints for pmdaroot's seven metrics (-d, -T), the truth that croot's root
# PMDA must print the same.
#
# Run as root from the checkout: bash scripts/pmda-golden/capture.sh
# It takes /tmp/croot-pmcd.lock itself, stops the system pmcd if it runs,
# and starts it again afterwards. Test containers it makes (croot-t-golden-*)
# are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=$PWD
OUT=${1:-$HERE/pmda/__golden__}
WORK=$(mktemp -d /tmp/croot-pmda-golden.XXXXXX)
chmod 755 "$WORK"   # pmdasample runs as the pcp user and reads its help here
RC=/etc/init.d/pmcd
PMCD=/usr/lib/pcp/bin/pmcd
PYTHON=/usr/bin/python3
TAG=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
say() { echo "capture: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "must run as root"; exit 1; }
exec 9>/tmp/croot-pmcd.lock
flock 9

was_running=no
if pgrep -x pmcd >/dev/null; then was_running=yes; "$RC" stop >/dev/null; fi
pmcd_pid=
cleanup() {
  if [ -n "$pmcd_pid" ] && kill -0 "$pmcd_pid" 2>/dev/null; then
    kill -TERM "$pmcd_pid"; wait "$pmcd_pid" 2>/dev/null || true
  fi
  docker rm -f "croot-t-golden-d-$TAG" "croot-t-golden-s-$TAG" >/dev/null 2>&1 || true
  podman rm -f "croot-t-golden-p-$TAG" >/dev/null 2>&1 || true
  [ "$was_running" = yes ] && "$RC" start >/dev/null
  if [ -z "${CROOT_KEEP_CAPTURE:-}" ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT

# Containers for pmdaroot to list: docker running and stopped, podman running.
docker run -d --name "croot-t-golden-d-$TAG" --hostname golden-d croot-test:latest sleep 100000 >/dev/null
docker create --name "croot-t-golden-s-$TAG" croot-test:latest sleep 1 >/dev/null
podman run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --name "croot-t-golden-p-$TAG" --hostname golden-p localhost/croot-test:latest sleep 100000 >/dev/null

# pmdasample's help, built from its source text (it looks for it under
# $PCP_PMDAS_DIR/sample, so its command line points that variable here).
(cd /var/lib/pcp/pmdas/sample && /usr/lib/pcp/bin/pmnsmerge -f /var/lib/pcp/pmns/root_pmcd /var/lib/pcp/pmdas/root/root_root ./root "$WORK/pmns")
sed -e 's/^@ SAMPLE\./@ 29./' /var/lib/pcp/pmdas/sample/help >"$WORK/sample-help.txt"
mkdir -p "$WORK/pmdas/sample"
/usr/lib/pcp/bin/newhelp -n "$WORK/pmns" -v 2 -o "$WORK/pmdas/sample/help" "$WORK/sample-help.txt" 2>/dev/null

TEE="/usr/bin/node $HERE/scripts/pmda-golden/tee-agent.js"
cat >"$WORK/pmcd.conf" <<EOF
root	1	pipe	binary		$TEE $WORK/pmdaroot.pdus /var/lib/pcp/pmdas/root/pmdaroot
pmcd	2	dso	pmcd_init	/var/lib/pcp/pmdas/pmcd/pmda_pmcd.so
sample	29	pipe	binary		$TEE $WORK/pmdasample.pdus /usr/bin/env PCP_PMDAS_DIR=$WORK/pmdas /var/lib/pcp/pmdas/sample/pmdasample -d 29

[access]
allow "local:*" : all;
EOF

(cd "$WORK" && PMCD_ROOT_AGENT=1 exec "$PMCD" -f -c "$WORK/pmcd.conf" -n "$WORK/pmns" -l "$WORK/pmcd.log" -x "$WORK/pmcd.fatal") &
pmcd_pid=$!
/usr/lib/pcp/bin/pmcd_wait -t 30
for _ in $(seq 1 50); do
  pminfo -n "$WORK/pmns" -f pmcd.agent.status 2>/dev/null | grep -q 'inst.*"sample"\] value 0' && break
  sleep 0.2
done
pminfo -n "$WORK/pmns" -f pmcd.agent.status >&2

"$PYTHON" scripts/pmda-golden/queries.py "$WORK/pmdaroot.pdus" "$WORK/pmdasample.pdus" >"$WORK/queries.out"
for path in "$WORK/pmdaroot.pdus" "$WORK/pmdasample.pdus"; do echo "# pminfo --container=croot-t-golden-d-$TAG -f sample.long.one" >>"$path"; done
pminfo -n "$WORK/pmns" --container="croot-t-golden-d-$TAG" -f sample.long.one >/dev/null
for path in "$WORK/pmdaroot.pdus" "$WORK/pmdasample.pdus"; do echo "# end of pminfo --container" >>"$path"; done

mkdir -p "$OUT"
pminfo -n "$WORK/pmns" -d containers >"$OUT/pmdaroot-pminfo-d.txt"
pminfo -n "$WORK/pmns" -T containers >"$OUT/pmdaroot-pminfo-T.txt"
pminfo -n "$WORK/pmns" -f containers >"$WORK/pminfo-f.txt"

kill -TERM "$pmcd_pid"; wait "$pmcd_pid" 2>/dev/null || true
pmcd_pid=
sleep 0.5
cp "$WORK/pmdaroot.pdus" "$WORK/pmdasample.pdus" "$OUT/"
cp "$WORK/queries.out" "$OUT/queries.out.txt"
say "pminfo -f containers said:"; cat "$WORK/pminfo-f.txt" >&2
say "wrote $OUT"
