#!/usr/bin/env bash
# Starts the real components croot's integration tests talk to, on a machine
# without systemd: containerd, dockerd on top of it, and the
# registry-less busybox image `croot-test:latest` in docker, podman and
# containerd, and a user `croot-rootless` with that image in its own rootless
# podman store. Run as root. Safe to run again: starts and imports only what is
# missing. Daemons are detached (setsid + nohup) so they outlive this script;
# their pids go to $CROOT_TESTBED_RUN (default /run/croot-testbed) for
# scripts/testbed-stop.sh.
set -euo pipefail

RUN_DIR=${CROOT_TESTBED_RUN:-/run/croot-testbed}
WAIT_SECONDS=${CROOT_TESTBED_WAIT:-60}
IMAGE=croot-test:latest
BUSYBOX=${CROOT_TESTBED_BUSYBOX:-/bin/busybox}

say() { echo "testbed: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
mkdir -p "$RUN_DIR"

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every half second.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.5
  done
  say "$what is up"
}

# start_daemon NAME LOG CMD...: detached from this shell's session and stdin.
start_daemon() {
  local name=$1 log=$2
  shift 2
  say "starting $name (log $log)"
  # Without the caller's other descriptors (a flock(1) lock, a CI runner's
  # pipes): the daemon outlives the caller and must not hold them.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid nohup "$@" </dev/null >"$log" 2>&1
  ) &
  echo $! >"$RUN_DIR/$name.pid"
}

docker_up() { timeout 10 docker info --format '{{.ID}}'; }
ctr_up() { timeout 10 ctr version; }

# --- containerd (standalone; dockerd uses it too) ---------------------------
# Started first, and dockerd is pointed at it, the way distribution packages
# run the two: one containerd, Docker's containers in its `moby` namespace.
# A machine image can carry a socket file whose daemon is gone; containerd
# and dockerd would both trip over it, so a dead one is removed first.
CONTAINERD_SOCK=/run/containerd/containerd.sock
if ! ctr_up >/dev/null 2>&1; then
  command -v containerd >/dev/null || die "containerd not installed (run scripts/testbed-install.sh)"
  for stale in "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"; do
    if [ -S "$stale" ]; then
      say "removing stale $stale (no containerd answers on it)"
      rm -f "$stale"
    fi
  done
  start_daemon containerd /tmp/containerd.log containerd
  wait_for "$WAIT_SECONDS" containerd ctr_up ||
    die "containerd did not answer 'ctr version' within ${WAIT_SECONDS}s (socket $CONTAINERD_SOCK); last lines of /tmp/containerd.log:
$(tail -n 20 /tmp/containerd.log 2>/dev/null)"
else
  say "containerd already running"
fi

# --- dockerd ------------------------------------------------------------------
if ! docker_up >/dev/null 2>&1; then
  command -v dockerd >/dev/null || die "dockerd not installed (run scripts/testbed-install.sh)"
  # dockerd refuses to start over a pidfile whose pid is alive, and a pid
  # recorded before the machine image was taken may now be any process.
  if [ -f /var/run/docker.pid ]; then
    old=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -z "$old" ] || [ "$(cat "/proc/$old/comm" 2>/dev/null)" != dockerd ]; then
      say "removing stale /var/run/docker.pid (${old:-empty})"
      rm -f /var/run/docker.pid
    fi
  fi
  start_daemon dockerd /tmp/dockerd.log dockerd --containerd="$CONTAINERD_SOCK"
  wait_for "$WAIT_SECONDS" dockerd docker_up ||
    die "dockerd did not answer 'docker info' within ${WAIT_SECONDS}s; last lines of /tmp/dockerd.log:
$(tail -n 20 /tmp/dockerd.log 2>/dev/null)"
else
  say "dockerd already running"
fi

# --- the busybox image ------------------------------------------------------
rootfs_tar=
make_rootfs_tar() {
  [ -n "$rootfs_tar" ] && return 0
  [ -x "$BUSYBOX" ] || die "$BUSYBOX missing (install busybox-static)"
  local root
  root=$(mktemp -d /tmp/croot-rootfs.XXXXXX)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
  cp "$BUSYBOX" "$root/bin/busybox"
  for c in sh sleep hostname cat ls echo true false env id ps kill; do
    ln -sf busybox "$root/bin/$c"
  done
  rootfs_tar=$(mktemp /tmp/croot-rootfs.XXXXXX.tar)
  tar -C "$root" -cf "$rootfs_tar" .
  rm -rf "$root"
}

# ensure_lists CMD...: the podman that CMD runs has container lists in its store.
ensure_lists() {
  local graph driver
  graph=$("$@" info --format '{{.Store.GraphRoot}}' 2>/dev/null) || die "$* info failed"
  driver=$("$@" info --format '{{.Store.GraphDriverName}}' 2>/dev/null) || die "$* info failed"
  [ -f "$graph/$driver-containers/containers.json" ] && return 0
  say "giving $graph its container lists (one container made and removed)"
  "$@" create -q --name croot-testbed-lists "localhost/$IMAGE" true >/dev/null &&
    "$@" rm -f croot-testbed-lists >/dev/null || die "$* could not make and remove a container"
  [ -f "$graph/$driver-containers/containers.json" ] || die "$graph/$driver-containers/containers.json still missing"
}

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  make_rootfs_tar
  say "importing $IMAGE into docker"
  docker import "$rootfs_tar" "$IMAGE" >/dev/null || die "docker import of $IMAGE failed"
fi

