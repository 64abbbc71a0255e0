#pragma once
// NodeRegistry: the nodes sandboxd-o schedules on (SPEC §2 "Nodes"): API and
// config registrations, heartbeats on the loop (each node once per interval,
// spread over it in slices), and
// the streaks that make a node Ready or NotReady.
//
// A heartbeat is GET /healthz (open) then GET /v1/node/status (with the
// nodes' secret), each within probe_timeout: a node answering /healthz but
// refusing our secret is not Ready. Success: success_streak + 1, failure
// streak 0, Ready at ready_success_threshold. Failure: the reverse, NotReady
// at notready_failure_threshold. Every outcome is written to the store.
//
// Loop-thread only.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/Result.h"
#include "orch/NodeClient.h"
#include "orch/OrchModel.h"
#include "reactor/EventLoop.h"

namespace sbx::orch {

class StoreWriter;

struct NodeRegistryConfig {
  Duration heartbeatInterval = std::chrono::seconds(10);
  Duration probeTimeout = std::chrono::seconds(3);
  int readySuccessThreshold = 2;
  int notReadyFailureThreshold = 2;
};

struct HeartbeatOutcome {
  bool ok = false;
  std::string heartbeatError;  // /healthz
  std::string statusError;     // /v1/node/status
};

class NodeRegistry {
 public:
  // A node's state, resources or registration changed (also on removal:
  // `removed`). The scheduler reacts to it.
  using Listener = std::function<void(const OrchNode& node, NodeState previous, bool removed)>;

  NodeRegistry(EventLoop& loop, NodeClient& client, StoreWriter& store, NodeRegistryConfig config);
  ~NodeRegistry();
  NodeRegistry(const NodeRegistry&) = delete;
  NodeRegistry& operator=(const NodeRegistry&) = delete;

  void setListener(Listener l) { listener_ = std::move(l); }
  // Nodes read from the store at start (before start()).
  void load(std::vector<OrchNode> nodes);
  // Starts the heartbeat timer; every node is probed at once.
  void start();
  void stop();

  const OrchNode* find(const std::string& name) const;
  const std::map<std::string, OrchNode>& nodes() const { return nodes_; }

  // Creates or updates a registration; `done` runs once it is stored. A
  // changed address resets the node to Unknown. The node is probed at once.
  void upsert(const std::string& name, const std::string& ip, int port, const std::string& source,
              const std::string& external, std::function<void(Result<const OrchNode*>)> done);
  // Forgets the node (store first). `done` gets 404 for an unknown name.
  void remove(const std::string& name, std::function<void(Status)> done);
  // Probes now and counts like any heartbeat. An unknown name: not called.
  void heartbeat(const std::string& name, std::function<void(const HeartbeatOutcome&)> done);

  NodeEndpoint endpoint(const OrchNode& n) const { return {n.name, n.ip, n.port}; }

 private:
  struct Probe;
  void probe(const std::string& name, std::function<void(const HeartbeatOutcome&)> done);
  void finishProbe(const std::string& name, uint64_t generation, HeartbeatOutcome out,
                   NodeResources resources, int64_t requestedAtMs);
  void persist(const OrchNode& n);

  EventLoop& loop_;
  NodeClient& client_;
  StoreWriter& store_;
  NodeRegistryConfig config_;
  Listener listener_;
  std::map<std::string, OrchNode> nodes_;
  // Per node: the generation of its registration (a probe of an older
  // registration is ignored) and the callers waiting for the probe in flight.
  struct Runtime {
    uint64_t generation = 0;
    bool probing = false;
    std::vector<std::function<void(const HeartbeatOutcome&)>> waiters;
  };
  std::map<std::string, Runtime> runtime_;
  uint64_t nextGeneration_ = 1;
  Timer timer_;
  uint64_t beatTick_ = 0;  // heartbeat slices so far
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx::orch
