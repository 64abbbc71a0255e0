#!/usr/bin/env bash
# Generates containerd's API for C++ from the .proto files Debian ships
# (golang-github-containerd-containerd-dev) and builds it once into a static
# library: build/proto/libcontainerd_api.a, headers under build/proto/gen.
#
# protoc 3.21's C++ generator aborts on `import weak` (TESTBED.md), so the
# files are copied with `import weak` rewritten to `import`. The introspection
# service (needs google/rpc/status.proto) and the ttrpc events are left out.
#
#   proto/build.sh OUT_DIR
set -euo pipefail

out=${1:-build/proto}
ctrd=/usr/share/gocode/src/github.com/containerd/containerd
gogo=/usr/share/gocode/src/github.com/gogo/protobuf
src="$out/src"
gen="$out/gen"
objs="$out/obj"
jobs=$(nproc 2>/dev/null || echo 2)

protos=(
  api/types/descriptor.proto
  api/types/metrics.proto
  api/types/mount.proto
  api/types/platform.proto
  api/types/task/task.proto
  api/events/container.proto
  api/events/content.proto
  api/events/image.proto
  api/events/namespace.proto
  api/events/snapshot.proto
  api/events/task.proto
  api/services/containers/v1/containers.proto
  api/services/content/v1/content.proto
  api/services/diff/v1/diff.proto
  api/services/events/v1/events.proto
  api/services/images/v1/images.proto
  api/services/leases/v1/leases.proto
  api/services/namespaces/v1/namespace.proto
  api/services/snapshots/v1/snapshots.proto
  api/services/tasks/v1/tasks.proto
  api/services/version/v1/version.proto
  runtime/v2/runc/options/oci.proto
  protobuf/plugin/fieldpath.proto
)

rm -rf "$src" "$gen" "$objs"
mkdir -p "$src/github.com/containerd/containerd" "$src/gogoproto" "$gen" "$objs"
files=()
for p in "${protos[@]}"; do
  dest="$src/github.com/containerd/containerd/$p"
  mkdir -p "$(dirname "$dest")"
  sed -e 's/^import weak /import /' "$ctrd/$p" > "$dest"
  files+=("github.com/containerd/containerd/$p")
done
sed -e 's/^import weak /import /' "$gogo/gogoproto/gogo.proto" > "$src/gogoproto/gogo.proto"
files+=("gogoproto/gogo.proto")

echo "proto: generating ${#files[@]} files"
( cd "$src" && protoc -I. -I/usr/include \
    --cpp_out="$OLDPWD/$gen" \
    --grpc_out="$OLDPWD/$gen" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
    "${files[@]}" )

echo "proto: compiling with $jobs jobs"
cflags="-std=c++17 -O2 -g0 -fPIC -w -I$gen $(pkg-config --cflags protobuf grpc++)"
find "$gen" -name '*.cc' | sort | \
  xargs -P "$jobs" -I{} sh -c 'o="'"$objs"'/$(echo "{}" | tr / _).o"; g++ '"$cflags"' -c "{}" -o "$o"'
rm -f "$out/libcontainerd_api.a"
ar rcs "$out/libcontainerd_api.a" "$objs"/*.o
echo "proto: $(ls "$objs" | wc -l) objects in $out/libcontainerd_api.a"
