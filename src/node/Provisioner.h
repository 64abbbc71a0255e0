#pragma once
// Provisioner: the sandbox lifecycle — the only place where the runtime
// (containerd, images) and the network (namespaces) meet. It owns the
// in-memory registry of sandboxes and drives each through
//   creating → running | error → deleting → (gone)
// on the loop thread; every blocking step (netns, image pull, containerd
// calls, state-file writes) runs on the worker pool and reports back.
//
// Create: admission and the state file happen before the caller is told
// "accepted"; then netns → images → snapshots/containers/tasks → start. A
// failure at any step releases what the sandbox got so far and leaves it in
// `error` with the step's message until it is deleted.
// Delete: SIGTERM to every task, SIGKILL after the grace period if they have
// not exited (exits are learned from containerd's event stream, not by
// polling), then tasks, containers, snapshots, lease, netns, files.
//
// Loop-thread only.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/Result.h"
#include "node/SandboxBackend.h"
#include "node/SandboxState.h"
#include "reactor/EventLoop.h"
#include "runtime/ContainerdClient.h"
#include "runtime/ImagePuller.h"

namespace sbx {
class WorkerPool;
namespace net {
class Cni;
class Firewall;
class Netns;
class PortTable;
class ProbeRunner;
struct CniAttachment;
}
}  // namespace sbx

namespace sbx::node {

class Admission;
class ImageService;
class SandboxStore;
class StatePersister;

struct ProvisionerConfig {
  std::string namespaceName = "k8s.io";
  std::string runtime = "runsc";  // "runsc" | "runc": reported in the API
  std::string runtimeType = "io.containerd.runc.v2";
  std::string runtimeBinary;  // "" = the shim's default for runc
  std::string runtimeRoot;
  std::string snapshotter = "overlayfs";
  std::string subnetCidr;
  std::string bridgeName;
  std::string cniConfPath;
  int64_t defaultEphemeralBytes = 128 << 20;
  int64_t pidsLimit = 4096;
  Duration stopGrace = std::chrono::seconds(5);     // SIGTERM → SIGKILL
  Duration killWait = std::chrono::seconds(5);      // SIGKILL → teardown anyway
  std::chrono::milliseconds callTimeout{30000};     // per containerd call
  std::string cgroupParent = "/sandboxd";
  // Names of network namespaces are "<netnsPrefix><sandbox id>".
  std::string netnsPrefix = "sandboxd-";
  // Create → running (probe included) longer than this fails the sandbox.
  Duration provisionTimeout = std::chrono::minutes(4);
  // host-local's lease directory for our network (<dataDir>/<network name>):
  // reconcile releases leases no sandbox owns.
  std::string ipamLeaseDir;
};

// The network side of a sandbox (src/net): CNI attachment, firewall rules,
// host ports, readiness probes. All required.
struct NetworkParts {
  net::Cni* cni = nullptr;
  net::Firewall* firewall = nullptr;
  net::PortTable* ports = nullptr;
  net::ProbeRunner* probes = nullptr;
};

class Provisioner final : public SandboxBackend {
 public:
  Provisioner(EventLoop& loop, WorkerPool& pool, runtime::ContainerdClient& containerd,
              ImageService& images, SandboxStore& store, StatePersister& persister,
              Admission& admission, net::Netns& netns, NetworkParts network,
              ProvisionerConfig config);
  ~Provisioner() override;
  Provisioner(const Provisioner&) = delete;
  Provisioner& operator=(const Provisioner&) = delete;

  // Loads the state files (at start): running sandboxes are re-admitted and
  // refreshed from containerd; one interrupted while creating is failed and
  // its runtime objects released; one interrupted while deleting is deleted.
  // `done(problems)` lists unreadable state files.
  void recover(std::function<void(std::vector<std::string>)> done) override;

  // Admits and persists a new sandbox, then answers `accepted` (with the
  // sandbox in phase creating, or a 400-class error: duplicate id,
  // admission) and provisions it in the background. `spec.id` must be set.
  void create(SandboxSpec spec, std::function<void(Result<const SandboxState*>)> accepted) override;

  // Deletes a sandbox (idempotent: unknown ids succeed at once). `done`
  // runs once everything it owned is released.
  void remove(const std::string& id, std::function<void(Status)> done) override;

