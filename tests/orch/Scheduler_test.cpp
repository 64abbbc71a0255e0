#include "orch/Scheduler.h"

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

using namespace sbx;
using namespace sbx::orch;

namespace {

constexpr int64_t kGi = 1LL << 30;

NodeFit readyNode(std::string name, int64_t cpu = 4000, int64_t memory = 8 * kGi) {
  NodeFit n;
  n.name = std::move(name);
  n.ready = true;
  n.state = "Ready";
  n.allocatableCpuMillis = cpu;
  n.allocatableMemoryBytes = memory;
  n.availableCpuMillis = cpu;
  n.availableMemoryBytes = memory;
  return n;
}

PlacementRequest request(int64_t cpu, int64_t memory, std::vector<std::string> protocols = {}) {
  PlacementRequest r;
  r.cpuMillis = cpu;
  r.memoryBytes = memory;
  r.portProtocols = std::move(protocols);
  return r;
}

}  // namespace

TEST_CASE("HostPortBook: book, owner, same-owner rebook, conflicts and range") {
  HostPortBook book(10000, 10009);
  CHECK(book.size() == 0);
  CHECK(book.freeCount("n1", "tcp") == 10);
  CHECK(book.book("n1", 10000, "tcp", "sbx-a"));
  CHECK(book.ownerOf("n1", 10000, "tcp") == "sbx-a");
  CHECK(book.ownerOf("n1", 10000, "udp") == std::nullopt);
  CHECK(book.ownerOf("n2", 10000, "tcp") == std::nullopt);
  CHECK(book.ownerOf("n1", 10001, "tcp") == std::nullopt);
  CHECK(book.freeCount("n1", "tcp") == 9);
  // The same owner again: a no-op.
  CHECK(book.book("n1", 10000, "tcp", "sbx-a"));
  CHECK(book.size() == 1);
  CHECK(book.freeCount("n1", "tcp") == 9);
  // Another owner: refused, nothing changes.
  CHECK_FALSE(book.book("n1", 10000, "tcp", "sbx-b"));
  CHECK(book.ownerOf("n1", 10000, "tcp") == "sbx-a");
  CHECK(book.size() == 1);
  // Out of range.
  CHECK_FALSE(book.book("n1", 9999, "tcp", "sbx-b"));
  CHECK_FALSE(book.book("n1", 10010, "tcp", "sbx-b"));
  CHECK_FALSE(book.book("n1", 0, "tcp", "sbx-b"));
  CHECK(book.size() == 1);
  CHECK(book.freeCount("n1", "tcp") == 9);
  // Another node and another protocol are other spaces.
  CHECK(book.book("n2", 10000, "tcp", "sbx-b"));
  CHECK(book.book("n1", 10000, "udp", "sbx-b"));
  CHECK(book.size() == 3);
  CHECK(book.freeCount("n1", "udp") == 9);
  CHECK(book.freeCount("n2", "tcp") == 9);
  CHECK(book.freeCount("n2", "udp") == 10);
}

TEST_CASE("HostPortBook: tcp and udp are separate spaces") {
  HostPortBook book(10000, 10001);
  REQUIRE(book.book("n1", 10000, "tcp", "a"));
  REQUIRE(book.book("n1", 10001, "tcp", "a"));
  CHECK(book.findFree("n1", {"tcp"}) == std::nullopt);
  CHECK(book.findFree("n1", {"udp"}) == std::vector<int>{10000});
  CHECK(book.findFree("n1", {"udp", "udp"}) == std::vector<int>{10000, 10001});
  CHECK(book.findFree("n1", {"udp", "tcp"}) == std::nullopt);
  CHECK(book.book("n1", 10000, "udp", "b"));
  CHECK(book.ownerOf("n1", 10000, "tcp") == "a");
  CHECK(book.ownerOf("n1", 10000, "udp") == "b");
}

