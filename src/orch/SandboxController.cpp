#include "orch/SandboxController.h"

#include <algorithm>

#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "log/Log.h"
#include "orch/NodeRegistry.h"
#include "orch/StoreWriter.h"

namespace sbx::orch {

namespace {

constexpr size_t kMaxStatusIds = 200;  // sbxlet's limit per statuses call
constexpr Duration kMaxBackoff = std::chrono::seconds(30);

// What sbxlet answers when the node itself has no room: the sandbox may
// fit elsewhere.
bool isCapacityRefusal(const std::string& error) {
  return error.rfind("insufficient ", 0) == 0 || error.rfind("host port already in use", 0) == 0;
}

std::string errorOf(const std::string& body) {
  json::JsonReader reader;
  auto root = reader.parse(body);
  std::string e;
  if (root.ok()) root->field({"error"}).get(e);
  return e.empty() ? body.substr(0, 200) : e;
}

}  // namespace

struct SandboxController::Runtime {
  bool createInFlight = false;
  bool deleteInFlight = false;
  int64_t acceptedAtMs = 0;
  Duration backoff{0};
  Timer ttl;
  Timer retry;
  std::vector<std::function<void(Result<bool>)>> deleteWaiters;
};

SandboxController::SandboxController(EventLoop& loop, NodeRegistry& nodes, NodeClient& client,
                                     StoreWriter& store, SandboxControllerConfig config)
    : loop_(loop),
      nodes_(nodes),
      client_(client),
      store_(store),
      config_(config),
      ports_(config.hostPortMin, config.hostPortMax) {}

SandboxController::~SandboxController() { *alive_ = false; }

SandboxController::Runtime& SandboxController::rt(const std::string& id) {
  auto& p = runtime_[id];
  if (!p) p = std::make_unique<Runtime>();
  return *p;
}

bool SandboxController::isActive(const OrchSandbox& s) const {
  return s.phase == SandboxPhase::Scheduled || s.phase == SandboxPhase::Running ||
         s.phase == SandboxPhase::Deleting || s.phase == SandboxPhase::Expired;
}

void SandboxController::persist(const OrchSandbox& s, std::function<void(Status)> then) {
  StoreChange c;
  c.kind = StoreChange::Kind::Put;
  c.collection = "sandboxes";
  c.id = s.id;
  c.doc = encodeSandboxDoc(s);
  store_.submit(std::move(c), [then = std::move(then), id = s.id](Status st) {
    if (!st.ok()) logError("store write failed", {{"sandbox", id}, {"error", st.message()}});
    if (then) then(st);
  });
}

const OrchSandbox* SandboxController::find(const std::string& id) const {
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : &it->second;
}

SandboxController::Stats SandboxController::stats() const {
  Stats s = stats_;
  s.pending = pending_.size();
  s.bookedPorts = ports_.size();
  return s;
}

// ---- start and recovery ----

void SandboxController::book(const OrchSandbox& s) {
  for (const auto& p : s.assignedPorts) {
    if (!ports_.book(s.nodeName, p.hostPort, p.protocol, s.id)) {
      logWarn("host port booked twice in the store", {{"sandbox", s.id}, {"node", s.nodeName},
                                                      {"port", std::to_string(p.hostPort)}});
    }
  }
}

void SandboxController::load(std::vector<OrchSandbox> sandboxes) {
  for (auto& s : sandboxes) {
    const std::string id = s.id;
    if (isActive(s) && !s.nodeName.empty()) {
      book(s);
      // Running: long accepted (the node's next status has it). Scheduled:
      // unknown, so reserved until the node confirms.
      reservations_[s.nodeName][id] = Reservation{s.spec.totalCpuMillis(), s.spec.totalMemoryBytes(),
                                                  s.phase == SandboxPhase::Running ? 1 : 0};
    }
    if (s.phase == SandboxPhase::Pending) pending_.insert({s.createdAtMs, id});
    sandboxes_[id] = std::move(s);
  }
}

void SandboxController::start() {
  for (auto& [id, s] : sandboxes_) {
    armTtl(id);
    switch (s.phase) {
      case SandboxPhase::Scheduled:
        sendCreate(id);  // "already exists" counts as accepted
        break;
      case SandboxPhase::Deleting:
      case SandboxPhase::Expired:
        startNodeDelete(id);
        break;
      default:
        break;
    }
  }
  syncTimer_ = loop_.runEvery(config_.statusSyncInterval, [this] { syncStatuses(false); });
  runningSyncTimer_ = loop_.runEvery(config_.runningSyncInterval, [this] { syncStatuses(true); });
  maintenanceTimer_ = loop_.runEvery(std::chrono::seconds(1), [this] { maintenance(); });
  postSchedule();
}

void SandboxController::stop() {
  syncTimer_.cancel();
  runningSyncTimer_.cancel();
  maintenanceTimer_.cancel();
  for (auto& [id, r] : runtime_) {
    r->ttl.cancel();
    r->retry.cancel();
  }
}

// ---- create and placement ----

void SandboxController::create(OrchSandbox s,
                               std::function<void(Result<const OrchSandbox*>)> done) {
  if (sandboxes_.count(s.id)) {
    done(makeError("sandbox already exists: " + s.id, 409));
    return;
  }
  const std::string id = s.id;
  s.phase = SandboxPhase::Pending;
  sandboxes_[id] = s;
  persist(s, [this, id, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](Status st) {
    if (alive.expired()) return;
    auto it = sandboxes_.find(id);
    if (!st.ok()) {
      if (it != sandboxes_.end() && it->second.phase == SandboxPhase::Pending) sandboxes_.erase(it);
      done(makeError("store: " + st.message(), 500));
      return;
    }
    if (it == sandboxes_.end()) {
      done(makeError("sandbox deleted meanwhile: " + id, 409));
      return;
    }
    // Answered with what the client asked for (Pending); placement follows
    // at once, in this same turn.
    done(&it->second);
    armTtl(id);
    if (it->second.phase == SandboxPhase::Pending) {
      pending_.insert({it->second.createdAtMs, id});
      trySchedule(id);
    }
  });
}

std::vector<NodeFit> SandboxController::nodeFits() const {
  std::vector<NodeFit> fits;
  fits.reserve(nodes_.nodes().size());
  for (const auto& [name, n] : nodes_.nodes()) {
    NodeFit f;
    f.name = name;
    f.state = nodeStateName(n.state);
    f.ready = n.state == NodeState::Ready && n.resources.known && n.resourcesAsOfMs > 0;
    f.allocatableCpuMillis = n.resources.allocatableCpuMilli;
    f.allocatableMemoryBytes = n.resources.allocatableMemoryBytes;
    f.availableCpuMillis = n.resources.availableCpuMilli;
    f.availableMemoryBytes = n.resources.availableMemoryBytes;
    if (auto rit = reservations_.find(name); rit != reservations_.end()) {
      for (const auto& [id, r] : rit->second) {
        if (r.acceptedAtMs == 0 || r.acceptedAtMs >= n.resourcesAsOfMs) {
          f.availableCpuMillis -= r.cpuMillis;
          f.availableMemoryBytes -= r.memoryBytes;
        }
      }
    }
    fits.push_back(std::move(f));
  }
  return fits;
}

void SandboxController::postSchedule() {
  if (schedulePosted_) return;
  schedulePosted_ = true;
  loop_.post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    schedulePosted_ = false;
    schedulePending();
  });
}

