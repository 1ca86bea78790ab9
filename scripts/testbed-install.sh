#!/usr/bin/env bash
# Installs the real components croot's tests talk to (see docs/testing.md):
# Docker, Podman, containerd, runc, busybox-static, PCP and its PMDA headers,
# LXC with its templates (the busybox one needs no download); and what a
# fresh machine lacks to build and test croot beyond Node 20: the C/C++
# toolchain and python3 for node-gyp (the addon), gcc for the PCP C client
# the tests compile, openssl for the Docker TLS test's certificates, procps
# (pgrep, ps).
# Safe to run again; does nothing that is already done.
set -euo pipefail
need=()
for p in docker.io podman containerd runc busybox-static pcp libpcp-pmda3-dev uidmap lxc lxc-templates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
# Tools, by command rather than by package: a python3 or compiler from
# elsewhere on PATH (pyenv, a toolchain image) is as good as Debian's.
want() { [[ " ${need[*]} " == *" $1 "* ]] || need+=("$1"); }
tool() { command -v "$1" >/dev/null 2>&1 || want "$2"; } # COMMAND PACKAGE
tool gcc build-essential
tool g++ build-essential
tool make build-essential
[ -e /usr/include/stdio.h ] || want build-essential # libc6-dev
tool python3 python3
tool openssl openssl
tool pgrep procps
tool ps procps
# Without systemd, pcp's postinst runs `systemctl daemon-reload` and fails:
# a no-op systemctl first in PATH keeps apt-get from leaving it half-configured.
nosd=$(mktemp -d)
printf '#!/bin/sh\nexit 0\n' >"$nosd/systemctl"
chmod +x "$nosd/systemctl"
export PATH="$nosd:$PATH" DEBIAN_FRONTEND=noninteractive
dpkg --configure -a >/dev/null 2>&1 || true
if [ ${#need[@]} -gt 0 ]; then
  echo "testbed: installing ${need[*]}" >&2
  apt-get update -qq
  # apt-get runs dpkg with its own PATH (DPkg::Path), so the no-op systemctl
  # goes there too; a second configure pass is the fallback.
  apt-get install -y -qq --no-install-recommends -o "DPkg::Path=$nosd:/usr/sbin:/usr/bin:/sbin:/bin" \
    "${need[@]}" >/tmp/croot-apt.log 2>&1 ||
    dpkg --configure -a >>/tmp/croot-apt.log 2>&1 || true
fi
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    { echo "testbed: $p did not install (see /tmp/croot-apt.log)" >&2; exit 1; }
done
for c in gcc g++ make python3 openssl pgrep; do
  command -v "$c" >/dev/null 2>&1 || { echo "testbed: $c still missing after installing" >&2; exit 1; }
done
rm -rf "$nosd"