TEST_CASE("HostPortBook: findFree gives the lowest distinct ports per protocol") {
  HostPortBook book(10000, 10100);
  CHECK(book.findFree("n1", {}) == std::vector<int>{});
  CHECK(book.findFree("n1", {"tcp"}) == std::vector<int>{10000});
  CHECK(book.findFree("n1", {"tcp", "tcp", "tcp"}) == std::vector<int>{10000, 10001, 10002});
  // A tcp and a udp entry may share a number: they are different ports.
  CHECK(book.findFree("n1", {"tcp", "udp", "tcp", "udp"}) ==
        std::vector<int>{10000, 10000, 10001, 10001});
  // Holes are filled lowest first, across runs.
  for (int p : {10000, 10001, 10003, 10004, 10006}) REQUIRE(book.book("n1", p, "tcp", "x"));
  CHECK(book.findFree("n1", {"tcp", "tcp", "tcp", "tcp"}) ==
        std::vector<int>{10002, 10005, 10007, 10008});
  CHECK(book.findFree("n1", {"udp", "tcp"}) == std::vector<int>{10000, 10002});
  // findFree books nothing.
  CHECK(book.size() == 5);
  CHECK(book.findFree("n1", {"tcp"}) == std::vector<int>{10002});
}

TEST_CASE("HostPortBook: a one-port range is exhausted by one booking") {
  HostPortBook book(20000, 20000);
  CHECK(book.rangeSize() == 1);
  CHECK(book.findFree("n1", {"tcp"}) == std::vector<int>{20000});
  CHECK(book.findFree("n1", {"tcp", "tcp"}) == std::nullopt);
  REQUIRE(book.book("n1", 20000, "tcp", "a"));
  CHECK(book.freeCount("n1", "tcp") == 0);
  CHECK(book.findFree("n1", {"tcp"}) == std::nullopt);
  CHECK_FALSE(book.book("n1", 20000, "tcp", "b"));
  CHECK(book.findFree("n1", {"udp"}) == std::vector<int>{20000});
  book.releaseOwner("a");
  CHECK(book.findFree("n1", {"tcp"}) == std::vector<int>{20000});
  CHECK(book.freeCount("n1", "tcp") == 1);
}

TEST_CASE("HostPortBook: releaseOwner and releaseNode free the ports again") {
  HostPortBook book(10000, 10009);
  REQUIRE(book.book("n1", 10000, "tcp", "a"));
  REQUIRE(book.book("n1", 10001, "tcp", "b"));
  REQUIRE(book.book("n1", 10002, "udp", "a"));
  REQUIRE(book.book("n2", 10000, "tcp", "a"));
  REQUIRE(book.book("n2", 10001, "tcp", "c"));
  CHECK(book.size() == 5);

  book.releaseOwner("a");
  CHECK(book.size() == 2);
  CHECK(book.ownerOf("n1", 10000, "tcp") == std::nullopt);
  CHECK(book.ownerOf("n1", 10002, "udp") == std::nullopt);
  CHECK(book.ownerOf("n2", 10000, "tcp") == std::nullopt);
  CHECK(book.ownerOf("n1", 10001, "tcp") == "b");
  CHECK(book.findFree("n1", {"tcp", "tcp"}) == std::vector<int>{10000, 10002});
  CHECK(book.freeCount("n1", "udp") == 10);
  book.releaseOwner("a");  // again: nothing
  book.releaseOwner("nobody");
  CHECK(book.size() == 2);
  // Another owner may now take a's ports.
  CHECK(book.book("n2", 10000, "tcp", "d"));

  book.releaseNode("n2");
  CHECK(book.size() == 1);
  CHECK(book.ownerOf("n2", 10000, "tcp") == std::nullopt);
  CHECK(book.ownerOf("n2", 10001, "tcp") == std::nullopt);
  CHECK(book.freeCount("n2", "tcp") == 10);
  // c's and d's only bookings were on n2: releasing them is a no-op now.
  book.releaseOwner("c");
  book.releaseOwner("d");
  CHECK(book.size() == 1);
  CHECK(book.ownerOf("n1", 10001, "tcp") == "b");
  book.releaseNode("n9");
  book.releaseNode("n1");
  CHECK(book.size() == 0);
  CHECK(book.freeCount("n1", "tcp") == 10);
  // b's index entry went with the node: b can book again.
  CHECK(book.book("n1", 10001, "tcp", "b"));
  book.releaseOwner("b");
  CHECK(book.size() == 0);
}

