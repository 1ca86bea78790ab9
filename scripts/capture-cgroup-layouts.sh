#!/usr/bin/env bash
# Captures real /proc/PID/cgroup files for test/fixtures/cgroup (see its
# README): processes placed by the kernel at the cgroup paths each engine
# and cgroup manager uses, and the kernel's own account of them.
#
# - Engine layouts: a real container run by runc through containerd's ctr
#   with `--cgroup PATH` (runc's cgroupfs manager creates PATH in every
#   mounted hierarchy, v1 and unified, and moves the container's init there),
#   PATH being the path the engine's systemd or cgroupfs manager would use.
# - Host layouts: a plain `sleep` this script writes into the root (or a
#   named group) of each hierarchy, as systemd or an admin would.
#
# Each capture is written whole as `hybrid-<layout>/cgroup` (this kernel is
# cgroup v1 hybrid: every mounted v1 hierarchy has a line, plus `0::`), and
# reduced to what a pure cgroup v2 kernel prints (its `0::` line only) as
# `v2-<layout>/cgroup`, or to what a pure v1 kernel prints (without the
# `0::` line, which appears only once cgroup2 is mounted) as `v1-<layout>`.
# Removes every container and cgroup it created. Needs root, ctr and the
# testbed's image (scripts/testbed-start.sh).
#
# Usage: bash scripts/capture-cgroup-layouts.sh [OUTDIR]   (default test/fixtures/cgroup)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-test/fixtures/cgroup}
image=docker.io/library/croot-test:latest
# The container id the layouts are written with (a made-up 64-hex digest, as Docker/containerd ids look).
ID=3f5c2d0c9b8e4a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918070
POD=5f1c7e2a_3b4d_4e6f_8a9b_0c1d2e3f4a5b

# The mount point of every cgroup hierarchy (v1 and cgroup2), from mountinfo.
mapfile -t mounts < <(awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5; break }}' /proc/self/mountinfo)
[ ${#mounts[@]} -gt 0 ] || { echo "capture: no cgroup hierarchy mounted" >&2; exit 1; }

created_dirs=()
containers=()
sleepers=()
tmp=$(mktemp)
cleanup() {
  for c in "${containers[@]}"; do
    ctr -n default task kill -s SIGKILL "$c" >/dev/null 2>&1 || true
    for _ in $(seq 50); do ctr -n default task delete "$c" >/dev/null 2>&1 && break; sleep 0.1; done
    ctr -n default container delete "$c" >/dev/null 2>&1 || true
  done
  for p in "${sleepers[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Deepest first; a group someone else uses meanwhile stays.
  for ((i = ${#created_dirs[@]} - 1; i >= 0; i--)); do rmdir "${created_dirs[i]}" 2>/dev/null || true; done
  rm -f "$tmp"
}
trap cleanup EXIT

# Remembers which components of PATH do not exist yet in any hierarchy, so cleanup removes exactly those.
note_new_dirs() {
  local path=$1 m prefix part
  [ -n "$path" ] || return 0
  for m in "${mounts[@]}"; do
    prefix=$m
    IFS=/ read -ra parts <<<"${path#/}"
    for part in "${parts[@]}"; do
      prefix=$prefix/$part
      [ -e "$prefix" ] || created_dirs+=("$prefix")
    done
  done
}

write() { # LAYOUT-DIR CONTENT
  mkdir -p "$out/$1"
  printf '%s\n' "$2" >"$out/$1/cgroup"
  echo "capture: $out/$1/cgroup" >&2
}

# Writes the whole capture (in $tmp) and its pure-v2 / pure-v1 reductions.
emit() { # NAME V2|V1|-
  local name=$1 reduce=$2 capture
  capture=$(cat "$tmp")
  write "hybrid-$name" "$capture"
  case $reduce in
    v2) write "v2-$name" "$(grep '^0::' <<<"$capture")" ;;
    v1) write "v1-$name" "$(grep -v '^0::' <<<"$capture")" ;;
  esac
}

# The functions below run in this shell (never in $(...): they record what
# they create for cleanup) and leave the capture in $tmp.

# A runc container (via ctr) at cgroup PATH; its init's /proc/PID/cgroup.
in_container() { # PATH
  local c pid
  c=croot-t-capture-$(head -c5 /dev/urandom | od -An -tx1 | tr -d ' \n')
  note_new_dirs "$1"
  containers+=("$c")
  ctr -n default run -d --cgroup "$1" "$image" "$c" sleep 100000 >/dev/null
  pid=$(ctr -n default task ls | awk -v c="$c" '$1 == c { print $2 }')
  cat "/proc/$pid/cgroup" >"$tmp"
}

# A sleep placed by this script: at PATH in the hierarchies whose mount point matches PATTERN, at the root elsewhere.
in_host_group() { # PATTERN PATH
  local pattern=$1 path=$2 pid m
  sleep 100000 </dev/null >/dev/null 2>&1 &
  pid=$!
  sleepers+=("$pid")
  for m in "${mounts[@]}"; do
    if [[ $m =~ $pattern ]]; then
      note_new_dirs "$path"
      mkdir -p "$m$path"
      echo "$pid" >"$m$path/cgroup.procs"
    else
      echo "$pid" >"$m/cgroup.procs"
    fi
  done
  cat "/proc/$pid/cgroup" >"$tmp"
}

# Docker, systemd cgroup driver: a scope per container under system.slice.
in_container "/system.slice/docker-$ID.scope"
emit docker-systemd v2
# Docker, cgroupfs driver (what dockerd does on this machine): /docker/<id> in every hierarchy.
in_container "/docker/$ID"
emit docker-cgroupfs v1
# kubelet + containerd CRI, systemd driver: the slice:cri-containerd:<id> triple of linux.cgroupsPath, expanded.
in_container "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$POD.slice/cri-containerd-$ID.scope"
emit k8s-systemd v2
# Rootless podman under the user's systemd: the payload in the `container` child of libpod-<id>.scope.
in_container "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-$ID.scope/container"
emit podman-rootless v2
# A host process in the root cgroup of every hierarchy.
in_host_group '^$' ''
emit host-root v2
# A v1 host process whose memory group is the root: pmcd.service in the name=systemd and pids hierarchies only.
in_host_group '/(systemd|pids)$' '/system.slice/pmcd.service'
write v1-memory-at-root "$(cat "$tmp")"