void SandboxController::schedulePending() {
  if (pending_.empty()) return;
  std::vector<std::string> ids;
  ids.reserve(pending_.size());
  for (const auto& [at, id] : pending_) ids.push_back(id);
  for (const auto& id : ids) trySchedule(id);
}

bool SandboxController::trySchedule(const std::string& id) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end() || it->second.phase != SandboxPhase::Pending) {
    if (it != sandboxes_.end()) pending_.erase({it->second.createdAtMs, id});
    return false;
  }
  OrchSandbox& s = it->second;
  PlacementRequest req;
  req.cpuMillis = s.spec.totalCpuMillis();
  req.memoryBytes = s.spec.totalMemoryBytes();
  for (const auto& p : s.spec.ports) req.portProtocols.push_back(p.protocol);
  req.excludedNodes.insert(s.refusedBy.begin(), s.refusedBy.end());
  auto placed = schedule(nodeFits(), req, ports_);
  if (!placed.ok()) {
    ++stats_.placementFailures;
    if (s.message != placed.message()) {
      s.message = placed.message();
      s.updatedAtMs = nowUnixMs();
      persist(s);
    }
    return false;
  }
  const OrchNode* node = nodes_.find(placed->node);
  pending_.erase({s.createdAtMs, id});
  s.phase = SandboxPhase::Scheduled;
  s.nodeName = placed->node;
  s.external = node ? node->external() : "";
  s.message.clear();
  s.assignedPorts.clear();
  for (size_t i = 0; i < s.spec.ports.size() && i < placed->hostPorts.size(); ++i) {
    s.assignedPorts.push_back(
        AssignedPort{placed->hostPorts[i], s.spec.ports[i].containerPort, s.spec.ports[i].protocol});
  }
  s.updatedAtMs = nowUnixMs();
  book(s);
  reservations_[s.nodeName][id] = Reservation{req.cpuMillis, req.memoryBytes, 0};
  rt(id).acceptedAtMs = 0;
  ++stats_.placements;
  // Stored as Scheduled before the node hears of it: after a crash we know
  // to look for it there.
  persist(s, [this, id, alive = std::weak_ptr<bool>(alive_)](Status st) {
    if (alive.expired() || !st.ok()) return;
    sendCreate(id);
  });
  return true;
}