TEST_CASE("HostPortBook: free runs merge back after random book/release") {
  HostPortBook book(1000, 1199);
  std::mt19937 rng(42);
  std::vector<std::string> owner(1200);  // "" = free; the model
  for (int step = 0; step < 20000; ++step) {
    const int port = 1000 + static_cast<int>(rng() % 200);
    const std::string who = "o" + std::to_string(rng() % 30);
    if (rng() % 3 == 0) {
      book.releaseOwner(who);
      for (std::string& o : owner) {
        if (o == who) o.clear();
      }
    } else {
      const bool expected = owner[port].empty() || owner[port] == who;
      CHECK(book.book("n", port, "tcp", who) == expected);
      if (expected) owner[port] = who;
    }
    if (step % 997 == 0) {
      size_t free = 0;
      std::vector<int> lowest;
      for (int p = 1000; p < 1200; ++p) {
        if (owner[p].empty()) {
          ++free;
          if (lowest.size() < 3) lowest.push_back(p);
        }
      }
      CHECK(book.freeCount("n", "tcp") == free);
      CHECK(book.size() == 200 - free);
      if (lowest.size() == 3) {
        CHECK(book.findFree("n", {"tcp", "tcp", "tcp"}) == lowest);
      }
    }
  }
}

TEST_CASE("Scheduler: no nodes") {
  HostPortBook ports(10000, 10009);
  auto r = schedule({}, request(100, 1), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == "no nodes registered");
}

TEST_CASE("Scheduler: a fitting node gets the placement with its lowest free ports") {
  HostPortBook ports(10000, 10009);
  REQUIRE(ports.book("n1", 10000, "tcp", "other"));
  auto r = schedule({readyNode("n1")}, request(1000, kGi, {"tcp", "udp", "tcp"}), ports);
  REQUIRE(r.ok());
  CHECK(r->node == "n1");
  CHECK(r->hostPorts == std::vector<int>{10001, 10000, 10002});
  CHECK(ports.size() == 1);  // nothing booked
  // Exactly the available resources fit.
  r = schedule({readyNode("n1", 1000, kGi)}, request(1000, kGi), ports);
  REQUIRE(r.ok());
  CHECK(r->hostPorts.empty());
}

TEST_CASE("Scheduler: every reason a node does not fit") {
  HostPortBook ports(10000, 10000);
  REQUIRE(ports.book("node-d", 10000, "tcp", "other"));
  NodeFit a = readyNode("node-a");
  a.ready = false;
  a.state = "NotReady";
  NodeFit b = readyNode("node-b");
  b.availableCpuMillis = 500;
  NodeFit c = readyNode("node-c");
  c.availableMemoryBytes = 1024;
  NodeFit d = readyNode("node-d");
  NodeFit e = readyNode("node-e");
  NodeFit f = readyNode("node-f");
  f.ready = false;
  f.state = "Unknown";
  NodeFit g = readyNode("node-g");
  g.availableCpuMillis = 0;
  g.availableMemoryBytes = 0;
  PlacementRequest req = request(2000, 268435456, {"tcp"});
  req.excludedNodes = {"node-e"};
  // Given out of order: the message sorts by name.
  auto r = schedule({g, e, d, c, b, a, f}, req, ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() ==
        "no node fits: node-a: NotReady; node-b: insufficient cpu (requested 2000m, available "
        "500m); node-c: insufficient memory (requested 268435456, available 1024); node-d: not "
        "enough free host ports (tcp); node-e: refused this sandbox; node-f: Unknown; node-g: "
        "insufficient cpu (requested 2000m, available 0m), insufficient memory (requested "
        "268435456, available 0)");
}

