#!/usr/bin/env bash
# tests/env/images.sh REGISTRY_ADDR WORKDIR
#
# Builds the integration-test images from busybox-static, by hand, as
# one-layer OCI image layouts (tar + gzip + sha256sum + JSON written here; no
# jq, no docker), and pushes them with skopeo into the plain-HTTP registry at
# REGISTRY_ADDR (127.0.0.1:PORT). Images:
#   library/alpine:3.20 library/python:3.12-alpine library/mysql:8.4
#   library/busybox:latest      Cmd ["sh"], Env [PATH=...]
#   sandboxd-test/config:1      Entrypoint ["/bin/sh","-c"],
#                               Cmd ["echo entry-$FOO-$(pwd); sleep 3600"],
#                               Env [PATH=..., FOO=from-image, BAR=keep],
#                               WorkingDir /work
#   sandboxd-test/multiarch:1   an OCI index: linux/arm64/v8 (listed first,
#                               never runnable here) and linux/amd64; each
#                               config's Env has SBX_IMAGE_PLATFORM=<platform>
#                               so a test can see which one was picked.
# Everything it writes stays under WORKDIR (the layout, logs, a skopeo policy,
# skopeo's temp files and its blob-info cache). It also writes
# WORKDIR/images.env with the digests of what it pushed.
set -euo pipefail

die() { echo "images.sh: $*" >&2; exit 1; }

trap 'die "unexpected failure (exit $?) at images.sh line $LINENO"' ERR

[ $# -eq 2 ] || die "usage: images.sh REGISTRY_ADDR WORKDIR"
REG=$1
WORK=$2
[[ $REG =~ ^127\.0\.0\.1:[0-9]+$ ]] || die "REGISTRY_ADDR must be 127.0.0.1:PORT, got '$REG'"

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (Debian package busybox-static)"
for bin in tar gzip sha256sum skopeo stat; do
  command -v "$bin" >/dev/null || die "'$bin' is not installed"
done

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd -P)
OCI=$WORK/oci
rm -rf "$OCI" "$WORK/rootfs" "$WORK/tmp" "$WORK/push"
mkdir -p "$OCI/blobs/sha256" "$WORK/tmp" "$WORK/push" "$WORK/skopeo-data"

PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED="2024-01-01T00:00:00Z"

# --- JSON helpers (values here are plain ASCII; escape \ and " anyway) --------
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}
json_array() {  # json_array STRING... -> ["a","b"]
  local out="" sep="" s
  for s in "$@"; do out+="$sep$(json_str "$s")"; sep=","; done
  printf '[%s]' "$out"
}

# add_blob FILE: moves FILE into the layout; sets BLOB_DIGEST and BLOB_SIZE.
add_blob() {
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  BLOB_SIZE=$(stat -c %s "$1")
  BLOB_DIGEST="sha256:$hex"
  mv -f "$1" "$OCI/blobs/sha256/$hex"
}
add_json_blob() {  # add_json_blob JSON
  printf '%s' "$1" >"$WORK/tmp/blob.json"
  add_blob "$WORK/tmp/blob.json"
}

# --- rootfs and layers --------------------------------------------------------
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev}
chmod 1777 "$ROOTFS/tmp"
chmod 0700 "$ROOTFS/root"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
chmod 0755 "$ROOTFS/bin/busybox"
# applet links; perl (Debian essential) makes ~270 of them in one process
if command -v perl >/dev/null 2>&1; then
  "$BUSYBOX" --list-full | perl -e 'my $r = shift; while (<STDIN>) { chomp;
    next if $_ eq "bin/busybox" || -l "$r/$_" || -e "$r/$_";
    symlink("/bin/busybox", "$r/$_") or die "symlink $r/$_: $!\n" }' "$ROOTFS"
else
  while read -r applet; do
    [ "$applet" = "bin/busybox" ] && continue
    [ -e "$ROOTFS/$applet" ] || [ -L "$ROOTFS/$applet" ] || ln -s /bin/busybox "$ROOTFS/$applet"
  done < <("$BUSYBOX" --list-full)
fi
[ -L "$ROOTFS/bin/sh" ] || die "busybox --list-full gave no bin/sh"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$ROOTFS/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$ROOTFS/etc/group"
# A stand-in for the one python use of the seed's examples,
# `python -m http.server PORT` (serves the working directory), on busybox
# httpd; anything else is refused loudly.
mkdir -p "$ROOTFS/usr/local/bin"
cat >"$ROOTFS/usr/local/bin/python" <<'PY'
#!/bin/sh
if [ "$1" = -m ] && [ "$2" = http.server ]; then exec httpd -f -v -p "${3:-8000}" -h .; fi
echo "python stand-in: only '-m http.server [PORT]' is supported" >&2
exit 2
PY
chmod 0755 "$ROOTFS/usr/local/bin/python"