void SandboxController::sendCreate(const std::string& id) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  OrchSandbox& s = it->second;
  Runtime& r = rt(id);
  if (s.phase != SandboxPhase::Scheduled || r.createInFlight) return;
  const OrchNode* node = nodes_.find(s.nodeName);
  if (!node) {
    unplace(id, "", "node " + s.nodeName + " is no longer registered");
    return;
  }
  r.createInFlight = true;
  const std::string nodeName = s.nodeName;
  client_.call(nodes_.endpoint(*node), "POST", "/v1/sandboxes", nodeCreateBody(s),
               config_.opTimeout,
               [this, id, nodeName, alive = std::weak_ptr<bool>(alive_)](Result<NodeReply> reply) {
                 if (alive.expired()) return;
                 onCreateReply(id, nodeName, std::move(reply));
               });
}

void SandboxController::onCreateReply(const std::string& id, const std::string& node,
                                      Result<NodeReply> reply) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  OrchSandbox& s = it->second;
  Runtime& r = rt(id);
  r.createInFlight = false;
  if (s.nodeName != node) return;
  if (s.phase == SandboxPhase::Deleting || s.phase == SandboxPhase::Expired) {
    // A delete came while the create was on its way: now it cannot
    // overtake the create on the node.
    startNodeDelete(id);
    return;
  }
  if (s.phase != SandboxPhase::Scheduled) return;
  std::string error;
  if (!reply.ok()) {
    error = reply.message();
  } else if (reply->status >= 200 && reply->status < 300) {
    r.acceptedAtMs = nowUnixMs();
    reservations_[node][id].acceptedAtMs = r.acceptedAtMs;
    accepted_.insert(id);
    return;
  } else {
    error = errorOf(reply->body);
    if (reply->status == 400 && error == "sandbox already exists: " + id) {
      r.acceptedAtMs = nowUnixMs();  // our earlier create (before a restart)
      reservations_[node][id].acceptedAtMs = r.acceptedAtMs;
      accepted_.insert(id);
      return;
    }
    if (reply->status >= 400 && reply->status < 500 && reply->status != 429 &&
        !isCapacityRefusal(error)) {
      fail(id, "node " + node + ": " + error, /*nodeHoldsIt=*/false);  // it refused
      return;
    }
  }
  // No room there, or no answer: try the other nodes. An unanswered create
  // may still have happened: it is deleted there, and retried until the
  // node confirms, its host ports staying booked meanwhile.
  ++stats_.nodeRefusals;
  const bool unanswered = !reply.ok() || reply->status >= 500;
  const std::vector<AssignedPort> held = s.assignedPorts;
  unplace(id, node, "node " + node + " refused: " + error);
  if (unanswered) {
    const std::string owner = strayOwner(id);
    for (const auto& p : held) ports_.book(node, p.hostPort, p.protocol, owner);
    strays_[{node, id}] = false;
    deleteStray(node, id);
  }
}