TEST_CASE("Scheduler: ports by protocol in the message; an excluded node is never chosen") {
  HostPortBook ports(10000, 10001);
  REQUIRE(ports.book("n1", 10000, "udp", "x"));
  auto r = schedule({readyNode("n1")}, request(1, 1, {"tcp", "udp", "udp"}), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == "no node fits: n1: not enough free host ports (udp)");
  r = schedule({readyNode("n1")}, request(1, 1, {"tcp", "tcp", "tcp", "udp", "udp"}), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == "no node fits: n1: not enough free host ports (tcp, udp)");

  // The excluded node is the emptiest, yet the other one is chosen.
  NodeFit busy = readyNode("busy");
  busy.availableCpuMillis = 1000;
  PlacementRequest req = request(100, 1);
  req.excludedNodes = {"empty"};
  r = schedule({readyNode("empty"), busy}, req, ports);
  REQUIRE(r.ok());
  CHECK(r->node == "busy");
  // A node not ready with state "" or a stale "Ready" still reads well.
  NodeFit odd = readyNode("odd");
  odd.ready = false;
  odd.state = "";
  r = schedule({odd}, request(1, 1), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == "no node fits: odd: not ready");
}

TEST_CASE("Scheduler: the least allocated node after placement wins") {
  HostPortBook ports(10000, 10009);
  // a: half its cpu and a quarter of its memory in use.
  NodeFit a = readyNode("a", 4000, 8 * kGi);
  a.availableCpuMillis = 2000;
  a.availableMemoryBytes = 6 * kGi;
  // b: bigger, but busier after the placement.
  NodeFit b = readyNode("b", 16000, 16 * kGi);
  b.availableCpuMillis = 4000;
  b.availableMemoryBytes = 8 * kGi;
  // c: small and empty, but the request is a large share of it.
  NodeFit c = readyNode("c", 2000, 2 * kGi);
  // Scores for 1000m/1Gi: a = (0.75 + 0.375)/2 = 0.5625; b = (0.8125 + 0.5625)/2 = 0.6875;
  // c = (0.5 + 0.5)/2 = 0.5.
  auto r = schedule({a, b, c}, request(1000, kGi), ports);
  REQUIRE(r.ok());
  CHECK(r->node == "c");
  // With c gone, a.
  r = schedule({b, a}, request(1000, kGi), ports);
  REQUIRE(r.ok());
  CHECK(r->node == "a");
  // The best node without ports loses to the next one.
  HostPortBook full(10000, 10000);
  REQUIRE(full.book("c", 10000, "tcp", "x"));
  r = schedule({a, b, c}, request(1000, kGi, {"tcp"}), full);
  REQUIRE(r.ok());
  CHECK(r->node == "a");
  CHECK(r->hostPorts == std::vector<int>{10000});
}

TEST_CASE("Scheduler: equal scores go to the first name") {
  HostPortBook ports(10000, 10009);
  auto r = schedule({readyNode("node-c"), readyNode("node-a"), readyNode("node-b")},
                    request(1000, kGi), ports);
  REQUIRE(r.ok());
  CHECK(r->node == "node-a");
}

TEST_CASE("Scheduler: allocatable 0 counts as fully allocated") {
  HostPortBook ports(10000, 10009);
  NodeFit zero = readyNode("a-zero");
  zero.allocatableCpuMillis = 0;  // unknown capacity, yet claims some available
  NodeFit normal = readyNode("b-normal");
  normal.availableCpuMillis = 3000;
  // a-zero: (1 + 0.125) / 2 = 0.5625; b-normal: (0.25 + 0.125) / 2 = 0.1875.
  auto r = schedule({zero, normal}, request(0, kGi), ports);
  REQUIRE(r.ok());
  CHECK(r->node == "b-normal");
}

