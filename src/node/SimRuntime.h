#pragma once
// SimRuntime: a hollow node for scale tests (sbxlet `runtime: "sim"`, like
// Kubernetes' kubemark hollow nodes). Everything but the runtime is real:
// the same API, validation, admission (CPU, memory, addresses), host-port
// accounting, state files and phases. Containers "run" without containerd:
// a sandbox becomes running after a configurable start latency, or error
// with a configurable probability. Nothing is executed, no network
// namespace, interface or firewall rule is made, and host ports are only
// booked (never bound and not checked against the host's listeners, so a
// hundred hollow nodes can share one machine's ports).
//
// What the sim decides where the real runtime has something to do:
//   - addresses: the lowest free address of subnet_cidr (the gateway, the
//     first address, is never given out), assigned at create;
//   - readiness probes: counted as passed when the containers start;
//   - task pids are 0, taskStatus "running" while running, "not_found"
//     after a failure; logs are empty;
//   - after a restart, a sandbox that was creating fails with the real
//     runtime's message, as no start can survive a restart there either.
//
// Loop-thread only; state-file I/O goes to the worker pool (StatePersister).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/SandboxBackend.h"
#include "reactor/EventLoop.h"

namespace sbx {
class WorkerPool;
namespace net {
class PortTable;
}
}  // namespace sbx

namespace sbx::node {

class Admission;
class StatePersister;

struct SimConfig {
  // Create → running takes startLatency plus a uniform share of startJitter.
  Duration startLatency = std::chrono::milliseconds(200);
  Duration startJitter = Duration::zero();
  // Share of starts that fail (sandbox phase error), in percent.
  int failurePercent = 0;
  uint64_t seed = 0;  // 0: random
  // Reported in the sandbox objects, as the real runtime reports them.
  std::string subnetCidr = "10.89.0.0/16";
  std::string bridgeName = "sbx-br0";
  std::string cniConfPath;
  std::string namespaceName = "k8s.io";
};

// The sandbox addresses of one IPv4 subnet: lowest free first. The network
// address, the gateway (first host) and the broadcast address are never
// given out.
class SimAddressPool {
 public:
  // Error for anything but "a.b.c.d/p" with p in 8..30.
  static Result<SimAddressPool> parse(const std::string& cidr);
  // "" when none is left.
  std::string allocate();
  // Marks `ip` used (restoring a sandbox); false if it is outside the pool
  // or already used.
  bool claim(const std::string& ip);
  void release(const std::string& ip);
  size_t used() const { return usedCount_; }
  size_t capacity() const { return used_.size(); }

 private:
  // Index in used_ of `ip`, or -1.
  int64_t indexOf(const std::string& ip) const;
  uint32_t first_ = 0;  // first address handed out (network + 2)
  std::vector<bool> used_;
  size_t usedCount_ = 0;
  size_t cursor_ = 0;  // no free index below it
};

class SimRuntime final : public SandboxBackend {
 public:
  // `ports` is a PortTable without a host check (booking only).
  SimRuntime(EventLoop& loop, WorkerPool& pool, SandboxStore& store, StatePersister& persister,
             Admission& admission, net::PortTable& ports, SimConfig config);
  ~SimRuntime() override;
  SimRuntime(const SimRuntime&) = delete;
  SimRuntime& operator=(const SimRuntime&) = delete;

  // Error when the config is unusable (subnet).
  Status init();

  void recover(std::function<void(std::vector<std::string>)> done) override;
  void create(SandboxSpec spec, std::function<void(Result<const SandboxState*>)> accepted) override;
  void remove(const std::string& id, std::function<void(Status)> done) override;
  void refresh(const std::string& id,
               std::function<void(Result<const SandboxState*>)> done) override;
  // Removes state directories no sandbox owns (a crash between a delete's
  // release and its directory removal leaves one).
  void reconcile(std::function<void(Status)> done) override;

  const SandboxState* find(const std::string& id) const override;
  const std::map<std::string, SandboxState>& sandboxes() const override { return sandboxes_; }
  SandboxStore& store() override { return store_; }

  const SimAddressPool& addresses() const { return addresses_; }
  size_t starting() const { return startTimers_.size(); }

 private:
  SandboxState* mutableFind(const std::string& id);
  void persist(SandboxState& s, std::function<void(Status)> done = nullptr);
  Duration drawLatency();
  bool drawFailure();
  void start(const std::string& id);
  void fail(SandboxState& s, const std::string& message);
  void beginDelete(const std::string& id);
  void finishDelete(const std::string& id, Status st);

  EventLoop& loop_;
  WorkerPool& pool_;
  SandboxStore& store_;
  StatePersister& persister_;
  Admission& admission_;
  net::PortTable& ports_;
  SimConfig config_;
  SimAddressPool addresses_;
  std::mt19937_64 random_;

  std::map<std::string, SandboxState> sandboxes_;
  // Only while a sandbox is starting or being deleted.
  std::unordered_map<std::string, Timer> startTimers_;
  std::unordered_map<std::string, std::vector<std::function<void(Status)>>> deleteWaiters_;
  bool reconciling_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx::node
