#pragma once
// SandboxController: the life of a control-plane sandbox (SPEC §2).
//
//   Pending ──place──▶ Scheduled ──node says running──▶ Running
//      ▲  (no node fits: stays,      │ node refused for capacity or was
//      │   retried on every change)  │ unreachable: back to Pending, that
//      └─────────────────────────────┘ node excluded
//   Scheduled/Running ──node says error / sandbox gone──▶ Failed
//   any ──DELETE──▶ Deleting ──node deleted──▶ (removed)
//   any ──ttl──▶ Expired ──node deleted──▶ (removed)
//   Pending longer than pending_timeout ──▶ Failed
//
// Placement is event-driven: a create is placed in the same loop turn it is
// stored, and Pending sandboxes are tried again whenever a node changes
// (state, resources) or a sandbox releases what it held. Host ports are
// booked in a HostPortBook at placement, so no (node, port, protocol) is
// ever handed out twice; resources a placement takes are reserved on the
// node until a status the node sent after accepting the create shows them.
//
// Every transition is written to the store before it is acted on (the
// node called, the client answered). After a restart, load() + start()
// resume: Pending is placed, Scheduled is created again on its node (an
// "already exists" answer counts as accepted), Deleting and Expired are
// deleted, Running is followed.
//
// Sandboxes on a node that goes NotReady are kept as they are, with a
// message naming the node's state; nothing is rescheduled (the sandbox's
// processes and data live on that node, and a partition cannot be told
// from a crash: moving it could run two copies). They are followed again
// when the node is back.
//
// Loop-thread only.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/Result.h"
#include "orch/NodeClient.h"
#include "orch/OrchModel.h"
#include "orch/Scheduler.h"
#include "reactor/EventLoop.h"

namespace sbx::orch {

class NodeRegistry;
class StoreWriter;

struct SandboxControllerConfig {
  int hostPortMin = 10000;
  int hostPortMax = 32767;
  Duration opTimeout = std::chrono::seconds(60);                // each call to a node
  Duration pendingTimeout = std::chrono::minutes(10);           // Pending longer → Failed
  Duration statusSyncInterval = std::chrono::milliseconds(20);  // Scheduled sandboxes
  Duration runningSyncInterval = std::chrono::seconds(10);      // Running sandboxes
  Duration retryBackoff = std::chrono::seconds(1);              // doubles up to 30 s
};

class SandboxController {
 public:
  SandboxController(EventLoop& loop, NodeRegistry& nodes, NodeClient& client, StoreWriter& store,
                    SandboxControllerConfig config);
  ~SandboxController();
  SandboxController(const SandboxController&) = delete;
  SandboxController& operator=(const SandboxController&) = delete;

  // Sandboxes read from the store (before start()).
  void load(std::vector<OrchSandbox> sandboxes);
  // Resumes in-flight work and starts the sync and maintenance timers.
  void start();
  void stop();

  const OrchSandbox* find(const std::string& id) const;
  const std::map<std::string, OrchSandbox>& sandboxes() const { return sandboxes_; }

  // A new sandbox (validated; phase Pending, times set by the caller).
  // `done` gets it once stored, or 409 "sandbox already exists: <id>".
  void create(OrchSandbox s, std::function<void(Result<const OrchSandbox*>)> done);
  // Deletes on its node, releases, removes. `done`: true once removed,
  // false if the node could not be reached yet (deletion goes on in the
  // background); 404 for an unknown id.
  void remove(const std::string& id, std::function<void(Result<bool>)> done);

  // Node removal. Deletes every sandbox of `node` on it; `done` fails (502)
  // if some could not be deleted yet.
  void deleteAllOnNode(const std::string& node, std::function<void(Status)> done);
  // Marks every active sandbox of `node` Failed with `message` and releases
  // its host ports and reservations (nothing is called on the node).
  void failAllOnNode(const std::string& node, const std::string& message);

  // NodeRegistry's listener.
  void onNodeChanged(const OrchNode& node, NodeState previous, bool removed);

  struct Stats {
    uint64_t placements = 0;
    uint64_t placementFailures = 0;  // tries that found no node
    uint64_t nodeRefusals = 0;       // creates a node refused (capacity, unreachable)
    size_t pending = 0;
    size_t bookedPorts = 0;
  };
  Stats stats() const;

 private:
  struct Runtime;
  Runtime& rt(const std::string& id);
  void persist(const OrchSandbox& s, std::function<void(Status)> then = nullptr);
  void postSchedule();
  void schedulePending();
  bool trySchedule(const std::string& id);
  void sendCreate(const std::string& id);
  void onCreateReply(const std::string& id, const std::string& node, Result<NodeReply> r);
  void unplace(const std::string& id, const std::string& refusedBy, const std::string& why);
  // `nodeHoldsIt`: the sandbox exists on its node (in error there), which
  // keeps its host ports and admission until it is deleted.
  void fail(const std::string& id, const std::string& message, bool nodeHoldsIt = true);
  static std::string strayOwner(const std::string& id);
  void deleteStray(const std::string& node, const std::string& id);
  void release(const std::string& id);
  void book(const OrchSandbox& s);
  void beginRemoval(const std::string& id);
  void startNodeDelete(const std::string& id);
  void finishRemoval(const std::string& id);
  void armTtl(const std::string& id);
  void expire(const std::string& id);
  void syncStatuses(bool includeRunning);
  // Sends queued statuses calls, kStatusCallsPerTurn at most per loop turn
  // (a hundred nodes' calls in one turn stalled the loop for milliseconds).
  void sendStatusCalls();
  void onStatuses(const std::string& node, const std::vector<std::string>& ids,
                  Result<NodeReply> r);
  void maintenance();
  std::vector<NodeFit> nodeFits() const;
  bool isActive(const OrchSandbox& s) const;

  EventLoop& loop_;
  NodeRegistry& nodes_;
  NodeClient& client_;
  StoreWriter& store_;
  SandboxControllerConfig config_;
  std::map<std::string, OrchSandbox> sandboxes_;
  std::map<std::string, std::unique_ptr<Runtime>> runtime_;
  HostPortBook ports_;
  // Resources placed on a node and not yet seen in its status.
  struct Reservation {
    int64_t cpuMillis = 0;
    int64_t memoryBytes = 0;
    int64_t acceptedAtMs = 0;  // 0: the node has not accepted the create yet
  };
  std::map<std::string, std::map<std::string, Reservation>> reservations_;
  std::set<std::pair<int64_t, std::string>> pending_;  // (created_at, id)
  std::set<std::string> syncing_;                      // nodes with a statuses call in flight
  struct StatusCall {
    std::string node;
    std::vector<std::string> ids;
    std::shared_ptr<size_t> left;  // the node's calls not answered yet
  };
  std::deque<StatusCall> statusCalls_;  // queued by syncStatuses, not sent yet
  bool statusCallsPosted_ = false;
  static constexpr size_t kStatusCallsPerTurn = 16;
  std::set<std::string> accepted_;  // Scheduled and accepted by their node: polled until Running
  // (node, sandbox) whose create got no answer: deleted there until the node
  // confirms (value: a DELETE is in flight); its ports stay booked under
  // strayOwner(id) meanwhile.
  std::map<std::pair<std::string, std::string>, bool> strays_;
  bool schedulePosted_ = false;
  Timer syncTimer_;
  Timer runningSyncTimer_;
  Timer maintenanceTimer_;
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx::orch