void SandboxController::unplace(const std::string& id, const std::string& refusedBy,
                                const std::string& why) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  OrchSandbox& s = it->second;
  release(id);
  if (!refusedBy.empty() &&
      std::find(s.refusedBy.begin(), s.refusedBy.end(), refusedBy) == s.refusedBy.end()) {
    s.refusedBy.push_back(refusedBy);
  }
  s.phase = SandboxPhase::Pending;
  s.nodeName.clear();
  s.external.clear();
  s.ip.clear();
  s.assignedPorts.clear();
  s.message = why;
  s.updatedAtMs = nowUnixMs();
  pending_.insert({s.createdAtMs, id});
  persist(s);
  postSchedule();
}

void SandboxController::release(const std::string& id) {
  ports_.releaseOwner(id);
  accepted_.erase(id);
  auto it = sandboxes_.find(id);
  if (it != sandboxes_.end() && !it->second.nodeName.empty()) {
    auto rit = reservations_.find(it->second.nodeName);
    if (rit != reservations_.end()) {
      rit->second.erase(id);
      if (rit->second.empty()) reservations_.erase(rit);
    }
  }
}

void SandboxController::fail(const std::string& id, const std::string& message,
                             bool nodeHoldsIt) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  OrchSandbox& s = it->second;
  // A sandbox in error on its node still holds its host ports and its
  // admission there until it is deleted (by the client or its TTL): so do
  // our bookings. Only what the node does not hold is released now.
  if (nodeHoldsIt && !s.nodeName.empty()) {
    accepted_.erase(id);
  } else {
    release(id);
  }
  pending_.erase({s.createdAtMs, id});
  s.phase = SandboxPhase::Failed;
  s.message = message;
  s.updatedAtMs = nowUnixMs();
  persist(s);
  postSchedule();  // what it held may let a Pending one fit
}

// ---- status sync ----

void SandboxController::syncStatuses(bool includeRunning) {
  std::map<std::string, std::vector<std::string>> byNode;
  for (const auto& id : accepted_) {
    auto it = sandboxes_.find(id);
    if (it != sandboxes_.end() && it->second.phase == SandboxPhase::Scheduled) {
      byNode[it->second.nodeName].push_back(id);
    }
  }
  if (includeRunning) {
    for (const auto& [id, s] : sandboxes_) {
      if (s.phase == SandboxPhase::Running && !s.nodeName.empty()) byNode[s.nodeName].push_back(id);
    }
  }
  for (auto& [node, ids] : byNode) {
    const OrchNode* n = nodes_.find(node);
    if (!n || n->state == NodeState::NotReady || syncing_.count(node)) continue;
    syncing_.insert(node);
    auto left = std::make_shared<size_t>((ids.size() + kMaxStatusIds - 1) / kMaxStatusIds);
    for (size_t from = 0; from < ids.size(); from += kMaxStatusIds) {
      std::vector<std::string> batch(ids.begin() + static_cast<std::ptrdiff_t>(from),
                                     ids.begin() + static_cast<std::ptrdiff_t>(
                                                       std::min(ids.size(), from + kMaxStatusIds)));
      statusCalls_.push_back(StatusCall{node, std::move(batch), left});
    }
  }
  sendStatusCalls();
}

void SandboxController::sendStatusCalls() {
  for (size_t n = 0; !statusCalls_.empty(); ++n) {
    if (n == kStatusCallsPerTurn) {
      if (!statusCallsPosted_) {
        statusCallsPosted_ = true;
        loop_.postNextTurn([this, alive = std::weak_ptr<bool>(alive_)] {
          if (alive.expired()) return;
          statusCallsPosted_ = false;
          sendStatusCalls();
        });
      }
      return;
    }
    StatusCall call = std::move(statusCalls_.front());
    statusCalls_.pop_front();
    const OrchNode* node = nodes_.find(call.node);
    if (!node) {
      if (--*call.left == 0) syncing_.erase(call.node);
      continue;
    }
    json::JsonWriter w(64 + call.ids.size() * 48);
    w.beginObject().key("ids").beginArray();
    for (const auto& id : call.ids) w.value(id);
    w.endArray().endObject();
    client_.call(nodes_.endpoint(*node), "POST", "/v1/sandboxes/statuses", w.take(),
                 config_.opTimeout,
                 [this, name = call.node, batch = std::move(call.ids), left = call.left,
                  alive = std::weak_ptr<bool>(alive_)](Result<NodeReply> r) {
                   if (alive.expired()) return;
                   if (--*left == 0) syncing_.erase(name);
                   onStatuses(name, batch, std::move(r));
                 });
  }
}