  // Re-reads task pids and statuses from containerd (GET /v1/sandboxes/{id}).
  // Error code 404 for an unknown id.
  void refresh(const std::string& id,
               std::function<void(Result<const SandboxState*>)> done) override;

  // Compares what sbxlet knows with containerd, the network namespaces, the
  // IP leases and the firewall: a sandbox whose task died becomes error; one
  // creating for longer than provision_timeout fails; anything carrying
  // sbxlet's marks that no sandbox owns is released. `done` gets the first
  // error (the pass still does everything it can).
  void reconcile(std::function<void(Status)> done) override;

  // Containerd task events (from TaskEventStream).
  void onTaskEvent(const runtime::TaskEvent& ev);

  const SandboxState* find(const std::string& id) const override;
  const std::map<std::string, SandboxState>& sandboxes() const override { return sandboxes_; }
  const ProvisionerConfig& config() const { return config_; }
  SandboxStore& store() override { return store_; }

 private:
  struct Job;  // per-sandbox bookkeeping while creating or deleting
  struct RuntimePlan;

  // Runs `work` on the pool; `done` gets its Status (or "cancelled") on the
  // loop unless the provisioner is gone. Error if the pool refused the job.
  Status runJob(const char* tag, std::function<Status()> work, std::function<void(Status)> done);
  SandboxState* mutableFind(const std::string& id);
  std::string runtimeRootFor(const std::string& containerId) const;
  void touch(SandboxState& s);
  void persist(SandboxState& s, std::function<void(Status)> done = nullptr);

  void startProvisioning(const std::string& id);
  // Create: netns → network (CNI, firewall) → images → containers and
  // tasks → start. With runc the network is attached while the images are
  // ensured and the tasks created (a fork joined before the start: the
  // rules are in place before any process runs); runsc's sandbox reads the
  // namespace's interfaces when it boots, so there the order is serial.
  void stepNetns(const std::string& id);
  void recordAttachment(const std::string& id, const net::CniAttachment& attachment);
  void forkDone(const std::string& id, Status st);
  void stepImages(const std::string& id);
  void stepRuntime(const std::string& id, std::vector<runtime::ImageInfo> images, bool start);
  struct StartOutcome;
  void stepStart(const std::string& id);
  // `out` null: the job was cancelled.
  void onStarted(const std::string& id, const StartOutcome* out);
  bool timedOut(const std::string& id);
  void stepAwaitReady(const std::string& id);
  void onProbeOutcome(const std::string& id, bool ready, const std::string& message);
  void publishAndRun(const std::string& id);
  void stopProbe(const std::string& id);
  void failCreate(const std::string& id, const std::string& message);
  struct Orphans;
  void retryDeletes();
  void checkTasks(const std::set<std::string>& runningAtScan,
                  const std::map<std::string, runtime::TaskInfo>& tasks);
  void releaseOrphans(std::shared_ptr<Orphans> found, std::function<void(Status)> done);

  void beginDelete(const std::string& id);
  void deleteStopTasks(const std::string& id, uint32_t signal);
  void deleteWaitForExits(const std::string& id, bool killed);
  void deleteTeardown(const std::string& id);
  void finishDelete(const std::string& id, Status st);

  // Blocking: everything a sandbox may own in containerd and the netns.
  // Not-found is fine; returns the first real error.
  Status releaseRuntime(const SandboxState& snapshot);
  bool anyTaskAlive(const SandboxState& s) const;

  EventLoop& loop_;
  WorkerPool& pool_;
  runtime::ContainerdClient& containerd_;
  ImageService& images_;
  SandboxStore& store_;
  StatePersister& persister_;
  Admission& admission_;
  net::Netns& netns_;
  NetworkParts net_;
  ProvisionerConfig config_;

  std::map<std::string, SandboxState> sandboxes_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  std::map<std::string, std::string> containerToSandbox_;  // containerd id → sandbox id
  std::map<std::string, uint64_t> probes_;                 // sandbox id → ProbeRunner id
  std::map<std::string, Timer> provisionTimers_;           // while creating
  bool reconciling_ = false;
  std::set<std::string> releasing_;  // orphan ids reconcile is releasing
  std::vector<std::function<void(Status)>> reconcileWaiters_;
  // Guards posted/pool callbacks against the provisioner's destruction.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx::node
