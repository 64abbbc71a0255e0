#include "orch/Scheduler.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <utility>

namespace sbx::orch {

// ---------------------------------------------------------------------------
// HostPortBook

HostPortBook::HostPortBook(int minPort, int maxPort) : minPort_(minPort), maxPort_(maxPort) {
  if (minPort < 1 || maxPort > 65535 || minPort > maxPort) std::abort();
}

const HostPortBook::Space* HostPortBook::findSpace(std::string_view node,
                                                   std::string_view protocol) const {
  auto n = spaces_.find(node);
  if (n == spaces_.end()) return nullptr;
  auto p = n->second.find(protocol);
  return p == n->second.end() ? nullptr : &p->second;
}

bool HostPortBook::book(const std::string& node, int port, const std::string& protocol,
                        const std::string& owner) {
  if (port < minPort_ || port > maxPort_) return false;
  auto n = spaces_.find(node);
  if (n != spaces_.end()) {
    auto p = n->second.find(protocol);
    if (p != n->second.end()) {
      auto o = p->second.owners.find(port);
      if (o != p->second.owners.end()) return o->second == owner;
    }
  } else {
    n = spaces_.emplace(node, NodeSpaces()).first;
  }
  auto [p, created] = n->second.try_emplace(protocol);
  Space& space = p->second;
  if (created) {
    // A space is stored only while it has bookings; until then it is all
    // free.
    space.freeRuns.emplace(minPort_, maxPort_);
    space.freeCount = rangeSize();
  }

  // The run holding `port`: the last one starting at or before it (the port
  // is free, so there is one).
  auto run = std::prev(space.freeRuns.upper_bound(port));
  const int first = run->first;
  const int last = run->second;
  if (first == port) {
    space.freeRuns.erase(run);
    if (last > port) space.freeRuns.emplace(port + 1, last);
  } else {
    run->second = port - 1;
    if (last > port) space.freeRuns.emplace(port + 1, last);
  }
  --space.freeCount;
  space.owners.emplace(port, owner);
  byOwner_[owner].insert(Booking{node, protocol, port});
  ++size_;
  return true;
}

void HostPortBook::freePort(Space& space, int port) {
  // Merge with the runs on either side so that runs stay maximal: findFree
  // then touches at most one run per port it returns.
  auto next = space.freeRuns.upper_bound(port);
  const bool joinsNext = next != space.freeRuns.end() && next->first == port + 1;
  auto prev = next == space.freeRuns.begin() ? space.freeRuns.end() : std::prev(next);
  const bool joinsPrev = prev != space.freeRuns.end() && prev->second == port - 1;
  if (joinsPrev && joinsNext) {
    prev->second = next->second;
    space.freeRuns.erase(next);
  } else if (joinsPrev) {
    prev->second = port;
  } else if (joinsNext) {
    const int last = next->second;
    space.freeRuns.erase(next);
    space.freeRuns.emplace(port, last);
  } else {
    space.freeRuns.emplace(port, port);
  }
  ++space.freeCount;
  space.owners.erase(port);
}

void HostPortBook::releaseOwner(const std::string& owner) {
  auto o = byOwner_.find(owner);
  if (o == byOwner_.end()) return;
  for (const Booking& b : o->second) {
    auto n = spaces_.find(b.node);
    if (n == spaces_.end()) continue;  // cannot happen: the index mirrors spaces_
    auto p = n->second.find(b.protocol);
    if (p == n->second.end()) continue;
    freePort(p->second, b.port);
    --size_;
    if (p->second.owners.empty()) n->second.erase(p);
    if (n->second.empty()) spaces_.erase(n);
  }
  byOwner_.erase(o);
}

void HostPortBook::releaseNode(const std::string& node) {
  auto n = spaces_.find(node);
  if (n == spaces_.end()) return;
  for (const auto& [protocol, space] : n->second) {
    for (const auto& [port, owner] : space.owners) {
      auto o = byOwner_.find(owner);
      if (o == byOwner_.end()) continue;
      o->second.erase(Booking{node, protocol, port});
      if (o->second.empty()) byOwner_.erase(o);
      --size_;
    }
  }
  spaces_.erase(n);
}

std::optional<std::string> HostPortBook::ownerOf(const std::string& node, int port,
                                                 const std::string& protocol) const {
  const Space* space = findSpace(node, protocol);
  if (space == nullptr) return std::nullopt;
  auto o = space->owners.find(port);
  if (o == space->owners.end()) return std::nullopt;
  return o->second;
}

size_t HostPortBook::freeCount(const std::string& node, const std::string& protocol) const {
  const Space* space = findSpace(node, protocol);
  return space == nullptr ? rangeSize() : space->freeCount;
}

std::optional<std::vector<int>> HostPortBook::findFree(
    const std::string& node, const std::vector<std::string>& protocols) const {
  std::vector<int> out(protocols.size(), 0);
  std::vector<bool> done(protocols.size(), false);
  // One pass per distinct protocol (a sandbox has few): hand that space's
  // free ports, lowest first, to its entries in request order.
  for (size_t i = 0; i < protocols.size(); ++i) {
    if (done[i]) continue;
    const Space* space = findSpace(node, protocols[i]);
    std::map<int, int>::const_iterator run;
    int port = minPort_;
    int runLast = maxPort_;
    if (space != nullptr) {
      run = space->freeRuns.begin();
      if (run == space->freeRuns.end()) return std::nullopt;
      port = run->first;
      runLast = run->second;
    }
    for (size_t j = i; j < protocols.size(); ++j) {
      if (done[j] || protocols[j] != protocols[i]) continue;
      if (port > runLast) {
        if (space == nullptr || ++run == space->freeRuns.end()) return std::nullopt;
        port = run->first;
        runLast = run->second;
      }
      out[j] = port++;
      done[j] = true;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// schedule

namespace {

constexpr size_t kMaxNodesInMessage = 10;

// The share of `allocatable` in use once `requested` is placed.
double usedShare(int64_t allocatable, int64_t available, int64_t requested) {
  if (allocatable <= 0) return 1.0;
  const double used = static_cast<double>(allocatable) - static_cast<double>(available) +
                      static_cast<double>(requested);
  return used / static_cast<double>(allocatable);
}

struct ProtocolNeed {
  const std::string* protocol;  // in the request
  size_t count = 0;
};

}  // namespace

Result<Placement> schedule(const std::vector<NodeFit>& nodes, const PlacementRequest& request,
                           const HostPortBook& ports) {
  if (request.cpuMillis < 0 || request.memoryBytes < 0) {
    return Error("invalid placement request: cpu and memory must not be negative");
  }
  if (nodes.empty()) return Error("no nodes registered");

  std::vector<ProtocolNeed> needs;
  for (const std::string& protocol : request.portProtocols) {
    auto it = std::find_if(needs.begin(), needs.end(),
                           [&](const ProtocolNeed& n) { return *n.protocol == protocol; });
    if (it == needs.end()) {
      needs.push_back(ProtocolNeed{&protocol, 1});
    } else {
      ++it->count;
    }
  }

  auto resourcesFit = [&](const NodeFit& n) {
    return n.ready && request.excludedNodes.count(n.name) == 0 &&
           n.availableCpuMillis >= request.cpuMillis &&
           n.availableMemoryBytes >= request.memoryBytes;
  };
  auto portsFit = [&](const NodeFit& n) {
    for (const ProtocolNeed& need : needs) {
      if (ports.freeCount(n.name, *need.protocol) < need.count) return false;
    }
    return true;
  };

  const NodeFit* best = nullptr;
  double bestScore = 0;
  for (const NodeFit& n : nodes) {
    if (!resourcesFit(n)) continue;
    const double score =
        (usedShare(n.allocatableCpuMillis, n.availableCpuMillis, request.cpuMillis) +
         usedShare(n.allocatableMemoryBytes, n.availableMemoryBytes, request.memoryBytes)) /
        2;
    if (best != nullptr && (score > bestScore || (score == bestScore && n.name >= best->name))) {
      continue;
    }
    // Ports last: the cheap checks above rule most nodes out first.
    if (!portsFit(n)) continue;
    best = &n;
    bestScore = score;
  }
  if (best != nullptr) {
    std::optional<std::vector<int>> found = ports.findFree(best->name, request.portProtocols);
    // freeCount said there are enough; findFree agrees by construction.
    if (!found) return Error("internal error: host ports of " + best->name + " disappeared");
    return Placement{best->name, std::move(*found)};
  }

  // Nothing fits: say why for each node, in name order.
  std::vector<const NodeFit*> sorted;
  sorted.reserve(nodes.size());
  for (const NodeFit& n : nodes) sorted.push_back(&n);
  std::sort(sorted.begin(), sorted.end(),
            [](const NodeFit* a, const NodeFit* b) { return a->name < b->name; });
  std::string message = "no node fits: ";
  const size_t shown = std::min(sorted.size(), kMaxNodesInMessage);
  for (size_t i = 0; i < shown; ++i) {
    const NodeFit& n = *sorted[i];
    if (i > 0) message += "; ";
    message += n.name + ": ";
    if (request.excludedNodes.count(n.name) != 0) {
      message += "refused this sandbox";
      continue;
    }
    if (!n.ready) {
      message += n.state.empty() || n.state == "Ready" ? "not ready" : n.state;
      continue;
    }
    const bool cpuShort = n.availableCpuMillis < request.cpuMillis;
    const bool memoryShort = n.availableMemoryBytes < request.memoryBytes;
    if (cpuShort) {
      message += "insufficient cpu (requested " + std::to_string(request.cpuMillis) +
                 "m, available " + std::to_string(n.availableCpuMillis) + "m)";
    }
    if (memoryShort) {
      if (cpuShort) message += ", ";
      message += "insufficient memory (requested " + std::to_string(request.memoryBytes) +
                 ", available " + std::to_string(n.availableMemoryBytes) + ")";
    }
    if (cpuShort || memoryShort) continue;
    std::string lacking;
    for (const ProtocolNeed& need : needs) {
      if (ports.freeCount(n.name, *need.protocol) >= need.count) continue;
      if (!lacking.empty()) lacking += ", ";
      lacking += *need.protocol;
    }
    message += "not enough free host ports (" + lacking + ")";
  }
  if (sorted.size() > shown) {
    message += "; ... and " + std::to_string(sorted.size() - shown) + " more";
  }
  return Error(std::move(message));
}

}  // namespace sbx::orch