void SandboxController::onStatuses(const std::string& node, const std::vector<std::string>& ids,
                                   Result<NodeReply> reply) {
  (void)ids;
  if (!reply.ok() || reply->status != 200) return;  // the next tick tries again
  json::JsonReader reader;
  auto root = reader.parse(reply->body);
  if (!root.ok()) return;
  root->field({"items"}).forEach([&](const json::JsonCursor& c) {
    std::string id, phase, ip, error;
    c.field({"id"}).get(id);
    c.field({"phase"}).get(phase);
    c.field({"ip"}).get(ip);
    c.field({"error"}).get(error);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return;
    OrchSandbox& s = it->second;
    if (s.nodeName != node ||
        (s.phase != SandboxPhase::Scheduled && s.phase != SandboxPhase::Running)) {
      return;
    }
    bool changed = false;
    if (!ip.empty() && ip != s.ip) {
      s.ip = ip;
      changed = true;
    }
    if (phase == "running" && s.phase == SandboxPhase::Scheduled) {
      s.phase = SandboxPhase::Running;
      s.message.clear();
      accepted_.erase(id);
      changed = true;
    } else if (phase == "error") {
      fail(id, "node " + node + ": " + (error.empty() ? "sandbox failed" : error));
      return;
    }
    if (changed) {
      s.updatedAtMs = nowUnixMs();
      persist(s);
    }
  });
  root->field({"missing"}).forEach([&](const json::JsonCursor& c) {
    std::string id;
    if (!c.get(id)) return;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end() || it->second.nodeName != node) return;
    if (it->second.phase == SandboxPhase::Scheduled || it->second.phase == SandboxPhase::Running) {
      fail(id, "sandbox not found on node " + node, /*nodeHoldsIt=*/false);
    }
  });
}

// ---- delete, ttl ----

void SandboxController::remove(const std::string& id, std::function<void(Result<bool>)> done) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) {
    done(makeError("sandbox not found: " + id, 404));
    return;
  }
  OrchSandbox& s = it->second;
  if (s.phase != SandboxPhase::Expired && s.phase != SandboxPhase::Deleting) {
    s.phase = SandboxPhase::Deleting;
    s.updatedAtMs = nowUnixMs();
  }
  rt(id).deleteWaiters.push_back(std::move(done));
  beginRemoval(id);
}

// Deleting or Expired: written first, then the node, then forgotten.
void SandboxController::beginRemoval(const std::string& id) {
  OrchSandbox& s = sandboxes_.at(id);
  pending_.erase({s.createdAtMs, id});
  accepted_.erase(id);
  persist(s, [this, id, alive = std::weak_ptr<bool>(alive_)](Status st) {
    if (alive.expired()) return;
    if (!st.ok()) {
      auto r = runtime_.find(id);
      if (r == runtime_.end()) return;
      auto waiters = std::move(r->second->deleteWaiters);
      r->second->deleteWaiters.clear();
      for (auto& w : waiters) w(makeError("store: " + st.message(), 500));
      return;
    }
    startNodeDelete(id);
  });
}

