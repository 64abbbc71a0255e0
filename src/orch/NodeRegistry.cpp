#include "orch/NodeRegistry.h"

#include <algorithm>

#include "json/JsonReader.h"
#include "orch/StoreWriter.h"

namespace sbx::orch {

NodeRegistry::NodeRegistry(EventLoop& loop, NodeClient& client, StoreWriter& store,
                           NodeRegistryConfig config)
    : loop_(loop), client_(client), store_(store), config_(config) {}

NodeRegistry::~NodeRegistry() { *alive_ = false; }

void NodeRegistry::load(std::vector<OrchNode> nodes) {
  for (auto& n : nodes) {
    runtime_[n.name].generation = nextGeneration_++;
    // Resources read before the restart are history: nothing is scheduled
    // on a node until it answers again.
    n.resourcesAsOfMs = 0;
    std::string name = n.name;
    nodes_[name] = std::move(n);
  }
}

void NodeRegistry::start() {
  // Every node at once at start (Ready soonest); then each interval is cut
  // into slices and a node is probed in the slice its name hashes to, so a
  // hundred nodes are not probed in one loop turn (bench/scale.sh: 25 ms).
  for (const auto& [name, n] : nodes_) probe(name, nullptr);
  const int64_t slices =
      std::clamp<int64_t>(config_.heartbeatInterval / std::chrono::milliseconds(50), 1, 10);
  timer_ = loop_.runEvery(config_.heartbeatInterval / slices, [this, slices] {
    const uint64_t slice = beatTick_++ % static_cast<uint64_t>(slices);
    for (const auto& [name, n] : nodes_) {
      if (std::hash<std::string>{}(name) % static_cast<uint64_t>(slices) != slice) continue;
      if (!runtime_[name].probing) probe(name, nullptr);
    }
  });
}

void NodeRegistry::stop() { timer_.cancel(); }

const OrchNode* NodeRegistry::find(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

void NodeRegistry::persist(const OrchNode& n) {
  StoreChange c;
  c.kind = StoreChange::Kind::Put;
  c.collection = "nodes";
  c.id = n.name;
  c.doc = encodeNodeDoc(n);
  store_.submit(std::move(c), [name = n.name](Status st) {
    (void)name;
    (void)st;  // a failed heartbeat write is superseded by the next one
  });
}

void NodeRegistry::upsert(const std::string& name, const std::string& ip, int port,
                          const std::string& source, const std::string& external,
                          std::function<void(Result<const OrchNode*>)> done) {
  const int64_t now = nowUnixMs();
  auto it = nodes_.find(name);
  OrchNode n;
  NodeState previous = NodeState::Unknown;
  if (it != nodes_.end()) {
    n = it->second;
    previous = n.state;
  } else {
    n.name = name;
    n.createdAtMs = now;
  }
  if (n.ip != ip || n.port != port) {
    // Another address is another machine until it proves otherwise.
    n.state = NodeState::Unknown;
    n.successStreak = 0;
    n.failureStreak = 0;
    n.resources = NodeResources{};
    n.resourcesAsOfMs = 0;
    n.lastError.clear();
    runtime_[name].generation = nextGeneration_++;
    runtime_[name].probing = false;
  } else if (!runtime_.count(name)) {
    runtime_[name].generation = nextGeneration_++;
  }
  n.ip = ip;
  n.port = port;
  n.source = source;
  n.configExternal = external;
  n.updatedAtMs = now;
  StoreChange c;
  c.kind = StoreChange::Kind::Put;
  c.collection = "nodes";
  c.id = name;
  c.doc = encodeNodeDoc(n);
  nodes_[name] = n;
  if (listener_) listener_(nodes_[name], previous, false);
  store_.submit(std::move(c), [this, name, done = std::move(done),
                               alive = std::weak_ptr<bool>(alive_)](Status st) {
    if (alive.expired()) return;
    if (!st.ok()) {
      done(makeError("store: " + st.message(), 500));
      return;
    }
    auto it = nodes_.find(name);
    if (it == nodes_.end()) {
      done(makeError("node removed meanwhile: " + name, 409));
      return;
    }
    done(&it->second);
    if (!runtime_[name].probing) probe(name, nullptr);
  });
}

void NodeRegistry::remove(const std::string& name, std::function<void(Status)> done) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) {
    done(makeError("node not found: " + name, 404));
    return;
  }
  OrchNode gone = std::move(it->second);
  nodes_.erase(it);
  // Whoever waits on a probe of this node gets an answer now: the probe's
  // own reply will find the node gone and say nothing.
  std::vector<std::function<void(const HeartbeatOutcome&)>> waiters;
  if (auto rit = runtime_.find(name); rit != runtime_.end())
    waiters = std::move(rit->second.waiters);
  runtime_.erase(name);
  HeartbeatOutcome removed;
  removed.heartbeatError = "node removed";
  removed.statusError = "node removed";
  for (auto& w : waiters) w(removed);
  StoreChange c;
  c.kind = StoreChange::Kind::Erase;
  c.collection = "nodes";
  c.id = name;
  if (listener_) listener_(gone, gone.state, true);
  store_.submit(std::move(c), [done = std::move(done)](Status st) {
    if (!st.ok()) {
      done(makeError("store: " + st.message(), 500));
      return;
    }
    done({});
  });
}