TEST_CASE("Scheduler: bad requests") {
  HostPortBook ports(10000, 10009);
  auto r = schedule({readyNode("n")}, request(-1, 0), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == "invalid placement request: cpu and memory must not be negative");
  // More ports than the range holds: no node fits.
  r = schedule({readyNode("n")}, request(1, 1, std::vector<std::string>(11, "tcp")), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == "no node fits: n: not enough free host ports (tcp)");
}

TEST_CASE("Scheduler: the message lists at most 10 nodes") {
  HostPortBook ports(10000, 10009);
  std::vector<NodeFit> nodes;
  for (int i = 0; i < 25; ++i) {
    NodeFit n = readyNode("node-" + std::string(i < 10 ? "0" : "") + std::to_string(i));
    n.ready = false;
    n.state = "NotReady";
    nodes.push_back(n);
  }
  auto r = schedule(nodes, request(1, 1), ports);
  REQUIRE_FALSE(r.ok());
  std::string expected = "no node fits: ";
  for (int i = 0; i < 10; ++i) {
    if (i > 0) expected += "; ";
    expected += "node-0" + std::to_string(i) + ": NotReady";
  }
  expected += "; ... and 15 more";
  CHECK(r.message() == expected);
  nodes.resize(10);
  r = schedule(nodes, request(1, 1), ports);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message().find("more") == std::string::npos);
}

TEST_CASE("HostPortBook: findFree stays fast with many bookings") {
  HostPortBook book(10000, 65535);
  // 20,000 bookings with holes all over the range: many free runs.
  std::mt19937 rng(7);
  int booked = 0;
  for (int p = 10000; booked < 20000; ++p) {
    if (rng() % 5 != 0) {
      REQUIRE(book.book("n1", p, "tcp", "sbx-" + std::to_string(booked / 2)));
      ++booked;
    }
  }
  CHECK(book.size() == 20000);
  const std::vector<std::string> protocols = {"tcp", "tcp", "tcp", "udp"};
  const auto start = std::chrono::steady_clock::now();
  size_t sum = 0;
  for (int i = 0; i < 10000; ++i) {
    auto found = book.findFree("n1", protocols);
    REQUIRE(found.has_value());
    sum += static_cast<size_t>((*found)[0]);
    // Move the low end around so that no answer is cached.
    if (i % 2 == 0) {
      REQUIRE(book.book("n1", (*found)[0], "tcp", "churn"));
    } else {
      book.releaseOwner("churn");
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(sum > 0);
  MESSAGE("findFree with 20000 bookings: " << static_cast<long long>(10000 / seconds)
                                           << " calls/s");
  CHECK(seconds < 0.5);
}

TEST_CASE("Scheduler: 10,000 placements on 100 nodes") {
  HostPortBook ports(10000, 32767);
  std::vector<NodeFit> nodes;
  for (int i = 0; i < 100; ++i) {
    nodes.push_back(readyNode("node-" + std::to_string(i), 64000, 256 * kGi));
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) {
    PlacementRequest req = request(500, 512LL << 20, {"tcp", "tcp"});
    auto r = schedule(nodes, req, ports);
    REQUIRE(r.ok());
    const std::string owner = "sbx-" + std::to_string(i);
    for (size_t k = 0; k < r->hostPorts.size(); ++k) {
      REQUIRE(ports.book(r->node, r->hostPorts[k], req.portProtocols[k], owner));
    }
    for (NodeFit& n : nodes) {
      if (n.name == r->node) {
        n.availableCpuMillis -= req.cpuMillis;
        n.availableMemoryBytes -= req.memoryBytes;
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("schedule + book: " << static_cast<long long>(10000 / seconds) << " placements/s");
  CHECK(seconds < 10.0);  // >= 1,000 placements/s
  CHECK(ports.size() == 20000);
  // Least allocated spreads them evenly: 100 per node, 64000m - 100 * 500m left.
  for (const NodeFit& n : nodes) {
    CAPTURE(n.name);
    CHECK(n.availableCpuMillis == 14000);
    CHECK(ports.freeCount(n.name, "tcp") == ports.rangeSize() - 200);
  }
}
