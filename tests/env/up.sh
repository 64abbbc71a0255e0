#!/usr/bin/env bash
# tests/env/up.sh DIR
#
# Brings up a private integration-test environment in DIR (which must not
# exist or be empty), everything inside DIR:
#   DIR/containerd/   config.toml (version 2, overlayfs, CRI disabled), root/,
#                     state/, containerd.sock (+ .ttrpc), opt/, containerd.log
#   DIR/registry/     docker-registry on 127.0.0.1:<free port>: config.yml,
#                     data/ (filesystem storage), registry.log
#   DIR/images/       the test images' OCI layout (tests/env/images.sh), pushed
#                     into the registry
#   DIR/runsc-root/ DIR/runc-root/   --root dirs for runsc and runc
#   DIR/bin/runsc-none               `exec runsc --network=none "$@"`
#   DIR/env.sh        shell assignments: SBX_ENV_DIR CONTAINERD_SOCK
#                     CONTAINERD_PID CONTAINERD_ROOT CONTAINERD_STATE
#                     REGISTRY_ADDR REGISTRY_PID RUNSC_ROOT RUNC_ROOT, plus
#                     CONTAINERD_CONFIG CONTAINERD_LOG REGISTRY_LOG RUNSC_NONE,
#                     the IMAGE_* digests, and SBX_ENV_READY=1 as its last line.
# env.sh is written as things start, so tests/env/down.sh DIR can clean up
# after a half-finished up.sh too. Always pair this with down.sh DIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
DIR=""
T0=$EPOCHREALTIME

die() {
  echo "up.sh: error: $*" >&2
  [ -n "$DIR" ] && echo "up.sh: clean up with: $HERE/down.sh $DIR" >&2
  exit 1
}
elapsed() {  # seconds since start, 1 decimal
  local now=${EPOCHREALTIME/./} start=${T0/./}
  local ms=$(((now - start) / 1000))
  printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100))
}
step() { echo "up: $* [$(elapsed)]"; }
record() { printf '%s=%q\n' "$1" "$2" >>"$DIR/env.sh"; }
trap 'die "unexpected failure (exit $?) at up.sh line $LINENO"' ERR
show_log() {  # show_log FILE: the last lines, to stderr
  [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 15 "$1" >&2; }
  return 0
}

[ $# -eq 1 ] || { echo "usage: up.sh DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "must run as root (containerd, runc and runsc need it)"

# --- binaries -----------------------------------------------------------------
missing=()
for bin in containerd ctr containerd-shim-runc-v2 runc runsc docker-registry skopeo curl \
  tar gzip sha256sum timeout; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ -x /bin/busybox ] || missing+=("/bin/busybox (busybox-static)")
