#pragma once
// ContainerdClient: containerd's gRPC API, typed and blocking, for use from
// WorkerPool jobs (never from the loop thread: every call blocks until
// containerd answers or its deadline passes).
//
// Every call carries the `containerd-namespace` metadata and a deadline, and,
// when given, a `containerd-lease` so what it creates is protected from
// garbage collection until the lease is deleted. gRPC statuses are mapped
// here, at the boundary, to RuntimeError codes with readable messages
// ("containerd: containers.Create sbx-1-web: already exists: ..."); nothing
// above this layer sees gRPC.
//
// Thread-safe: gRPC stubs are; the object holds no other mutable state.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/Result.h"

namespace sbx::runtime {

// Error::code values set by this layer.
enum RuntimeErrc : int {
  kErrOther = 1,
  kErrNotFound = 2,
  kErrAlreadyExists = 3,
  kErrUnavailable = 4,       // containerd down or restarting
  kErrTimeout = 5,           // the call's deadline passed
  kErrFailedPrecondition = 6,
  kErrInvalidArgument = 7,
};

inline bool isNotFound(const Error& e) { return e.code == kErrNotFound; }
inline bool isAlreadyExists(const Error& e) { return e.code == kErrAlreadyExists; }

struct Mount {
  std::string type;
  std::string source;
  std::string target;
  std::vector<std::string> options;
};

struct Descriptor {
  std::string mediaType;
  std::string digest;  // "sha256:..."
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

struct ContainerRecord {
  std::string id;
  std::string image;
  std::map<std::string, std::string> labels;
  std::string runtimeName;
  std::string snapshotter;
  std::string snapshotKey;
  std::string specJson;  // the OCI runtime spec as stored
};

// What a new container needs.
struct ContainerCreate {
  std::string id;
  std::string image;
  std::map<std::string, std::string> labels;
  std::string runtimeName = "io.containerd.runc.v2";
  // runc v2 shim options (containerd.runc.v1.Options): the OCI runtime
  // binary and its state root; empty: the shim's defaults.
  std::string runtimeBinary;
  std::string runtimeRoot;
  std::string specJson;
  std::string snapshotter = "overlayfs";
  std::string snapshotKey;
};

enum class TaskStatus { Unknown, Created, Running, Stopped, Paused, Pausing, NotFound };
const char* taskStatusName(TaskStatus s);  // "running", "stopped", ..., "not_found"

struct TaskInfo {
  std::string containerId;
  uint32_t pid = 0;
  TaskStatus status = TaskStatus::Unknown;
  uint32_t exitStatus = 0;
};

struct TaskCreate {
  std::string containerId;
  std::vector<Mount> rootfs;
  std::string stdoutUri;  // "file:///abs/path" (or a fifo path)
  std::string stderrUri;
};

struct SnapshotInfo {
  std::string name;
  std::string parent;
  std::string kind;  // "active", "committed", "view"
  std::map<std::string, std::string> labels;
};

struct LeaseInfo {
  std::string id;
  std::map<std::string, std::string> labels;
};

struct ImageRecord {
  std::string name;
  Descriptor target;
  std::map<std::string, std::string> labels;
};

struct ContentInfo {
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> labels;
};

// A task event from /tasks/exit, /tasks/oom, /tasks/start, /tasks/delete.
struct TaskEvent {
  enum class Kind { Exit, Oom, Start, Delete, Other };
  Kind kind = Kind::Other;
  std::string topic;
  std::string namespaceName;
  std::string containerId;
  std::string execId;
  uint32_t pid = 0;
  uint32_t exitStatus = 0;
};

// Cancels a blocking event stream from another thread. Thread-safe. Once
// cancelled it stays cancelled: a subscribe started afterwards returns at once.
class StreamCanceller {
 public:
  void cancel();
  bool cancelled() const;

 private:
  friend class ContainerdClient;
  mutable std::mutex mutex_;
  bool cancelled_ = false;
  std::function<void()> cancelStream_;  // set while a stream runs
};

struct ContainerdOptions {
  std::string address = "/run/containerd/containerd.sock";
  std::string namespaceName = "k8s.io";
  std::chrono::milliseconds callTimeout{30000};  // default per call
};

// Per-call options.
struct ContainerdCall {
  std::string lease;                    // containerd-lease metadata, if set
  std::chrono::milliseconds timeout{0};  // 0: ContainerdOptions::callTimeout
};

// A blob being written into containerd's content store (see
// ContainerdClient::openContentWriter). Not thread-safe.
class ContentWriter {
 public:
  virtual ~ContentWriter() = default;
  virtual Status write(const char* data, size_t len) = 0;
  // Commits with labels (e.g. containerd.io/gc.ref.* references). A blob
  // that is already present counts as committed.
  virtual Status commit(const std::map<std::string, std::string>& labels) = 0;
  // Abandons the write (also done by the destructor when not committed).
  virtual void abort() = 0;
  virtual int64_t written() const = 0;
};

class ContainerdClient {
 public:
  using Options = ContainerdOptions;
  using Call = ContainerdCall;