# Two layers: "base" (the rootfs) and "work" (the same plus /work). Tars are
# made one after the other, then both gzipped at once.
pack() {  # pack NAME: $ROOTFS -> $WORK/tmp/NAME.tar
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="2024-01-01 00:00:00Z" \
    -C "$ROOTFS" -cf "$WORK/tmp/$1.tar" .
}
pack base
mkdir -p "$ROOTFS/work"
pack work
gzip -n -6 -c "$WORK/tmp/base.tar" >"$WORK/tmp/base.tar.gz" &
gz_pid=$!
gzip -n -6 -c "$WORK/tmp/work.tar" >"$WORK/tmp/work.tar.gz" || die "gzip failed"
wait "$gz_pid" || die "gzip failed"
# add_layer NAME: sets LAYER_DIGEST, LAYER_SIZE, LAYER_DIFF_ID (the sha256 of
# the uncompressed tar)
add_layer() {
  LAYER_DIFF_ID="sha256:$(sha256sum "$WORK/tmp/$1.tar" | cut -d' ' -f1)"
  rm -f "$WORK/tmp/$1.tar"
  add_blob "$WORK/tmp/$1.tar.gz"
  LAYER_DIGEST=$BLOB_DIGEST
  LAYER_SIZE=$BLOB_SIZE
}
add_layer base
BASE_LAYER_DIGEST=$LAYER_DIGEST BASE_LAYER_SIZE=$LAYER_SIZE BASE_DIFF_ID=$LAYER_DIFF_ID
add_layer work
WORK_LAYER_DIGEST=$LAYER_DIGEST WORK_LAYER_SIZE=$LAYER_SIZE WORK_DIFF_ID=$LAYER_DIFF_ID

# --- configs and manifests ----------------------------------------------------
# make_image ARCH VARIANT CONFIG_OBJECT LAYER_DIGEST LAYER_SIZE DIFF_ID
# sets CONFIG_DIGEST, MANIFEST_DIGEST, MANIFEST_SIZE
make_image() {
  local arch=$1 variant=$2 cfg=$3 ldigest=$4 lsize=$5 diffid=$6 variant_json=""
  [ -n "$variant" ] && variant_json=",\"variant\":$(json_str "$variant")"
  add_json_blob "{\"created\":\"$CREATED\",\"architecture\":\"$arch\"$variant_json,\"os\":\"linux\",\"config\":$cfg,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$diffid\"]},\"history\":[{\"created\":\"$CREATED\",\"created_by\":\"sandboxd tests/env/images.sh\"}]}"
  CONFIG_DIGEST=$BLOB_DIGEST
  local config_size=$BLOB_SIZE
  add_json_blob "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$CONFIG_DIGEST\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$ldigest\",\"size\":$lsize}]}"
  MANIFEST_DIGEST=$BLOB_DIGEST
  MANIFEST_SIZE=$BLOB_SIZE
}

ref_entry() {  # ref_entry MEDIATYPE DIGEST SIZE REFNAME
  printf '{"mediaType":"%s","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}' "$1" "$2" "$3" "$4"
}
MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_INDEX=application/vnd.oci.image.index.v1+json

# base: the alpine/python/mysql/busybox stand-ins
make_image amd64 "" "{\"Env\":$(json_array "$PATH_ENV"),\"Cmd\":[\"sh\"]}" \
  "$BASE_LAYER_DIGEST" "$BASE_LAYER_SIZE" "$BASE_DIFF_ID"
BASE_CONFIG=$CONFIG_DIGEST BASE_MANIFEST=$MANIFEST_DIGEST
refs=$(ref_entry $MT_MANIFEST "$MANIFEST_DIGEST" "$MANIFEST_SIZE" base)

# config: entrypoint, cmd, env, working dir
# shellcheck disable=SC2016  # $FOO and $(pwd) are for the container's shell
make_image amd64 "" "{\"Env\":$(json_array "$PATH_ENV" FOO=from-image BAR=keep),\"Entrypoint\":$(json_array /bin/sh -c),\"Cmd\":$(json_array 'echo entry-$FOO-$(pwd); sleep 3600'),\"WorkingDir\":\"/work\"}" \
  "$WORK_LAYER_DIGEST" "$WORK_LAYER_SIZE" "$WORK_DIFF_ID"
CFG_CONFIG=$CONFIG_DIGEST CFG_MANIFEST=$MANIFEST_DIGEST
refs+=",$(ref_entry $MT_MANIFEST "$MANIFEST_DIGEST" "$MANIFEST_SIZE" config)"

