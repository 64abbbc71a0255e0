#!/usr/bin/env bash
# tests/env/down.sh DIR
#
# Tears down an environment made by tests/env/up.sh DIR, touching only what
# belongs to DIR:
#   1. containers with a bundle in DIR's containerd state: force-deleted with
#      their own runtime (runc/runsc/wrapper and --root from the bundle's
#      options.json), after checking the runtime's state names that bundle
#   2. tasks still known to DIR's containerd: `ctr tasks rm -f` (bounded)
#   3. containerd and docker-registry: the PIDs in DIR/env.sh, after checking
#      /proc/PID/cmdline still names DIR's config (TERM, <=5 s, KILL); if a PID
#      was never recorded, the process whose command line names that config
#   4. containers left in DIR/runsc-root and DIR/runc-root (delete --force)
#   5. containerd-shim processes whose command line names DIR/containerd/
#      (pgrep -f, checked again as a fixed string), and their descendants;
#      then any runsc process whose command line still names DIR
#   6. the shims' sockets in /run/containerd/s named by DIR's bundles
#   7. every mount under DIR (from /proc/self/mountinfo, deepest first;
#      umount, then umount -l)
#   8. rm -rf --one-file-system DIR
# Safe to run twice, and after an up.sh that stopped half-way.
set -euo pipefail