  explicit ContainerdClient(Options options);
  ~ContainerdClient();
  ContainerdClient(const ContainerdClient&) = delete;
  ContainerdClient& operator=(const ContainerdClient&) = delete;

  const Options& options() const { return options_; }

  // "1.6.20" (checks that containerd answers).
  Result<std::string> version(const Call& call = {});

  // Leases.
  Status createLease(const std::string& id, const std::map<std::string, std::string>& labels,
                     const Call& call = {});
  // Deletes a lease; `sync`: wait for garbage collection of what it held.
  Status deleteLease(const std::string& id, bool sync, const Call& call = {});
  Result<std::vector<LeaseInfo>> listLeases(const std::string& filter, const Call& call = {});

  // Content store.
  Result<ContentInfo> contentInfo(const std::string& digest, const Call& call = {});
  // Opens a streaming write of one blob: push bytes with write() as they
  // arrive (e.g. from libcurl's write callback), then commit(). containerd
  // verifies `expectedDigest` and `expectedSize` at commit. If a previous
  // write under the same `ref` left bytes behind, the writer restarts it.
  // The writer belongs to the calling thread; it blocks like every call here.
  // `call.timeout` bounds the whole write.
  Result<std::unique_ptr<class ContentWriter>> openContentWriter(const std::string& ref,
                                                                 const std::string& expectedDigest,
                                                                 int64_t expectedSize,
                                                                 const Call& call = {});
  // Convenience: writes a whole in-memory blob (manifests, configs).
  Status writeBlob(const std::string& ref, const std::string& digest, const std::string& data,
                   const std::map<std::string, std::string>& labels, const Call& call = {});
  // Reads a whole (small) blob: manifests, configs.
  Result<std::string> readContent(const std::string& digest, int64_t maxBytes,
                                  const Call& call = {});
  Status updateContentLabels(const std::string& digest,
                             const std::map<std::string, std::string>& labels,
                             const Call& call = {});

  // Images.
  Result<ImageRecord> getImage(const std::string& name, const Call& call = {});
  Status createImage(const ImageRecord& image, const Call& call = {});
  Status deleteImage(const std::string& name, const Call& call = {});

  // Snapshots (snapshotter from the argument).
  Result<std::vector<Mount>> prepareSnapshot(const std::string& snapshotter, const std::string& key,
                                             const std::string& parent,
                                             const std::map<std::string, std::string>& labels,
                                             const Call& call = {});
  Result<std::vector<Mount>> snapshotMounts(const std::string& snapshotter, const std::string& key,
                                            const Call& call = {});
  Status commitSnapshot(const std::string& snapshotter, const std::string& name,
                        const std::string& key, const std::map<std::string, std::string>& labels,
                        const Call& call = {});
  Status removeSnapshot(const std::string& snapshotter, const std::string& key,
                        const Call& call = {});
  Result<SnapshotInfo> statSnapshot(const std::string& snapshotter, const std::string& key,
                                    const Call& call = {});
  Result<std::vector<SnapshotInfo>> listSnapshots(const std::string& snapshotter,
                                                  const Call& call = {});

  // Diff: unpacks a layer blob onto mounts; returns the applied (uncompressed)
  // descriptor, whose digest is the layer's diff id.
  Result<Descriptor> applyLayer(const Descriptor& layer, const std::vector<Mount>& mounts,
                                const Call& call = {});

  // Containers.
  Status createContainer(const ContainerCreate& c, const Call& call = {});
  Result<ContainerRecord> getContainer(const std::string& id, const Call& call = {});
  // `filter`: containerd's filter syntax, e.g. `labels."sandboxd.io/sandbox"==sbx-1`.
  Result<std::vector<ContainerRecord>> listContainers(const std::string& filter,
                                                      const Call& call = {});
  Status deleteContainer(const std::string& id, const Call& call = {});

  // Tasks.
  Result<uint32_t> createTask(const TaskCreate& t, const Call& call = {});
  Result<uint32_t> startTask(const std::string& containerId, const Call& call = {});
  Status killTask(const std::string& containerId, uint32_t signal, bool all, const Call& call = {});
  Result<TaskInfo> deleteTask(const std::string& containerId, const Call& call = {});
  // Status NotFound (not an error) when the container has no task.
  Result<TaskInfo> getTask(const std::string& containerId, const Call& call = {});
  Result<std::vector<TaskInfo>> listTasks(const Call& call = {});

  // Events: blocks, calling `onEvent` for each task event in this client's
  // namespace, until `canceller.cancel()` (from any thread) or the stream
  // fails. Returns OK when cancelled, else the failure (also when containerd
  // restarts); the caller reconnects. Meant for one dedicated thread, not
  // the worker pool.
  Status subscribeTaskEvents(const std::function<void(const TaskEvent&)>& onEvent,
                             class StreamCanceller& canceller);

 private:
  struct Stubs;
  Options options_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace sbx::runtime