if command -v podman >/dev/null; then
  if ! podman image exists "localhost/$IMAGE" 2>/dev/null; then
    make_rootfs_tar
    say "importing localhost/$IMAGE into podman"
    podman import -q "$rootfs_tar" "localhost/$IMAGE" >/dev/null || die "podman import of localhost/$IMAGE failed"
  fi
  # A store gets its container lists with its first container; until then
  # croot reports it as having none to read. Tests want the lists of a used
  # podman: one container made and removed gives them.
  ensure_lists podman
else
  say "podman not installed: skipping its image"
fi

if ! ctr images ls -q 2>/dev/null | grep -qx "docker.io/library/$IMAGE"; then
  say "importing docker.io/library/$IMAGE into containerd"
  docker save "$IMAGE" | ctr images import --base-name docker.io/library/croot-test - >/dev/null ||
    die "ctr images import of docker.io/library/$IMAGE failed"
  ctr images ls -q | grep -qx "docker.io/library/$IMAGE" ||
    die "containerd does not list docker.io/library/$IMAGE after import"
fi

# --- rootless podman: a test user with its own store ------------------------
# test/podman-rootless.int.test.ts runs containers as this user. useradd
# normally gives it subordinate uid/gid ranges (login.defs SUB_UID_*); when
# it did not (or the user predates them), a free range past the highest one
# in use is added. Its runtime dir is made as logind would make it
# (/run/user/UID, 0700, owned by the user; /run is emptied at boot), and
# podman runs with XDG_RUNTIME_DIR pointing there. The image is copied from
# docker through a world-readable temporary `docker save` file.
ROOTLESS_USER=${CROOT_TESTBED_ROOTLESS_USER:-croot-rootless}

# next_subid_start FILE: the first id after every range in FILE (100000 at least).
next_subid_start() {
  awk -F: 'BEGIN { n = 100000 } NF >= 3 && $2 + $3 > n { n = $2 + $3 } END { print n }' "$1" 2>/dev/null || echo 100000
}

as_rootless() {
  (cd / && runuser -u "$ROOTLESS_USER" -- env XDG_RUNTIME_DIR="/run/user/$rootless_uid" "$@")
}

if command -v podman >/dev/null; then
  if ! id -u "$ROOTLESS_USER" >/dev/null 2>&1; then
    say "adding user $ROOTLESS_USER for rootless podman"
    useradd -m -s /bin/bash "$ROOTLESS_USER" || die "useradd $ROOTLESS_USER failed"
  fi
  rootless_uid=$(id -u "$ROOTLESS_USER")
  subids_added=
  for kind in uid gid; do
    if ! grep -q "^$ROOTLESS_USER:" "/etc/sub$kind" 2>/dev/null; then
      start=$(next_subid_start "/etc/sub$kind")
      say "adding sub${kind}s $start-$((start + 65535)) for $ROOTLESS_USER"
      # usermod refuses while the user has processes (podman's pause process).
      usermod "--add-sub${kind}s" "$start-$((start + 65535))" "$ROOTLESS_USER" 2>/dev/null ||
        echo "$ROOTLESS_USER:$start:65536" >>"/etc/sub$kind" ||
        die "adding sub${kind}s for $ROOTLESS_USER failed"
      subids_added=yes
    fi
  done
  if [ ! -d "/run/user/$rootless_uid" ]; then
    say "making /run/user/$rootless_uid for $ROOTLESS_USER"
    mkdir -p /run/user
    install -d -m 0700 -o "$ROOTLESS_USER" -g "$(id -g "$ROOTLESS_USER")" "/run/user/$rootless_uid"
  fi
  if [ -n "$subids_added" ]; then
    # A podman that ran before the ranges existed keeps its old user namespace.
    as_rootless podman system migrate >/dev/null 2>&1 || true
  fi
  if ! as_rootless podman image exists "localhost/$IMAGE" 2>/dev/null; then
    say "loading localhost/$IMAGE into $ROOTLESS_USER's podman store"
    saved=$(mktemp /tmp/croot-rootless-image.XXXXXX.tar)
    if docker save "$IMAGE" -o "$saved" && chmod 644 "$saved" && as_rootless podman load -q -i "$saved" >/dev/null; then
      rm -f "$saved"
    else
      rm -f "$saved"
      die "loading localhost/$IMAGE into $ROOTLESS_USER's podman store failed"
    fi
    as_rootless podman image exists "localhost/$IMAGE" ||
      die "$ROOTLESS_USER's podman does not list localhost/$IMAGE after loading it"
  fi
  ensure_lists as_rootless podman
fi

# --- PCP: the PMNS ------------------------------------------------------------
# pmcd's rc script builds /var/lib/pcp/pmns/root at pmcd's first start (and
# at any start that finds .NeedRebuild, which PCP's package leaves at every
# install or upgrade), then removes .NeedRebuild; a fresh install that has
# never started pmcd has no root and a .NeedRebuild. Do as that script does,
# so tests find PCP as a machine that has run it finds it (the fresh case has
# a test of its own in test/pmcd-root-pmda.int.test.ts).
PMNS_DIR=/var/lib/pcp/pmns
if [ -x "$PMNS_DIR/Rebuild" ] && { [ ! -f "$PMNS_DIR/root" ] || [ -f "$PMNS_DIR/.NeedRebuild" ]; }; then
  say "building $PMNS_DIR/root as pmcd's first start would (pmcd has never started here)"
  (cd "$PMNS_DIR" && ./Rebuild -u) || die "$PMNS_DIR/Rebuild failed"
  [ -f "$PMNS_DIR/root" ] || die "$PMNS_DIR/root still missing after Rebuild"
  rm -f "$PMNS_DIR/.NeedRebuild"
  touch "$PMNS_DIR/root"
fi

[ -n "$rootfs_tar" ] && rm -f "$rootfs_tar"
say "ready: dockerd, containerd, $IMAGE, and rootless podman as ${ROOTLESS_USER}"
