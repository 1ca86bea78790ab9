#!/usr/bin/env bash
# Installs the real components croot's tests talk to (see docs/testing.md):
# Docker, Podman, containerd, runc, busybox-static, PCP and its PMDA headers,
# LXC with its templates (the busybox one needs no download).
# Safe to run again; does nothing that is already done.
set -euo pipefail
need=()
for p in docker.io podman containerd runc busybox-static pcp libpcp-pmda3-dev uidmap lxc lxc-templates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
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
rm -rf "$nosd"
