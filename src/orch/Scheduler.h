#pragma once
// Scheduler: where a sandbox goes (SPEC §2 "Control-plane sandboxes"): a
// Ready node whose available resources fit the sandbox, with a free host
// port on that node for each of its ports.
//
// Pure logic, no I/O: the caller (the control plane's sandbox controller)
// owns the node view, the resource reservations and the HostPortBook, asks
// schedule() for a placement, and books what it returns atomically in the
// same loop turn, so nothing is ever double-booked.
//
// Not thread-safe: one loop thread owns a HostPortBook.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/Result.h"

namespace sbx::orch {

// The scheduler's view of one node.
struct NodeFit {
  std::string name;
  bool ready = false;
  std::string state;  // "Ready", "NotReady", "Unknown" (for messages)
  int64_t allocatableCpuMillis = 0, allocatableMemoryBytes = 0;
  // Already net of the caller's reservations.
  int64_t availableCpuMillis = 0, availableMemoryBytes = 0;
};

struct PlacementRequest {
  int64_t cpuMillis = 0, memoryBytes = 0;
  std::vector<std::string> portProtocols;  // one per port to assign: "tcp" or "udp"
  std::set<std::string> excludedNodes;     // nodes that refused this sandbox already
};

struct Placement {
  std::string node;
  std::vector<int> hostPorts;  // hostPorts[i] for portProtocols[i]
};

// Which (node, port, protocol) is booked by which sandbox ("owner"), within
// one host port range [minPort, maxPort]. Each (node, protocol) is its own
// port space: 10000/tcp and 10000/udp on one node are two bookings, as they
// are on the node (net::PortTable).
//
// Complexity, with B bookings in all and b in the (node, protocol) space at
// hand: book, ownerOf, freeCount and the release of one port cost
// O(log B) (freeCount O(log nodes)); findFree for k ports costs
// O(log nodes + k) whatever b is: each (node, protocol) keeps its free ports
// as an ordered set of free runs [first, last], so the lowest free ports
// are read off its front, never found by scanning booked ones.
// releaseOwner costs O(n log B) for the owner's n bookings, releaseNode
// O(b log B) for the node's. Memory is O(B): a space with no bookings is
// not stored (it is all free).
class HostPortBook {
 public:
  // 1 <= minPort <= maxPort <= 65535 (the configuration guarantees it);
  // anything else is a programming error and aborts.
  HostPortBook(int minPort, int maxPort);

  // Books (node, port, protocol) for `owner`. false, and nothing changes, if
  // another owner holds it or port is outside [minPort, maxPort]. Booking
  // again by the same owner is a no-op that returns true.
  bool book(const std::string& node, int port, const std::string& protocol,
            const std::string& owner);
  // Frees every booking of `owner` (none: no-op).
  void releaseOwner(const std::string& owner);
  // Frees every booking on `node`, whoever owns it (none: no-op).
  void releaseNode(const std::string& node);

  // The owner of (node, port, protocol), or std::nullopt when it is free.
  std::optional<std::string> ownerOf(const std::string& node, int port,
                                     const std::string& protocol) const;
  // Free ports of the (node, protocol) space.
  size_t freeCount(const std::string& node, const std::string& protocol) const;
  // The lowest free ports for `protocols` on `node`, without booking:
  // result[i] is for protocols[i]; ports of one protocol are distinct and
  // ascending in request order (the same port may serve a tcp and a udp
  // entry). std::nullopt if some protocol lacks free ports. An empty list
  // gives an empty vector.
  std::optional<std::vector<int>> findFree(const std::string& node,
                                           const std::vector<std::string>& protocols) const;
  size_t size() const { return size_; }  // bookings

  int minPort() const { return minPort_; }
  int maxPort() const { return maxPort_; }
  size_t rangeSize() const { return static_cast<size_t>(maxPort_ - minPort_ + 1); }

 private:
  // One (node, protocol): its free ports as disjoint, non-adjacent runs and
  // its booked ports with their owners.
  struct Space {
    std::map<int, int> freeRuns;  // first port -> last port of a free run
    std::unordered_map<int, std::string> owners;
    size_t freeCount = 0;
  };
  // node -> protocol -> space. std::less<> so lookups take the caller's
  // strings without copying them.
  using NodeSpaces = std::map<std::string, Space, std::less<>>;
  struct Booking {
    std::string node;
    std::string protocol;
    int port = 0;
    auto operator<=>(const Booking&) const = default;
  };

  const Space* findSpace(std::string_view node, std::string_view protocol) const;
  // Marks `port` free in `space` (it is booked there).
  static void freePort(Space& space, int port);

  int minPort_;
  int maxPort_;
  std::map<std::string, NodeSpaces, std::less<>> spaces_;
  std::unordered_map<std::string, std::set<Booking>> byOwner_;
  size_t size_ = 0;
};

// Picks a node for `request`: ready, not in excludedNodes, available cpu and
// memory >= the request, and a free host port for every entry of
// portProtocols. Among the nodes that fit, the least allocated after the
// placement wins:
//   score = ((allocCpu - availCpu + reqCpu) / allocCpu
//            + (allocMem - availMem + reqMem) / allocMem) / 2
// (doubles; an allocatable of 0 counts as fully allocated, a term of 1),
// lowest score first, ties by node name. The ports are the node's lowest
// free ones (HostPortBook::findFree), found but NOT booked.
//
// Errors say why no node fits:
//   no nodes registered
//   no node fits: node-a: NotReady; node-b: insufficient cpu (requested
//   2000m, available 500m); node-c: insufficient memory (requested
//   268435456, available 1024); node-d: not enough free host ports (tcp);
//   node-e: refused this sandbox
// Nodes in name order, one reason each (cpu and memory both when both fall
// short), at most 10 listed, then "; ... and N more". A negative cpu or
// memory request is "invalid placement request: ...".
//
// O(nodes * (log nodes + distinct protocols)) plus one findFree; no
// allocation per node on success.
Result<Placement> schedule(const std::vector<NodeFit>& nodes, const PlacementRequest& request,
                           const HostPortBook& ports);

}  // namespace sbx::orch