# multiarch: arm64 first, so a client that takes the first entry gets it wrong
make_image arm64 v8 "{\"Env\":$(json_array "$PATH_ENV" SBX_IMAGE_PLATFORM=linux/arm64/v8),\"Cmd\":[\"sh\"]}" \
  "$BASE_LAYER_DIGEST" "$BASE_LAYER_SIZE" "$BASE_DIFF_ID"
ARM_CONFIG=$CONFIG_DIGEST ARM_MANIFEST=$MANIFEST_DIGEST ARM_SIZE=$MANIFEST_SIZE
make_image amd64 "" "{\"Env\":$(json_array "$PATH_ENV" SBX_IMAGE_PLATFORM=linux/amd64),\"Cmd\":[\"sh\"]}" \
  "$BASE_LAYER_DIGEST" "$BASE_LAYER_SIZE" "$BASE_DIFF_ID"
AMD_CONFIG=$CONFIG_DIGEST AMD_MANIFEST=$MANIFEST_DIGEST AMD_SIZE=$MANIFEST_SIZE
add_json_blob "{\"schemaVersion\":2,\"mediaType\":\"$MT_INDEX\",\"manifests\":[{\"mediaType\":\"$MT_MANIFEST\",\"digest\":\"$ARM_MANIFEST\",\"size\":$ARM_SIZE,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},{\"mediaType\":\"$MT_MANIFEST\",\"digest\":\"$AMD_MANIFEST\",\"size\":$AMD_SIZE,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}"
MULTI_INDEX=$BLOB_DIGEST
refs+=",$(ref_entry $MT_INDEX "$BLOB_DIGEST" "$BLOB_SIZE" multiarch)"

printf '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' "$MT_INDEX" "$refs" >"$OCI/index.json"

# --- push ---------------------------------------------------------------------
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$WORK/policy.json"

# skopeo as root keeps a blob-info cache in /var/lib/containers/cache; as
# "rootless" it uses $XDG_DATA_HOME/containers/cache, here inside WORKDIR.
push() {  # push SRC_REF DEST_NAME [extra skopeo flags]
  local src=$1 dest=$2
  shift 2
  env _CONTAINERS_ROOTLESS_UID=1 XDG_DATA_HOME="$WORK/skopeo-data" \
    skopeo --policy "$WORK/policy.json" --tmpdir "$WORK/tmp" copy --quiet \
    --dest-tls-verify=false --dest-no-creds --preserve-digests "$@" \
    "oci:$OCI:$src" "docker://$REG/$dest"
}

pids=() names=()
start_push() {
  local log="$WORK/push/${2//[\/:]/_}.log"
  push "$@" >"$log" 2>&1 &
  pids+=("$!") names+=("$2")
}
# The base image first, alone: its layer is then already in the registry for
# the parallel pushes that reuse it.
push base library/alpine:3.20 >"$WORK/push/first.log" 2>&1 ||
  { cat "$WORK/push/first.log" >&2; die "skopeo copy to $REG/library/alpine:3.20 failed"; }
start_push base library/python:3.12-alpine
start_push base library/mysql:8.4
start_push base library/busybox:latest
start_push config sandboxd-test/config:1
start_push multiarch sandboxd-test/multiarch:1 --all
fail=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "images.sh: skopeo copy to $REG/${names[$i]} failed:" >&2
    cat "$WORK/push/${names[$i]//[\/:]/_}.log" >&2
    fail=1
  fi
done
[ "$fail" -eq 0 ] || exit 1

cat >"$WORK/images.env" <<ENV
IMAGES_REGISTRY=$REG
IMAGE_BASE_MANIFEST=$BASE_MANIFEST
IMAGE_BASE_CONFIG=$BASE_CONFIG
IMAGE_BASE_LAYER=$BASE_LAYER_DIGEST
IMAGE_BASE_DIFF_ID=$BASE_DIFF_ID
IMAGE_CONFIG_MANIFEST=$CFG_MANIFEST
IMAGE_CONFIG_CONFIG=$CFG_CONFIG
IMAGE_MULTIARCH_INDEX=$MULTI_INDEX
IMAGE_MULTIARCH_AMD64_MANIFEST=$AMD_MANIFEST
IMAGE_MULTIARCH_AMD64_CONFIG=$AMD_CONFIG
IMAGE_MULTIARCH_ARM64_MANIFEST=$ARM_MANIFEST
IMAGE_MULTIARCH_ARM64_CONFIG=$ARM_CONFIG
ENV
rm -rf "$WORK/rootfs" "$WORK/tmp"
echo "images: pushed 6 repositories to $REG"