void SandboxController::startNodeDelete(const std::string& id) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  OrchSandbox& s = it->second;
  Runtime& r = rt(id);
  if (r.deleteInFlight || r.createInFlight) return;  // the create's reply comes back here
  const OrchNode* node = s.nodeName.empty() ? nullptr : nodes_.find(s.nodeName);
  if (!node) {
    finishRemoval(id);  // never placed, or its node is gone
    return;
  }
  r.deleteInFlight = true;
  r.retry.cancel();
  client_.call(nodes_.endpoint(*node), "DELETE", "/v1/sandboxes/" + id, "", config_.opTimeout,
               [this, id, alive = std::weak_ptr<bool>(alive_)](Result<NodeReply> reply) {
                 if (alive.expired()) return;
                 auto rit = runtime_.find(id);
                 if (rit == runtime_.end()) return;
                 Runtime& r = *rit->second;
                 r.deleteInFlight = false;
                 if (reply.ok() && reply->status >= 200 && reply->status < 300) {
                   finishRemoval(id);
                   return;
                 }
                 // Retry later, then answer the waiting clients (deletion goes
                 // on) last: a waiter may call back into us and free `r`.
                 auto waiters = std::move(r.deleteWaiters);
                 r.deleteWaiters.clear();
                 auto sit = sandboxes_.find(id);
                 if (sit != sandboxes_.end()) {
                   std::string why = reply.ok() ? "HTTP " + std::to_string(reply->status) + ": " +
                                                      errorOf(reply->body)
                                                : reply.message();
                   if (sit->second.message != "delete on node failed, retrying: " + why) {
                     sit->second.message = "delete on node failed, retrying: " + why;
                     persist(sit->second);
                   }
                 }
                 r.backoff = std::min(kMaxBackoff, r.backoff == Duration::zero()
                                                       ? config_.retryBackoff
                                                       : r.backoff * 2);
                 r.retry = loop_.runAfter(r.backoff, [this, id] { startNodeDelete(id); });
                 for (auto& w : waiters) w(false);
               });
}

void SandboxController::finishRemoval(const std::string& id) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  release(id);
  pending_.erase({it->second.createdAtMs, id});
  sandboxes_.erase(it);
  std::vector<std::function<void(Result<bool>)>> waiters;
  if (auto r = runtime_.find(id); r != runtime_.end()) {
    waiters = std::move(r->second->deleteWaiters);
    runtime_.erase(r);  // cancels its timers
  }
  StoreChange c;
  c.kind = StoreChange::Kind::Erase;
  c.collection = "sandboxes";
  c.id = id;
  store_.submit(std::move(c), [waiters = std::move(waiters)](Status st) mutable {
    for (auto& w : waiters) {
      if (st.ok()) {
        w(true);
      } else {
        w(makeError("store: " + st.message(), 500));
      }
    }
  });
  postSchedule();
}

void SandboxController::armTtl(const std::string& id) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end() || it->second.expireAtMs <= 0) return;
  if (it->second.phase == SandboxPhase::Expired || it->second.phase == SandboxPhase::Deleting) return;
  const int64_t left = std::max<int64_t>(0, it->second.expireAtMs - nowUnixMs());
  rt(id).ttl = loop_.runAfter(std::chrono::milliseconds(left), [this, id] { expire(id); });
}

void SandboxController::expire(const std::string& id) {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return;
  OrchSandbox& s = it->second;
  if (s.phase == SandboxPhase::Deleting || s.phase == SandboxPhase::Expired) return;
  s.phase = SandboxPhase::Expired;
  s.expired = true;
  s.message = "expired after ttl_seconds=" + std::to_string(s.ttlSeconds);
  s.updatedAtMs = nowUnixMs();
  beginRemoval(id);
}

// ---- nodes ----

void SandboxController::onNodeChanged(const OrchNode& node, NodeState previous, bool removed) {
  if (removed) return;
  // Reservations the node's latest status already counts.
  if (auto rit = reservations_.find(node.name); rit != reservations_.end()) {
    for (auto r = rit->second.begin(); r != rit->second.end();) {
      if (r->second.acceptedAtMs > 0 && r->second.acceptedAtMs < node.resourcesAsOfMs) {
        r = rit->second.erase(r);
      } else {
        ++r;
      }
    }
  }
  if (node.state != previous) {
    const std::string prefix = "node " + node.name + " is NotReady";
    for (auto& [id, s] : sandboxes_) {
      if (s.nodeName != node.name ||
          (s.phase != SandboxPhase::Scheduled && s.phase != SandboxPhase::Running)) {
        continue;
      }
      if (node.state == NodeState::NotReady) {
        s.message = prefix + ": " + node.lastError;
      } else if (s.message.rfind(prefix, 0) == 0) {
        s.message.clear();
      } else {
        continue;
      }
      s.updatedAtMs = nowUnixMs();
      persist(s);
    }
  }
  if (node.state == NodeState::Ready) postSchedule();
}

