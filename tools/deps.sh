#!/usr/bin/env bash
# Installs every Debian package sandboxd's build, tests and benchmarks need.
# Idempotent: when every package is installed it does nothing (no network).
#   tools/deps.sh          install what is missing
#   tools/deps.sh --check  exit 1 if something is missing, install nothing
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config clang libclang-rt-14-dev
  node-llhttp libsimdjson-dev libcurl4-openssl-dev doctest-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev
  libsqlite3-dev
  # runtime and networking under test
  containerd runc runsc containernetworking-plugins iptables iproute2
  # test registry and images
  docker-registry skopeo busybox-static
  # benchmarks and tools
  wrk nginx-light hyperfine curl procps jq
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "missing packages: ${missing[*]}" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Debian's packages must not start services (nginx, containerd, registry) on
# install: tests start private instances of their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[ $created_policy = 1 ] && rm -f "$policy"' EXIT
apt-get install -y -q --no-install-recommends "${missing[@]}"