void NodeRegistry::heartbeat(const std::string& name,
                             std::function<void(const HeartbeatOutcome&)> done) {
  if (!nodes_.count(name)) return;
  Runtime& rt = runtime_[name];
  if (rt.probing) {
    rt.waiters.push_back(std::move(done));  // joins the probe in flight
    return;
  }
  probe(name, std::move(done));
}

void NodeRegistry::probe(const std::string& name,
                         std::function<void(const HeartbeatOutcome&)> done) {
  const OrchNode& n = nodes_.at(name);
  Runtime& rt = runtime_[name];
  rt.probing = true;
  if (done) rt.waiters.push_back(std::move(done));
  const uint64_t generation = rt.generation;
  const NodeEndpoint ep = endpoint(n);
  auto alive = std::weak_ptr<bool>(alive_);
  client_.call(
      ep, "GET", "/healthz", "", config_.probeTimeout,
      [this, name, generation, ep, alive](Result<NodeReply> health) {
        if (alive.expired()) return;
        HeartbeatOutcome out;
        if (!health.ok()) {
          out.heartbeatError = health.message();
        } else if (health->status != 200) {
          out.heartbeatError = "healthz: HTTP " + std::to_string(health->status);
        }
        if (!out.heartbeatError.empty()) {
          out.statusError = "not tried";
          finishProbe(name, generation, out, {}, 0);
          return;
        }
        const int64_t requestedAt = nowUnixMs();
        client_.call(ep, "GET", "/v1/node/status", "", config_.probeTimeout,
                     [this, name, generation, requestedAt, alive](Result<NodeReply> status) {
                       if (alive.expired()) return;
                       HeartbeatOutcome out;
                       NodeResources res;
                       if (!status.ok()) {
                         out.statusError = status.message();
                       } else if (status->status != 200) {
                         out.statusError = "status: HTTP " + std::to_string(status->status) +
                                           (status->status == 401 ? " (wrong shared secret?)" : "");
                       } else {
                         json::JsonReader reader;
                         auto root = reader.parse(status->body);
                         if (!root.ok()) {
                           out.statusError = "status: " + root.message();
                         } else {
                           auto r = decodeNodeResources(root->field({"resources"}), reader);
                           if (!r.ok()) {
                             out.statusError = "status: " + r.message();
                           } else {
                             res = *r;
                           }
                         }
                       }
                       out.ok = out.statusError.empty();
                       finishProbe(name, generation, out, res, requestedAt);
                     });
      },
      /*authenticated=*/false);
}

void NodeRegistry::finishProbe(const std::string& name, uint64_t generation, HeartbeatOutcome out,
                               NodeResources resources, int64_t requestedAtMs) {
  auto rit = runtime_.find(name);
  auto nit = nodes_.find(name);
  if (rit == runtime_.end() || nit == nodes_.end() || rit->second.generation != generation) {
    return;  // removed or re-registered meanwhile
  }
  Runtime& rt = rit->second;
  OrchNode& n = nit->second;
  rt.probing = false;
  const NodeState previous = n.state;
  const int64_t now = nowUnixMs();
  n.lastHeartbeatMs = now;
  n.updatedAtMs = now;
  if (out.ok) {
    n.successStreak += 1;
    n.failureStreak = 0;
    n.lastError.clear();
    n.resources = resources;
    n.resourcesAsOfMs = requestedAtMs;
    if (n.successStreak >= config_.readySuccessThreshold) n.state = NodeState::Ready;
  } else {
    n.failureStreak += 1;
    n.successStreak = 0;
    n.lastError = !out.heartbeatError.empty() ? out.heartbeatError : out.statusError;
    if (n.failureStreak >= config_.notReadyFailureThreshold) n.state = NodeState::NotReady;
  }
  persist(n);
  auto waiters = std::move(rt.waiters);
  rt.waiters.clear();
  if (listener_) listener_(n, previous, false);
  for (auto& w : waiters) w(out);
}

}  // namespace sbx::orch