void SandboxController::deleteAllOnNode(const std::string& node, std::function<void(Status)> done) {
  std::vector<std::string> ids;
  for (const auto& [id, s] : sandboxes_) {
    if (s.nodeName == node) ids.push_back(id);
  }
  if (ids.empty()) {
    done({});
    return;
  }
  struct Tally {
    size_t left = 0;
    size_t notYet = 0;
    std::function<void(Status)> done;
  };
  auto tally = std::make_shared<Tally>();
  tally->left = ids.size();
  tally->done = std::move(done);
  for (const auto& id : ids) {
    remove(id, [tally, node](Result<bool> r) {
      if (!r.ok() || !*r) ++tally->notYet;
      if (--tally->left > 0) return;
      if (tally->notYet == 0) {
        tally->done({});
      } else {
        tally->done(makeError("could not delete " + std::to_string(tally->notYet) +
                                  " sandbox(es) on node " + node +
                                  " yet (they stay Deleting and are retried); "
                                  "use ?force=true to remove the node anyway",
                              502));
      }
    });
  }
}

void SandboxController::failAllOnNode(const std::string& node, const std::string& message) {
  std::vector<std::string> ids;
  for (const auto& [id, s] : sandboxes_) {
    if (s.nodeName == node) ids.push_back(id);
  }
  for (const auto& id : ids) {
    OrchSandbox& s = sandboxes_.at(id);
    if (s.phase == SandboxPhase::Deleting || s.phase == SandboxPhase::Expired) {
      finishRemoval(id);  // nothing left to delete it on
      continue;
    }
    if (s.phase != SandboxPhase::Failed) fail(id, message, /*nodeHoldsIt=*/false);
  }
  ports_.releaseNode(node);
  reservations_.erase(node);
}

std::string SandboxController::strayOwner(const std::string& id) { return "~stray:" + id; }

// A create that got no answer may have left the sandbox on that node: DELETE
// it there until the node says it is gone (or the node is removed).
void SandboxController::deleteStray(const std::string& node, const std::string& id) {
  auto it = strays_.find({node, id});
  if (it == strays_.end() || it->second) return;  // done, or a DELETE in flight
  const OrchNode* n = nodes_.find(node);
  if (!n) {
    ports_.releaseOwner(strayOwner(id));
    strays_.erase(it);
    return;
  }
  it->second = true;
  client_.call(nodes_.endpoint(*n), "DELETE", "/v1/sandboxes/" + id, "", config_.opTimeout,
               [this, node, id, alive = std::weak_ptr<bool>(alive_)](Result<NodeReply> r) {
                 if (alive.expired()) return;
                 auto it = strays_.find({node, id});
                 if (it == strays_.end()) return;
                 it->second = false;
                 if (r.ok() && r->status >= 200 && r->status < 300) {
                   ports_.releaseOwner(strayOwner(id));
                   strays_.erase(it);
                   postSchedule();
                 }
               });
}

// Pending too long: Failed with the last reason; strays deleted again.
void SandboxController::maintenance() {
  std::vector<std::pair<std::string, std::string>> strays;
  for (const auto& [key, inFlight] : strays_) {
    if (!inFlight) strays.push_back(key);
  }
  for (const auto& [node, id] : strays) deleteStray(node, id);

  const int64_t now = nowUnixMs();
  const int64_t limit =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.pendingTimeout).count();
  std::vector<std::string> late;
  for (const auto& [at, id] : pending_) {
    if (now - at < limit) break;  // ordered by creation
    late.push_back(id);
  }
  for (const auto& id : late) {
    const OrchSandbox& s = sandboxes_.at(id);
    fail(id, "not scheduled within " + std::to_string(limit / 1000) + "s: " + s.message,
         /*nodeHoldsIt=*/false);
  }
  if (!pending_.empty()) postSchedule();  // also catches what no event announced
}

}  // namespace sbx::orch
