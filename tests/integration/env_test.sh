#!/usr/bin/env bash
# Integration: the test environment itself (tests/env/up.sh, images.sh,
# down.sh). Brings an environment up in a fresh temp dir and checks it with
# real tools (ctr, curl; the product uses neither): the registry's catalog and
# tags, pulls over plain HTTP from REGISTRY_ADDR only, `echo hello` under runc
# and under runsc (through DIR/bin/runsc-none: this runsc build refuses
# gVisor's netstack in the fresh netns ctr gives a container), the config
# image's entrypoint/env/workdir, and the multi-arch index resolving to
# linux/amd64. Then leaves two containers running, tears down with down.sh
# and checks nothing of DIR is left (processes, mounts, files, shim sockets,
# cgroups), that down.sh is safe twice and after a half-finished up.sh.
# Needs root. Prints "env: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ENVD=$(pwd -P)/tests/env
NS=sbxenvtest

passed=0
failed=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok:     $name"
  else
    failed=$((failed + 1))
    echo "FAILED: $name" >&2
  fi
}

if [ "$(id -u)" -ne 0 ]; then
  echo "env_test: needs root" >&2
  echo "env: 0 passed, 1 failed"
  exit 1
fi

OUT=$(mktemp -d /tmp/sbx-env-test-out.XXXXXX)
DIR=$(mktemp -d /tmp/sbx-env-test.XXXXXX)
DIR2=$OUT/half  # for the half-finished up.sh
# Container ids end in this run's token: concurrent runs share the namespace
# name, so the cgroup paths /$NS/<id> (and runsc ids must not be prefixes of
# each other: none of these is).
RUN=${DIR##*.}
cleanup() {
  local d
  for d in "$DIR" "$DIR2"; do
    [ -e "$d" ] && "$ENVD/down.sh" "$d" >>"$OUT/cleanup.log" 2>&1
  done
  # ctr puts containers in cgroups /$NS/<id>; runc removes <id>, not /$NS.
  rmdir /sys/fs/cgroup/*/"$NS" 2>/dev/null
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

C() { timeout 60 ctr --address "$CONTAINERD_SOCK" -n "$NS" "$@"; }
alive() {  # alive PID: exists and is not a zombie
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  [ "${rest%% *}" != Z ]
}
procs_naming() {  # pids of processes whose command line contains $1
  local ere p c
  # shellcheck disable=SC2016  # sed script, not shell
  ere=$(printf '%s' "$1" | sed 's/[][\.*^$(){}?+|]/\\&/g')
  for p in $(pgrep -f -- "$ere"); do
    c=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
    [[ $c == *"$1"* ]] && alive "$p" && echo "$p"
  done
}
mounts_under() {
  local _a _b _c _d mp _rest
  while read -r _a _b _c _d mp _rest; do
    mp=$(printf '%b' "$mp")
    [ "$mp" = "$1" ] || [[ $mp == "$1"/* ]] && echo "$mp"
  done </proc/self/mountinfo
}
tree() {  # the given pids' descendants
  local p
  for p in "$@"; do
    for c in $(pgrep -P "$p"); do echo "$c"; tree "$c"; done
  done
}
is_empty() { [ -z "$1" ]; }
contains() { [[ $1 == *"$2"* ]]; }

# --- up -----------------------------------------------------------------------
start=$EPOCHREALTIME
"$ENVD/up.sh" "$DIR" >"$OUT/up.log" 2>&1
rc=$?
ms=$(((${EPOCHREALTIME/./} - ${start/./}) / 1000))
sed 's/^/  /' "$OUT/up.log"
check "up.sh succeeds (${ms} ms)" test "$rc" -eq 0
if [ "$rc" -ne 0 ] || [ ! -f "$DIR/env.sh" ]; then
  echo "env: $passed passed, $((failed + 1)) failed"
  exit 1
fi
# shellcheck disable=SC1091
source "$DIR/env.sh"
for v in SBX_ENV_DIR CONTAINERD_SOCK CONTAINERD_PID CONTAINERD_ROOT CONTAINERD_STATE \
  REGISTRY_ADDR REGISTRY_PID RUNSC_ROOT RUNC_ROOT RUNSC_NONE SBX_ENV_READY; do
  check "env.sh sets $v" test -n "${!v:-}"
done
check "SBX_ENV_DIR is DIR" test "$SBX_ENV_DIR" = "$DIR"
check "runsc and runc roots exist in DIR" test -d "$RUNSC_ROOT" -a -d "$RUNC_ROOT" -a "${RUNSC_ROOT#"$DIR"/}" != "$RUNSC_ROOT"
check "containerd pid $CONTAINERD_PID runs with DIR's config" \
  grep -qF "$DIR/containerd/config.toml" "/proc/$CONTAINERD_PID/cmdline"
check "containerd socket, root, state in DIR" \
  test -S "$CONTAINERD_SOCK" -a -d "$CONTAINERD_ROOT" -a -d "$CONTAINERD_STATE" -a "${CONTAINERD_SOCK#"$DIR"/}" != "$CONTAINERD_SOCK"
check "containerd config disables CRI" \
  grep -q '"io.containerd.grpc.v1.cri"' "$DIR/containerd/config.toml"
check "containerd config keeps runtime.v1.linux enabled" \
  bash -c "! sed -n '/disabled_plugins/,/]/p' '$DIR/containerd/config.toml' | grep -q runtime.v1.linux"
check "registry listens on 127.0.0.1" contains "$REGISTRY_ADDR" "127.0.0.1:"
check "registry pid $REGISTRY_PID runs with DIR's config" \
  grep -qF "$DIR/registry/config.yml" "/proc/$REGISTRY_PID/cmdline"

# --- registry -----------------------------------------------------------------
R="http://$REGISTRY_ADDR"
catalog=$(curl -fsS --noproxy '*' "$R/v2/_catalog")
for repo in library/alpine library/python library/mysql library/busybox sandboxd-test/config sandboxd-test/multiarch; do
  check "catalog lists $repo" contains "$catalog" "\"$repo\""
done
for ref in library/alpine:3.20 library/python:3.12-alpine library/mysql:8.4 library/busybox:latest \
  sandboxd-test/config:1 sandboxd-test/multiarch:1; do
  tags=$(curl -fsS --noproxy '*' "$R/v2/${ref%%:*}/tags/list")
  check "tag $ref" contains "$tags" "\"${ref##*:}\""
done
ctype=$(curl -fsS --noproxy '*' -o /dev/null -w '%{content_type}' \
  -H 'Accept: application/vnd.oci.image.index.v1+json' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$R/v2/sandboxd-test/multiarch/manifests/1")
check "multiarch:1 is served as an OCI index ($ctype)" test "$ctype" = application/vnd.oci.image.index.v1+json
ctype=$(curl -fsS --noproxy '*' -o /dev/null -w '%{content_type}' \
  -H 'Accept: application/vnd.oci.image.index.v1+json' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$R/v2/library/alpine/manifests/3.20")
check "alpine:3.20 is served as an OCI manifest ($ctype)" test "$ctype" = application/vnd.oci.image.manifest.v1+json
cfg=$(curl -fsS --noproxy '*' "$R/v2/library/alpine/blobs/$IMAGE_BASE_CONFIG")
check "alpine config: amd64/linux, one diff_id, Cmd sh" \
  contains "$cfg" "\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$IMAGE_BASE_DIFF_ID\"]}"
diffid=$(curl -fsS --noproxy '*' "$R/v2/library/alpine/blobs/$IMAGE_BASE_LAYER" | gzip -dc | sha256sum | cut -d' ' -f1)
check "layer's uncompressed sha256 is the diff_id" test "sha256:$diffid" = "$IMAGE_BASE_DIFF_ID"

# --- containerd: pull and run -------------------------------------------------
mkdir -p "$DIR/fifo" "$DIR/logs"
ALPINE=$REGISTRY_ADDR/library/alpine:3.20
C images pull --plain-http "$ALPINE" >"$OUT/pull-alpine.log" 2>&1
check "ctr pulls $ALPINE over plain HTTP" test $? -eq 0
out=$(C run --rm --fifo-dir "$DIR/fifo" --runc-root "$RUNC_ROOT" "$ALPINE" "envtest-runc-$RUN" echo hello 2>&1)
check "runc: echo hello (got '$out')" test "$out" = hello

host_kernel=$(uname -r)
out=$(C run --rm --fifo-dir "$DIR/fifo" --runc-binary "$RUNSC_NONE" --runc-root "$RUNSC_ROOT" \
  "$ALPINE" "envtest-runsc-$RUN" sh -c 'echo hello; uname -r' 2>&1)
check "runsc (--network=none): echo hello (got '${out//$'\n'/|}')" test "${out%%$'\n'*}" = hello
gkernel=""
[[ $out == *$'\n'* ]] && gkernel=${out#*$'\n'}
check "runsc: the container sees gVisor's kernel ($gkernel), not the host's ($host_kernel)" \
  test -n "$gkernel" -a "$gkernel" != "$host_kernel" -a "$gkernel" != hello

# the config image: entrypoint + cmd + env + workdir from the image
CFGIMG=$REGISTRY_ADDR/sandboxd-test/config:1
C images pull --plain-http "$CFGIMG" >"$OUT/pull-config.log" 2>&1
check "ctr pulls $CFGIMG" test $? -eq 0
C run -d --fifo-dir "$DIR/fifo" --log-uri "file://$DIR/logs/envtest-config-$RUN.log" --runc-root "$RUNC_ROOT" \
  "$CFGIMG" "envtest-config-$RUN" >"$OUT/run-config.log" 2>&1
check "config image starts detached" test $? -eq 0
for _ in $(seq 1 100); do
  grep -q entry- "$DIR/logs/envtest-config-$RUN.log" 2>/dev/null && break
  sleep 0.05
done
out=$(cat "$DIR/logs/envtest-config-$RUN.log" 2>/dev/null)
check "config image's entrypoint prints entry-from-image-/work (got '$out')" test "$out" = "entry-from-image-/work"
# shellcheck disable=SC2016  # expanded by the container's shell
out=$(C tasks exec --fifo-dir "$DIR/fifo" --exec-id env1 "envtest-config-$RUN" sh -c 'echo "$BAR $FOO $PATH"' 2>&1)
check "config image's Env reaches an exec (got '$out')" \
  test "$out" = "keep from-image /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
C tasks kill -s SIGKILL "envtest-config-$RUN" >/dev/null 2>&1
for _ in $(seq 1 100); do
  C tasks ls 2>/dev/null | grep -q "^envtest-config-$RUN .*STOPPED" && break
  sleep 0.05
done
C tasks rm "envtest-config-$RUN" >/dev/null 2>&1 && C containers rm "envtest-config-$RUN" >/dev/null 2>&1
check "config container killed and removed" test $? -eq 0

# the multi-arch index: ctr (linux/amd64) must take the amd64 entry, listed second
MULTI=$REGISTRY_ADDR/sandboxd-test/multiarch:1
C images pull --plain-http "$MULTI" >"$OUT/pull-multi.log" 2>&1
check "ctr pulls the multi-arch index $MULTI" test $? -eq 0
images=$(C images ls 2>&1)
check "the image is the index, with both platforms" \
  bash -c "grep -F '$MULTI' <<<'$images' | grep -F '$IMAGE_MULTIARCH_INDEX' | grep -q 'linux/amd64,linux/arm64/v8'"
content=$(C content ls -q 2>&1)  # digests only (labels name the arm64 manifest too)
check "the amd64 manifest and config were fetched" \
  bash -c "grep -qF '$IMAGE_MULTIARCH_AMD64_MANIFEST' <<<'$content' && grep -qF '$IMAGE_MULTIARCH_AMD64_CONFIG' <<<'$content'"
check "the arm64 manifest was not fetched" bash -c "! grep -qF '$IMAGE_MULTIARCH_ARM64_MANIFEST' <<<'$content'"
# shellcheck disable=SC2016  # expanded by the container's shell
out=$(C run --rm --fifo-dir "$DIR/fifo" --runc-root "$RUNC_ROOT" "$MULTI" "envtest-multi-$RUN" sh -c 'echo $SBX_IMAGE_PLATFORM' 2>&1)
check "the multi-arch image runs the linux/amd64 config (got '$out')" test "$out" = linux/amd64

# --- teardown with containers still running -----------------------------------
C run -d --fifo-dir "$DIR/fifo" --runc-root "$RUNC_ROOT" "$ALPINE" "envtest-left-runc-$RUN" sleep 600 >/dev/null 2>&1
check "a runc container left running" test $? -eq 0
C run -d --fifo-dir "$DIR/fifo" --runc-binary "$RUNSC_NONE" --runc-root "$RUNSC_ROOT" \
  "$ALPINE" "envtest-left-runsc-$RUN" sleep 600 >/dev/null 2>&1
check "a runsc container left running" test $? -eq 0
shims=$(pgrep -f -- "containerd-shim.*$DIR/" | tr '\n' ' ')
check "their shims run ($shims)" test -n "$shims"
sockets=()
for a in "$CONTAINERD_STATE"/io.containerd.runtime.v2.task/*/*/address; do
  [ -f "$a" ] && { s=$(<"$a"); sockets+=("${s#unix://}"); }
done
check "their shim sockets exist (${#sockets[@]})" test "${#sockets[@]}" -eq 2
# containerd, registry, shims, runsc-sandbox/gofer, and what runs under the shims
# shellcheck disable=SC2086  # $shims is a list
workload=$( (procs_naming "$DIR/"; tree $shims) | sort -un | tr '\n' ' ')

"$ENVD/down.sh" "$DIR" >"$OUT/down.log" 2>&1
rc=$?
sed 's/^/  /' "$OUT/down.log"
check "down.sh succeeds" test "$rc" -eq 0
check "DIR is gone" test ! -e "$DIR"
check "no mount under DIR" is_empty "$(mounts_under "$DIR")"
check "no process names DIR" is_empty "$(procs_naming "$DIR/")"
left=""
for p in $CONTAINERD_PID $REGISTRY_PID $shims $workload; do alive "$p" && left+="$p "; done
check "containerd, registry, shims and the containers' processes are gone ($(wc -w <<<"$workload") processes)" \
  is_empty "$left"
left=""
for s in "${sockets[@]}"; do [ -e "$s" ] && left+="$s "; done
check "shim sockets are gone" is_empty "$left"
check "container cgroups are gone" \
  is_empty "$(ls -d /sys/fs/cgroup/*/"$NS"/envtest-*-"$RUN" 2>/dev/null)"
"$ENVD/down.sh" "$DIR" >"$OUT/down2.log" 2>&1
check "down.sh a second time: exit 0" test $? -eq 0

# --- a half-finished up.sh (the registry cannot start) ------------------------
mkdir -p "$OUT/fakebin"
printf '#!/bin/sh\necho "fake docker-registry: failing on purpose" >&2\nexit 1\n' >"$OUT/fakebin/docker-registry"
chmod +x "$OUT/fakebin/docker-registry"
PATH="$OUT/fakebin:$PATH" "$ENVD/up.sh" "$DIR2" >"$OUT/up-half.log" 2>&1
check "up.sh fails when the registry cannot start" test $? -ne 0
check "... with a clear message" grep -q "docker-registry did not start" "$OUT/up-half.log"
half_pid=$(sed -n 's/^CONTAINERD_PID=//p' "$DIR2/env.sh" 2>/dev/null)
check "... after starting containerd ($half_pid)" bash -c "[ -n '$half_pid' ] && kill -0 '$half_pid'"
"$ENVD/down.sh" "$DIR2" >"$OUT/down-half.log" 2>&1
check "down.sh cleans up the half-finished env" test $? -eq 0 -a ! -e "$DIR2"
check "... and its containerd is gone" bash -c "! { [ -n '$half_pid' ] && [ -e /proc/$half_pid ] && ! grep -q '^State:.*Z' /proc/$half_pid/status; }"

# --- refusals -----------------------------------------------------------------
mkdir -p "$OUT/notempty"
touch "$OUT/notempty/keep"
"$ENVD/up.sh" "$OUT/notempty" >"$OUT/up-notempty.log" 2>&1
check "up.sh refuses a non-empty DIR" bash -c "[ $? -ne 0 ] && grep -q 'is not empty' '$OUT/up-notempty.log'"
"$ENVD/down.sh" "$OUT/notempty" >"$OUT/down-notempty.log" 2>&1
check "down.sh refuses a DIR without env.sh, and leaves it" bash -c "[ $? -ne 0 ] && [ -e '$OUT/notempty/keep' ]"

echo "env: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