[ ${#missing[@]} -eq 0 ] || die "missing binaries: ${missing[*]} (install the test packages: see the Makefile / TESTBED.md)"

# --- DIR ----------------------------------------------------------------------
arg=$1
if [ -e "$arg" ]; then
  [ -d "$arg" ] || die "$arg exists and is not a directory"
  [ -z "$(ls -A "$arg")" ] || die "$arg is not empty"
else
  mkdir -p "$arg" || die "cannot create $arg"
fi
DIR=$(cd "$arg" && pwd -P)
[ "$DIR" != / ] || die "DIR must not be /"
[[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
  die "DIR '$DIR' has characters this script does not quote in TOML/YAML/pgrep (use [A-Za-z0-9._/+-])"

CTD=$DIR/containerd
CONTAINERD_ROOT=$CTD/root
CONTAINERD_STATE=$CTD/state
CONTAINERD_SOCK=$CTD/containerd.sock
CONTAINERD_CONFIG=$CTD/config.toml
CONTAINERD_LOG=$CTD/containerd.log
RUNSC_ROOT=$DIR/runsc-root
RUNC_ROOT=$DIR/runc-root
[ ${#CONTAINERD_SOCK} -le 100 ] ||
  die "socket path $CONTAINERD_SOCK is too long for a unix socket (max ~107 bytes with .ttrpc): use a shorter DIR"

: >"$DIR/env.sh"  # first: down.sh needs it to recognize DIR as ours
mkdir -p "$CONTAINERD_ROOT" "$CONTAINERD_STATE" "$CTD/opt" "$RUNSC_ROOT" "$RUNC_ROOT" \
  "$DIR/registry/data" "$DIR/bin"
chmod 0711 "$CONTAINERD_ROOT" "$CONTAINERD_STATE"
record SBX_ENV_DIR "$DIR"
record CONTAINERD_ROOT "$CONTAINERD_ROOT"
record CONTAINERD_STATE "$CONTAINERD_STATE"
record CONTAINERD_SOCK "$CONTAINERD_SOCK"
record CONTAINERD_CONFIG "$CONTAINERD_CONFIG"
record CONTAINERD_LOG "$CONTAINERD_LOG"
record RUNSC_ROOT "$RUNSC_ROOT"
record RUNC_ROOT "$RUNC_ROOT"

# runsc wrapper: gVisor's netstack in a fresh netns fails on this runsc build
# ("cannot run with network enabled in root network namespace"; TESTBED.md),
# so tests that need no network use this as the runtime binary.
RUNSC_NONE=$DIR/bin/runsc-none
printf '#!/bin/sh\nexec %s --network=none "$@"\n' "$(command -v runsc)" >"$RUNSC_NONE"
chmod 0755 "$RUNSC_NONE"
record RUNSC_NONE "$RUNSC_NONE"
step "dir $DIR"

# --- containerd ---------------------------------------------------------------
cat >"$CONTAINERD_CONFIG" <<TOML
# Private containerd for sandboxd integration tests (tests/env/up.sh).
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
# CRI is not needed by these tests; the other snapshotters would only be
# probed and skipped. Keep io.containerd.runtime.v1.linux: tasks need it.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTD/opt"
  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = "$CONTAINERD_STATE/runtime-v1"
TOML

containerd --config "$CONTAINERD_CONFIG" </dev/null >>"$CONTAINERD_LOG" 2>&1 &
CONTAINERD_PID=$!
record CONTAINERD_PID "$CONTAINERD_PID"

ready=0
for _ in $(seq 1 200); do  # up to ~10 s
  if timeout 2 ctr --address "$CONTAINERD_SOCK" --connect-timeout 1s version >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$CONTAINERD_PID" 2>/dev/null || { show_log "$CONTAINERD_LOG"; die "containerd (pid $CONTAINERD_PID) exited during startup"; }
  sleep 0.05
done
[ "$ready" -eq 1 ] || { show_log "$CONTAINERD_LOG"; die "containerd did not answer on $CONTAINERD_SOCK within 10 s"; }
plugins=$(timeout 10 ctr --address "$CONTAINERD_SOCK" plugins ls) || die "ctr plugins ls failed"
for p in "io.containerd.grpc.v1 +tasks" "io.containerd.snapshotter.v1 +overlayfs" "io.containerd.runtime.v2 +task"; do
  grep -Eq "^$p .* ok *$" <<<"$plugins" || { echo "$plugins" >&2; die "containerd plugin '$p' is not ok"; }
done
step "containerd pid $CONTAINERD_PID on $CONTAINERD_SOCK"

# --- registry -----------------------------------------------------------------
REGISTRY_CONFIG=$DIR/registry/config.yml
REGISTRY_LOG=$DIR/registry/registry.log
record REGISTRY_LOG "$REGISTRY_LOG"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$low" -gt 11000 ] || low=32768

REGISTRY_PID=""
REGISTRY_ADDR=""
for attempt in 1 2 3 4 5; do
  # a port below the ephemeral range, so no outgoing connection holds it
  port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
  port_free "$port" || continue
  cat >"$REGISTRY_CONFIG" <<YAML
# Private docker-registry for sandboxd integration tests (tests/env/up.sh).
version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: sandboxd-test-env-not-secret
YAML
  # env -i (exec, same pid): REGISTRY_* variables of the caller would
  # override the config file.
  env -i PATH="$PATH" docker-registry serve "$REGISTRY_CONFIG" </dev/null >>"$REGISTRY_LOG" 2>&1 &
  pid=$!
  record REGISTRY_PID "$pid"
  for _ in $(seq 1 200); do  # up to ~10 s
    if curl -fsS --noproxy '*' --max-time 1 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
      REGISTRY_PID=$pid
      REGISTRY_ADDR=127.0.0.1:$port
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$REGISTRY_ADDR" ] && break
  if kill -0 "$pid" 2>/dev/null; then
    show_log "$REGISTRY_LOG"
    die "docker-registry (pid $pid) did not answer on 127.0.0.1:$port within 10 s"
  fi
  wait "$pid" 2>/dev/null || true
  echo "up: docker-registry could not use port $port (attempt $attempt), trying another" >&2
done
[ -n "$REGISTRY_ADDR" ] || { show_log "$REGISTRY_LOG"; die "docker-registry did not start (5 ports tried)"; }
record REGISTRY_ADDR "$REGISTRY_ADDR"
step "registry pid $REGISTRY_PID on $REGISTRY_ADDR"

# --- images -------------------------------------------------------------------
"$HERE/images.sh" "$REGISTRY_ADDR" "$DIR/images" >/dev/null || die "building/pushing the test images failed"
cat "$DIR/images/images.env" >>"$DIR/env.sh"
step "images pushed to $REGISTRY_ADDR (library/{alpine:3.20,python:3.12-alpine,mysql:8.4,busybox:latest}, sandboxd-test/{config,multiarch}:1)"

record SBX_ENV_READY 1
step "ready: source $DIR/env.sh; stop with $HERE/down.sh $DIR"
