#pragma once
// ImagePuller: pulls an image from its registry into containerd and unpacks
// it into snapshots, the way containerd's own client does, so that what it
// leaves behind is an ordinary containerd image (`ctr images ls`, GC and all):
//
//   lease (sandboxd.io/pull=<name>, containerd.io/gc.expire as a safety net)
//   → resolve the manifest (an index → this host's platform)
//   → blobs into the content store (layers streamed from the registry),
//     parents labelled containerd.io/gc.ref.content.* for their children
//   → unpack: per layer, Prepare(extract key, parent chain) → diff.Apply →
//     Commit(chain id); config labelled gc.ref.snapshot.<snapshotter>
//   → the image record (moved if the tag now names something else)
//   → the lease deleted, on success and on failure.
//
// Blocking: for WorkerPool jobs. Thread-safe: concurrent pulls (also of
// images sharing layers) download each blob and unpack each layer once per
// process; concurrent pulls from other processes are safe too (their writes
// and snapshot keys never collide with ours).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "runtime/ContainerdClient.h"
#include "runtime/RegistryClient.h"

namespace sbx::runtime {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64"
  std::string variant;       // "", "v8", "v7"

  std::string str() const;  // "linux/amd64", "linux/arm64/v8"
};

// uname's machine name as an OCI architecture: x86_64→amd64, aarch64→arm64
// (variant v8), armv7l→arm (v7), i686→386; others unchanged.
Platform platformFromMachine(std::string_view machine);
// This host: linux/<uname -m, mapped>.
Platform hostPlatform();

// What an image config says (the fields a sandbox needs).
struct ImageConfig {
  Platform platform;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string workingDir;
  std::string user;
  std::vector<std::string> diffIds;  // rootfs.diff_ids, "sha256:..."
};

struct ImageManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

bool isIndexMediaType(std::string_view mediaType);
bool isManifestMediaType(std::string_view mediaType);

Result<ImageConfig> parseImageConfig(std::string_view json);
Result<ImageManifest> parseImageManifest(std::string_view json);
// The entry of an OCI index / Docker manifest list for `platform`: same os
// and architecture; the variant only decides between several such entries
// (and rules out other arm variants). Entries without a platform are a last
// resort. Error names the platforms available.
Result<Descriptor> selectPlatformManifest(std::string_view indexJson, const Platform& platform);

// containerd's chain ids: chain[0] = diffIds[0], chain[i] =
// sha256(chain[i-1] + " " + diffIds[i]). One per layer; the last names the
// image's top snapshot.
std::vector<std::string> chainIds(const std::vector<std::string>& diffIds);

struct ImageInfo {
  std::string name;          // normalized reference, the image record's name
  std::string targetDigest;  // the image record's target (index or manifest)
  std::string targetMediaType;
  std::string manifestDigest;  // this platform's manifest
  std::string configDigest;
  std::string platform;  // from the config: "linux/amd64"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string workingDir;
  std::string user;
  std::vector<std::string> diffIds;
  std::string chainId;  // top snapshot, committed in `snapshotter`
  std::string snapshotter = "overlayfs";
  int64_t bytesFetched = 0;  // layer/config bytes this pull downloaded (local(): 0)
};

struct ImagePullerOptions {
  std::string snapshotter = "overlayfs";
  Platform platform = hostPlatform();
  // containerd.io/gc.expire of a pull's lease: if sandboxd dies mid-pull,
  // containerd collects what the pull left after this long.
  std::chrono::hours leaseExpiry{3};
  int64_t maxConfigBytes = 4 << 20;
  // Bounds each clean-up call (lease delete, snapshot remove), which runs
  // even when the pull's deadline has passed.
  std::chrono::milliseconds cleanupTimeout{10000};
};

class ImagePuller {
 public:
  // Both clients must outlive the puller.
  ImagePuller(ContainerdClient& containerd, RegistryClient& registry,
              ImagePullerOptions options = {});
  ~ImagePuller();
  ImagePuller(const ImagePuller&) = delete;
  ImagePuller& operator=(const ImagePuller&) = delete;

  // Pulls and unpacks `ref` (tags are always resolved again: they move; a
  // digest reference already present locally is returned without asking the
  // registry). Everything, containerd calls included, ends by `deadline`.
  // Errors are prefixed "pull <name>: ".
  Result<ImageInfo> pull(const ImageRef& ref, Deadline deadline);

  // The image as present in containerd: record, manifest, config and the
  // committed top snapshot. Error code kErrNotFound when any of these is
  // missing (the caller then pulls).
  Result<ImageInfo> local(const ImageRef& ref);

  // Deletes the pull leases ("sandboxd-pull-…", labelled kLabelPull) of
  // pulls that are not under way in this process: those of a process that
  // was killed mid-pull. With them go, through containerd's GC, the content
  // and the half-unpacked (active "extract-…") snapshots they held.
  // Returns how many were deleted.
  Result<size_t> releaseStaleLeases(const ContainerdCall& call);

 private:
  struct Locks;
  class Session;

  ContainerdClient& containerd_;
  RegistryClient& registry_;
  ImagePullerOptions options_;
  std::unique_ptr<Locks> locks_;
  std::mutex leasesMu_;
  std::set<std::string> activeLeases_;  // pulls under way (guarded by leasesMu_)
};

}  // namespace sbx::runtime