T0=$EPOCHREALTIME
say() { echo "down: $* [$(elapsed)]"; }
warn() { echo "down.sh: warning: $*" >&2; }
die() { echo "down.sh: error: $*" >&2; exit 1; }
elapsed() {
  local ms=$(((${EPOCHREALTIME/./} - ${T0/./}) / 1000))
  printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

trap 'die "unexpected failure (exit $?) at down.sh line $LINENO"' ERR

[ $# -eq 1 ] || { echo "usage: down.sh DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
if [ ! -e "$1" ] && [ ! -L "$1" ]; then
  say "$1 does not exist: nothing to do"
  exit 0
fi
[ -d "$1" ] || die "$1 is not a directory"
DIR=$(cd "$1" && pwd -P)
[ "$DIR" != / ] || die "refusing to work on /"
if [ ! -f "$DIR/env.sh" ]; then
  # up.sh writes env.sh right after creating DIR: without it, DIR is either
  # empty (up.sh stopped at once) or not ours.
  if [ -z "$(ls -A "$DIR")" ]; then
    rmdir "$DIR"
    say "removed empty $DIR"
    exit 0
  fi
  die "$DIR has no env.sh: not made by tests/env/up.sh, not touching it"
fi

SBX_ENV_DIR="" CONTAINERD_PID="" REGISTRY_PID=""
# shellcheck disable=SC1091
source "$DIR/env.sh" || warn "$DIR/env.sh did not load completely"
[ -z "$SBX_ENV_DIR" ] || [ "$SBX_ENV_DIR" = "$DIR" ] ||
  warn "env.sh names $SBX_ENV_DIR, working on $DIR (paths are derived from $DIR)"

CTD=$DIR/containerd
SOCK=$CTD/containerd.sock
TASKS=$CTD/state/io.containerd.runtime.v2.task
CTD_CONFIG=$CTD/config.toml
REG_CONFIG=$DIR/registry/config.yml

# --- process helpers ----------------------------------------------------------
alive() {  # alive PID: exists and is not a zombie
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  [ "${rest%% *}" != Z ]
}
cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"; }
mentions() {  # mentions PID STRING: the command line contains STRING (fixed)
  local c
  c=$(cmdline "$1") || return 1
  [[ $c == *"$2"* ]]
}
# find_procs STRING COMM_REGEX: live processes (not this script) whose command
# line contains STRING and whose comm or argv[0] matches COMM_REGEX.
find_procs() {
  local str=$1 re=$2 ere p comm argv0
  # shellcheck disable=SC2016  # sed script, not shell
  ere=$(printf '%s' "$str" | sed 's/[][\.*^$(){}?+|]/\\&/g')
  for p in $(pgrep -f -- "$ere" || true); do
    [ "$p" = $$ ] && continue
    [ "$p" = "$BASHPID" ] && continue
    alive "$p" || continue
    comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    argv0=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | head -n1) || continue
    [[ $comm =~ $re || ${argv0##*/} =~ $re ]] || continue
    mentions "$p" "$str" || continue
    echo "$p"
  done
}
# stop_pids LABEL GRACE_TENTHS PID...: SIGTERM, wait, then SIGKILL, wait <=2 s.
stop_pids() {
  local label=$1 grace=$2 p i left
  shift 2
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < grace * 2; i++)); do
    left=()
    for p in "$@"; do alive "$p" && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.05
  done
  left=()
  for p in "$@"; do alive "$p" && left+=("$p"); done
  if [ ${#left[@]} -gt 0 ]; then
    warn "$label ${left[*]} did not stop on SIGTERM: SIGKILL"
    kill -KILL "${left[@]}" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      left=()
      for p in "$@"; do alive "$p" && left+=("$p"); done
      [ ${#left[@]} -eq 0 ] && break
      sleep 0.05
    done
    [ ${#left[@]} -eq 0 ] || warn "$label ${left[*]} still alive after SIGKILL"
  fi
  say "stopped $label $*"
}
descendants() {  # descendants PID...: every live descendant, deepest last
  local -A kids=()
  local f line rest pp p q
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    p=${line%% *}
    rest=${line##*) }
    read -r _ pp _ <<<"$rest"
    kids[$pp]+="$p "
  done
  local queue=("$@")
  while [ ${#queue[@]} -gt 0 ]; do
    q=${queue[0]}
    queue=("${queue[@]:1}")
    for p in ${kids[$q]:-}; do
      echo "$p"
      queue+=("$p")
    done
  done
}
# our_pid PID CONFIG: PID is set, alive, and its command line names CONFIG
our_pid() { [ -n "$1" ] && alive "$1" && mentions "$1" "$2"; }
runtime_ids() {  # runtime_ids BINARY ROOT: container ids in a runc/runsc root
  [ -d "$2" ] || return 0
  timeout 10 "$1" --root "$2" list --quiet 2>/dev/null || true
}

# --- 0. what DIR's shims and bundles are --------------------------------------
shim_sockets=()
bundles=()
for b in "$TASKS"/*/*/; do
  [ -d "$b" ] || continue
  b=${b%/}
  bundles+=("$b")
  if [ -f "$b/address" ]; then
    s=$(<"$b/address")
    s=${s#unix://}
    [[ $s =~ ^/run/containerd/s/[0-9a-f]{64}$ ]] && shim_sockets+=("$s")
  fi
done

# --- 1. force-delete containers that have a bundle in DIR's state -------------
for b in "${bundles[@]}"; do
  id=${b##*/}
  ns=${b%/*}
  ns=${ns##*/}
  opts=$(cat "$b/options.json" 2>/dev/null || true)
  bin=$(sed -n 's/.*"binary_name":"\([^"]*\)".*/\1/p' <<<"$opts")
  root=$(sed -n 's/.*"root":"\([^"]*\)".*/\1/p' <<<"$opts")
  [ -n "$bin" ] || bin=runc
  [ -n "$root" ] || root=/run/containerd/runc
  root=$root/$ns
  # (runc creates a missing --root: never point it at one that is not there)
  [ -d "$root" ] || continue
  command -v "$bin" >/dev/null 2>&1 || { warn "runtime '$bin' of $ns/$id not found"; continue; }
  # Only if the runtime's container of that id is the one with DIR's bundle.
  state=$(timeout 10 "$bin" --root "$root" state "$id" 2>/dev/null) || continue
  grep -qF "\"$b\"" <<<"$state" || { warn "$bin --root $root: container $id is not DIR's: left alone"; continue; }
  if timeout 15 "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; then
    say "deleted container $ns/$id ($bin --root $root)"
  else
    warn "$bin --root $root delete --force $id failed"
  fi
done

# --- 2. tasks still known to DIR's containerd ---------------------------------
if our_pid "$CONTAINERD_PID" "$CTD_CONFIG" && [ -S "$SOCK" ]; then
  ctr_() { local t=$1; shift; timeout "$t" ctr --address "$SOCK" --connect-timeout 1s "$@"; }
  for ns in $(ctr_ 5 namespaces ls -q 2>/dev/null || true); do
    for t in $(ctr_ 5 -n "$ns" tasks ls -q 2>/dev/null || true); do
      if ctr_ 10 -n "$ns" tasks rm -f "$t" >/dev/null 2>&1; then
        say "removed task $ns/$t"
      else
        warn "ctr tasks rm -f $ns/$t failed"
      fi
    done
  done
fi

# --- 3. containerd and docker-registry ----------------------------------------
stop_daemon() {  # stop_daemon NAME RECORDED_PID CONFIG
  local name=$1 pid=$2 cfg=$3 p pids=()
  if our_pid "$pid" "$cfg"; then
    pids+=("$pid")
  elif [ -n "$pid" ] && alive "$pid"; then
    warn "recorded $name pid $pid is alive but is not ours ($(cmdline "$pid")): left alone"
  fi
  # also one that started but whose PID was never recorded
  for p in $(find_procs "$cfg" "^${name:0:15}\$"); do
    [[ " ${pids[*]} " == *" $p "* ]] || pids+=("$p")
  done
  stop_pids "$name" 50 "${pids[@]}"
}
stop_daemon containerd "$CONTAINERD_PID" "$CTD_CONFIG"
stop_daemon docker-registry "$REGISTRY_PID" "$REG_CONFIG"

# --- 4. containers left in DIR's runc/runsc roots (the shims' too) ------------
for spec in "runsc:$DIR/runsc-root" "runc:$DIR/runc-root"; do
  bin=${spec%%:*}
  top=${spec#*:}
  [ -d "$top" ] || continue
  command -v "$bin" >/dev/null 2>&1 || continue
  for root in "$top" "$top"/*/; do
    root=${root%/}
    [ -d "$root" ] || continue
    for id in $(runtime_ids "$bin" "$root"); do
      if timeout 15 "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; then
        say "deleted container $id ($bin --root $root)"
      else
        warn "$bin --root $root delete --force $id failed"
      fi
    done
  done
done
# --- 5. shims of DIR's containerd, and what they still hold -------------------
mapfile -t shims < <(find_procs "$CTD/" '^containerd-shim')
if [ ${#shims[@]} -gt 0 ]; then
  mapfile -t kids < <(descendants "${shims[@]}")
  if [ ${#kids[@]} -gt 0 ]; then
    kill -KILL "${kids[@]}" 2>/dev/null || true
    say "killed ${#kids[@]} process(es) under the shims: ${kids[*]}"
  fi
  stop_pids containerd-shim 30 "${shims[@]}"
fi

mapfile -t strays < <(find_procs "$DIR/" '^runsc')
[ ${#strays[@]} -eq 0 ] || stop_pids "runsc process" 20 "${strays[@]}"

# --- 6. shim sockets ----------------------------------------------------------
for s in "${shim_sockets[@]}"; do
  if [ -S "$s" ]; then
    rm -f "$s" && say "removed shim socket $s"
  fi
done

# --- 7. mounts under DIR ------------------------------------------------------
mounts_under() {  # mount points under DIR, deepest first
  local _id _pid _dev _root mp _rest
  while read -r _id _pid _dev _root mp _rest; do
    mp=$(printf '%b' "$mp")  # \040 etc.
    if [ "$mp" = "$DIR" ] || [[ $mp == "$DIR"/* ]]; then
      printf '%d %s\n' "$(tr -cd / <<<"$mp" | wc -c)" "$mp"
    fi
  done </proc/self/mountinfo | sort -rn -s -k1,1 | cut -d' ' -f2-
}
for _ in 1 2 3 4 5 6 7 8; do
  mapfile -t mps < <(mounts_under)
  [ ${#mps[@]} -gt 0 ] || break
  for mp in "${mps[@]}"; do
    if umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; then
      say "unmounted $mp"
    fi
  done
done
mapfile -t mps < <(mounts_under)
[ ${#mps[@]} -eq 0 ] || die "still mounted under $DIR: ${mps[*]}; not removing it"

# --- 8. remove DIR ------------------------------------------------------------
rm -rf --one-file-system -- "$DIR" || die "could not remove $DIR"
[ ! -e "$DIR" ] || die "$DIR is still there"

remaining=$(find_procs "$DIR/" '.' | tr '\n' ' ')
[ -z "$remaining" ] || warn "processes still naming $DIR (not started by up.sh, left alone): $remaining"
say "removed $DIR"
