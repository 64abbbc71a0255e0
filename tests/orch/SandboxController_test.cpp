// SandboxController end to end on one real EventLoop: a SQLite store on a
// temp dir behind a StoreWriter (2 worker threads), the real HttpClient,
// NodeClient and NodeRegistry, and FakeNodes (in-process sbxlets) on
// 127.0.0.1:0. Heartbeats every 50 ms and status syncs every 20 ms keep the
// suite fast; every wait is on a condition with a deadline.

#include "orch/SandboxController.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../TestUtil.h"
#include "FakeNode.h"
#include "http/HttpClient.h"
#include "json/JsonReader.h"
#include "orch/NodeClient.h"
#include "orch/NodeRegistry.h"
#include "orch/SqliteStore.h"
#include "orch/StoreWriter.h"
#include "reactor/WorkerPool.h"

using namespace sbx;
using namespace sbx::orch;
using namespace std::chrono_literals;
using sbx::test::FakeNode;
using sbx::test::why;
namespace fs = std::filesystem;

namespace {

constexpr char kSecret[] = "node-secret";

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("sbx-controller-test") {}
};

// A control-plane sandbox as OrchApi builds it: the spec decoded from the
// API's snake_case, host ports to be assigned, one 100m/64Mi container.
OrchSandbox sandbox(const std::string& id, std::vector<std::string> portProtocols = {"tcp"},
                    const std::string& cpu = "100m") {
  std::string ports;
  for (size_t i = 0; i < portProtocols.size(); ++i) {
    if (i) ports += ",";
    ports += R"({"container_port":)" + std::to_string(80 + i) + R"(,"protocol":")" +
             portProtocols[i] + "\"}";
  }
  const std::string spec = R"({"ports":[)" + ports +
                           R"(],"containers":[{"name":"web","image":"nginx:latest",)"
                           R"("resource":{"cpu":")" +
                           cpu + R"(","memory":"64Mi"}}]})";
  json::JsonReader reader;
  auto root = reader.parse(spec);
  REQUIRE(root.ok());
  node::SandboxSpecOptions opts;
  opts.readId = false;
  opts.allowUnassignedHostPorts = true;
  auto decoded = node::decodeSandboxSpec(*root, reader, opts);
  REQUIRE_MESSAGE(decoded.ok(), why(decoded));
  OrchSandbox s;
  s.id = id;
  s.spec = std::move(*decoded);
  s.spec.id = id;
  s.createdAtMs = s.updatedAtMs = nowUnixMs();
  return s;
}

std::string padded(int i) {
  std::string n = std::to_string(i);
  return "sbx-" + std::string(3 - std::min<size_t>(3, n.size()), '0') + n;
}

// The control plane, as sandboxd-o wires it, over a store file that outlives
// it (so a test can restart it).
struct ControlPlane {
  EventLoop& loop;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<StoreWriter> writer;
  std::unique_ptr<http::HttpClient> http;
  std::unique_ptr<NodeClient> client;
  std::unique_ptr<NodeRegistry> registry;
  std::unique_ptr<SandboxController> controller;
  // Every notification the registry sent, with the loop turn it came in.
  struct NodeEvent {
    std::string node;
    NodeState state;
    uint64_t turn;
  };
  std::vector<NodeEvent> nodeEvents;

  ControlPlane(EventLoop& l, const std::string& dbPath, SandboxControllerConfig config) : loop(l) {
    pool = std::make_unique<WorkerPool>(loop, WorkerPool::Options{.threads = 2, .maxQueued = 256});
    store = std::make_unique<SqliteStore>(dbPath);
    REQUIRE(store->open().ok());
    // What sandboxd-o's main does before serving: read and decode the store.
    std::vector<OrchNode> nodes;
    std::vector<OrchSandbox> sandboxes;
    auto nodeDocs = store->loadAll(kNodesCollection);
    REQUIRE(nodeDocs.ok());
    for (const auto& d : *nodeDocs) {
      auto n = decodeNodeDoc(d.doc);
      REQUIRE_MESSAGE(n.ok(), why(n));
      nodes.push_back(std::move(*n));
    }
    auto sandboxDocs = store->loadAll(kSandboxesCollection);
    REQUIRE(sandboxDocs.ok());
    for (const auto& d : *sandboxDocs) {
      auto s = decodeSandboxDoc(d.doc);
      REQUIRE_MESSAGE(s.ok(), why(s));
      sandboxes.push_back(std::move(*s));
    }
    writer = std::make_unique<StoreWriter>(loop, *pool, *store);
    http = std::make_unique<http::HttpClient>(loop);
    client = std::make_unique<NodeClient>(*http, kSecret);
    NodeRegistryConfig ncfg;
    ncfg.heartbeatInterval = 50ms;
    ncfg.probeTimeout = 1s;
    ncfg.readySuccessThreshold = 1;
    ncfg.notReadyFailureThreshold = 1;
    registry = std::make_unique<NodeRegistry>(loop, *client, *writer, ncfg);
    registry->load(std::move(nodes));
    controller = std::make_unique<SandboxController>(loop, *registry, *client, *writer, config);
    controller->load(std::move(sandboxes));
    registry->setListener([this](const OrchNode& n, NodeState previous, bool removed) {
      nodeEvents.push_back({n.name, n.state, loop.stats().turns});
      controller->onNodeChanged(n, previous, removed);
    });
    registry->start();
    controller->start();
  }

  // As sandboxd-o stops: timers off, the pool shut down (it delivers what is
  // outstanding), then everything destroyed before the store.
  ~ControlPlane() {
    registry->stop();
    controller->stop();
    // What is queued is written first (only to keep the log quiet: a crash
    // would lose it, and the restart test shows what that costs).
    bool flushed = false;
    writer->flush([&] { flushed = true; });
    sbx::test::runUntil(
        loop, [&] { return flushed; }, 2s);
    pool->shutdown();
    controller.reset();
    registry.reset();
    client.reset();
    http.reset();
    writer.reset();
    pool.reset();
    store.reset();
  }
};

struct Fixture {
  TempDir tmp;
  EventLoop loop;
  std::string dbPath = tmp.path + "/orch.db";
  std::map<std::string, std::unique_ptr<FakeNode>> fakes;
  std::unique_ptr<ControlPlane> cp;

  static SandboxControllerConfig defaults() {
    SandboxControllerConfig c;
    c.hostPortMin = 20000;
    c.hostPortMax = 29999;
    c.opTimeout = 2s;
    c.statusSyncInterval = 20ms;
    c.runningSyncInterval = 100ms;
    c.retryBackoff = 50ms;
    return c;
  }

  explicit Fixture(SandboxControllerConfig config = defaults()) {
    cp = std::make_unique<ControlPlane>(loop, dbPath, config);
  }
  ~Fixture() {
    cp.reset();
    fakes.clear();
  }

  SandboxController& ctl() { return *cp->controller; }
  NodeRegistry& registry() { return *cp->registry; }

  bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
    return sbx::test::runUntil(loop, done, timeout);
  }

  // Starts a fake sbxlet; `join` registers it and waits until it is Ready.
  FakeNode& fake(const std::string& name, int64_t cpuMilli = 8000, bool join = true) {
    auto& f = fakes[name];
    f = std::make_unique<FakeNode>(loop, kSecret);
    f->allocatableCpuMilli = cpuMilli;
    if (join) this->join(name);
    return *f;
  }
  void join(const std::string& name) {
    bool stored = false;
    registry().upsert(name, "127.0.0.1", fakes.at(name)->port(), "api", "",
                      [&](Result<const OrchNode*> r) {
                        REQUIRE_MESSAGE(r.ok(), why(r));
                        stored = true;
                      });
    REQUIRE(waitFor([&] {
      const OrchNode* n = registry().find(name);
      return stored && n && n->state == NodeState::Ready;
    }));
  }

  // Creates and waits until it is stored (the create answered).
  void create(OrchSandbox s) {
    bool done = false;
    ctl().create(std::move(s), [&](Result<const OrchSandbox*> r) {
      REQUIRE_MESSAGE(r.ok(), why(r));
      done = true;
    });
    REQUIRE(waitFor([&] { return done; }));
  }
  // Creates without waiting: all of them land in one loop turn.
  void createAsync(OrchSandbox s, int* stored) {
    ctl().create(std::move(s), [stored](Result<const OrchSandbox*> r) {
      CHECK_MESSAGE(r.ok(), why(r));
      if (r.ok()) ++*stored;
    });
  }

  const OrchSandbox* find(const std::string& id) { return ctl().find(id); }
  bool phaseIs(const std::string& id, SandboxPhase p) {
    const OrchSandbox* s = find(id);
    return s && s->phase == p;
  }
  bool allIn(SandboxPhase p) {
    for (const auto& [id, s] : ctl().sandboxes()) {
      if (s.phase != p) return false;
    }
    return true;
  }

  // Every assigned (node, host_port, protocol) of the sandboxes that hold
  // ports; CHECKs that none appears twice.
  std::set<std::tuple<std::string, int, std::string>> assigned() {
    std::set<std::tuple<std::string, int, std::string>> all;
    size_t count = 0;
    for (const auto& [id, s] : ctl().sandboxes()) {
      if (s.phase == SandboxPhase::Pending || s.phase == SandboxPhase::Failed) continue;
      for (const auto& p : s.assignedPorts) {
        all.insert({s.nodeName, p.hostPort, p.protocol});
        ++count;
      }
    }
    CHECK(all.size() == count);
    return all;
  }

  // The documents in the store file, read by a connection of their own.
  std::map<std::string, OrchSandbox> stored() {
    bool flushed = false;
    cp->writer->flush([&] { flushed = true; });
    REQUIRE(waitFor([&] { return flushed; }));
    SqliteStore fresh(dbPath);
    REQUIRE(fresh.open().ok());
    auto docs = fresh.loadAll(kSandboxesCollection);
    REQUIRE(docs.ok());
    std::map<std::string, OrchSandbox> out;
    for (const auto& d : *docs) {
      auto s = decodeSandboxDoc(d.doc);
      REQUIRE_MESSAGE(s.ok(), why(s));
      out[d.id] = std::move(*s);
    }
    return out;
  }
};

}  // namespace

TEST_CASE(
    "SandboxController: 10 sandboxes on two nodes run, least allocated first, no port twice") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  FakeNode& b = f.fake("fake-b");
  int stored = 0;
  for (int i = 0; i < 10; ++i) f.createAsync(sandbox(padded(i)), &stored);
  REQUIRE(f.waitFor([&] { return stored == 10 && f.allIn(SandboxPhase::Running); }));

  std::map<std::string, int> perNode;
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    ++perNode[s.nodeName];
    CHECK(s.message.empty());
    CHECK(s.ip.rfind("10.89.0.", 0) == 0);  // synced from the node
    CHECK(s.external == "127.0.0.1");
    REQUIRE(s.assignedPorts.size() == 1);
    CHECK(s.assignedPorts[0].containerPort == 80);
    CHECK(s.assignedPorts[0].hostPort >= 20000);
    CHECK(s.assignedPorts[0].hostPort <= 29999);
    // The node holds exactly the port the control plane assigned.
    FakeNode& node = *f.fakes.at(s.nodeName);
    CHECK(node.hostPorts.at({s.assignedPorts[0].hostPort, "tcp"}) == id);
  }
  // Equal nodes and equal sandboxes: the reservations make them alternate.
  CHECK(perNode["fake-a"] == 5);
  CHECK(perNode["fake-b"] == 5);
  CHECK(a.sandboxes.size() == 5);
  CHECK(b.sandboxes.size() == 5);
  CHECK(f.assigned().size() == 10);
  CHECK(a.refusals.empty());
  CHECK(b.refusals.empty());
  const auto st = f.ctl().stats();
  CHECK(st.placements == 10);
  CHECK(st.nodeRefusals == 0);
  CHECK(st.pending == 0);
  CHECK(st.bookedPorts == 10);
  // What the store holds is what the controller says.
  auto docs = f.stored();
  REQUIRE(docs.size() == 10);
  for (const auto& [id, s] : docs) {
    CHECK(s.phase == SandboxPhase::Running);
    CHECK(s.nodeName == f.find(id)->nodeName);
    CHECK(s.assignedPorts[0].hostPort == f.find(id)->assignedPorts[0].hostPort);
  }
}

TEST_CASE(
    "SandboxController: 100 creates in one turn over 150 ports x 2 nodes never share a port") {
  auto config = Fixture::defaults();
  config.hostPortMin = 30000;
  config.hostPortMax = 30149;
  Fixture f(config);
  FakeNode& a = f.fake("fake-a", 64000);
  FakeNode& b = f.fake("fake-b", 64000);
  int stored = 0;
  // Two tcp ports and one udp port each: 200 tcp bookings of 300, 100 udp.
  for (int i = 0; i < 100; ++i) f.createAsync(sandbox(padded(i), {"tcp", "tcp", "udp"}), &stored);
  // One transaction stores them all; each is placed as its create is
  // answered, in that same turn, before any node has heard of any of them.
  REQUIRE(f.waitFor([&] { return stored == 100; }));
  CHECK(f.ctl().stats().placements == 100);
  CHECK(f.ctl().stats().pending == 0);
  CHECK(f.ctl().stats().bookedPorts == 300);
  CHECK(f.allIn(SandboxPhase::Scheduled));
  CHECK(f.assigned().size() == 300);
  CHECK(a.calls(FakeNode::kCreate) + b.calls(FakeNode::kCreate) == 0);
  REQUIRE(f.waitFor([&] { return stored == 100 && f.allIn(SandboxPhase::Running); }, 8s));
  CHECK(f.assigned().size() == 300);
  CHECK(f.ctl().stats().bookedPorts == 300);
  CHECK(f.ctl().stats().nodeRefusals == 0);
  CHECK(a.refusals.empty());
  CHECK(b.refusals.empty());
  CHECK(a.hostPorts.size() + b.hostPorts.size() == 300);
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    REQUIRE(s.assignedPorts.size() == 3);
    CHECK(s.assignedPorts[0].hostPort != s.assignedPorts[1].hostPort);
    CHECK(s.assignedPorts[2].protocol == "udp");
    for (const auto& p : s.assignedPorts) {
      CHECK(p.hostPort >= 30000);
      CHECK(p.hostPort <= 30149);
    }
  }
}

TEST_CASE("SandboxController: 40 ports on one node: the 41st sandbox waits for a free port") {
  auto config = Fixture::defaults();
  config.hostPortMin = 31000;
  config.hostPortMax = 31039;
  Fixture f(config);
  FakeNode& a = f.fake("fake-a", 64000);
  int stored = 0;
  for (int i = 0; i < 41; ++i) f.createAsync(sandbox(padded(i)), &stored);
  REQUIRE(f.waitFor([&] {
    if (stored != 41) return false;
    size_t running = 0;
    for (const auto& [id, s] : f.ctl().sandboxes()) running += s.phase == SandboxPhase::Running;
    return running == 40;
  }));
  const OrchSandbox* last = f.find("sbx-040");
  REQUIRE(last);
  CHECK(last->phase == SandboxPhase::Pending);
  CHECK(last->message.find("not enough free host ports") != std::string::npos);
  CHECK(last->message.find("fake-a") != std::string::npos);
  CHECK(last->assignedPorts.empty());
  CHECK(f.ctl().stats().pending == 1);
  CHECK(f.ctl().stats().bookedPorts == 40);
  CHECK(a.sandboxes.size() == 40);
  CHECK(f.assigned().size() == 40);

  // A port comes free: the waiting sandbox takes it, nothing else asked.
  const int freed = f.find("sbx-007")->assignedPorts[0].hostPort;
  bool removed = false;
  f.ctl().remove("sbx-007", [&](Result<bool> r) { removed = r.ok() && *r; });
  REQUIRE(f.waitFor([&] { return removed && f.phaseIs("sbx-040", SandboxPhase::Running); }));
  CHECK(f.find("sbx-040")->assignedPorts[0].hostPort == freed);
  CHECK(f.assigned().size() == 40);
}

TEST_CASE(
    "SandboxController: a node that refuses for capacity is excluded, the other one takes it") {
  Fixture f;
  // fake-a reports 8 cores free but has given them all away meanwhile, so
  // it is the least allocated on paper and refuses the create.
  FakeNode& a = f.fake("fake-a", 8000);
  a.unreportedCpuMilli = 8000;
  FakeNode& b = f.fake("fake-b", 4000);
  f.create(sandbox("sbx-cap"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-cap", SandboxPhase::Running); }));
  const OrchSandbox* s = f.find("sbx-cap");
  CHECK(s->nodeName == "fake-b");
  CHECK(s->refusedBy == std::vector<std::string>{"fake-a"});
  CHECK(s->message.empty());
  CHECK(a.calls(FakeNode::kCreate) == 1);
  REQUIRE(a.refusals.size() == 1);
  CHECK(a.refusals[0].rfind("insufficient cpu allocatable: requested=100m used=8000m limit=8000m",
                            0) == 0);
  CHECK(a.sandboxes.empty());
  CHECK(b.sandboxes.count("sbx-cap") == 1);
  const auto st = f.ctl().stats();
  CHECK(st.nodeRefusals == 1);
  CHECK(st.placements == 2);
  CHECK(st.bookedPorts == 1);  // fake-a's port was given back
  // refused_by is stored.
  auto docs = f.stored();
  CHECK(docs.at("sbx-cap").refusedBy == std::vector<std::string>{"fake-a"});
}

TEST_CASE("SandboxController: a burst never overcommits a node, across heartbeats") {
  Fixture f;
  FakeNode& a = f.fake("fake-a", 1000);
  FakeNode& b = f.fake("fake-b", 1000);
  int stored = 0;
  // 5 x 400m on 2 x 1000m: two fit on each node, the fifth nowhere.
  for (int i = 0; i < 5; ++i) f.createAsync(sandbox(padded(i), {"tcp"}, "400m"), &stored);
  REQUIRE(f.waitFor([&] {
    size_t running = 0;
    for (const auto& [id, s] : f.ctl().sandboxes()) running += s.phase == SandboxPhase::Running;
    return stored == 5 && running == 4;
  }));
  // Many heartbeats later (their resources now count what the
  // reservations held), still nothing more placed and nothing refused.
  const size_t beats = f.cp->nodeEvents.size();
  REQUIRE(f.waitFor([&] { return f.cp->nodeEvents.size() >= beats + 10; }));
  CHECK(a.sandboxes.size() == 2);
  CHECK(b.sandboxes.size() == 2);
  CHECK(a.refusals.empty());
  CHECK(b.refusals.empty());
  CHECK(f.ctl().stats().pending == 1);
  CHECK(f.ctl().stats().nodeRefusals == 0);
  const OrchSandbox* last = f.find("sbx-004");
  CHECK(last->phase == SandboxPhase::Pending);
  CHECK(last->message.find("fake-a: insufficient cpu (requested 400m, available 200m)") !=
        std::string::npos);
  // One goes: the waiting one takes its place on that node.
  const std::string node = f.find("sbx-000")->nodeName;
  f.ctl().remove("sbx-000", [](Result<bool> r) { CHECK(r.ok()); });
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-004", SandboxPhase::Running); }));
  CHECK(f.find("sbx-004")->nodeName == node);
  CHECK(a.refusals.empty());
  CHECK(b.refusals.empty());
}

TEST_CASE("SandboxController: no node fits: Pending with the reason, placed when a node joins") {
  Fixture f;
  FakeNode& small = f.fake("fake-small", 500);
  f.create(sandbox("sbx-big", {"tcp"}, "1000m"));
  REQUIRE(f.waitFor([&] {
    const OrchSandbox* s = f.find("sbx-big");
    return s && !s->message.empty();
  }));
  const OrchSandbox* s = f.find("sbx-big");
  CHECK(s->phase == SandboxPhase::Pending);
  CHECK(s->message.rfind("no node fits", 0) == 0);
  CHECK(s->message.find("fake-small: insufficient cpu (requested 1000m, available 500m)") !=
        std::string::npos);
  CHECK(small.calls(FakeNode::kCreate) == 0);
  CHECK(f.ctl().stats().placementFailures >= 1);
  CHECK(f.stored().at("sbx-big").message == s->message);

  // A node with room registers; its first good heartbeat places the
  // sandbox within a turn or two (the maintenance tick is 1 s away).
  FakeNode& big = f.fake("fake-big", 4000, /*join=*/false);
  f.registry().upsert("fake-big", "127.0.0.1", big.port(), "api", "",
                      [](Result<const OrchNode*> r) { REQUIRE(r.ok()); });
  uint64_t placedTurn = 0;
  REQUIRE(f.waitFor([&] {
    if (!f.phaseIs("sbx-big", SandboxPhase::Pending)) placedTurn = f.loop.stats().turns;
    return placedTurn > 0;
  }));
  uint64_t readyTurn = 0;
  for (const auto& e : f.cp->nodeEvents) {
    if (e.node == "fake-big" && e.state == NodeState::Ready) {
      readyTurn = e.turn;
      break;
    }
  }
  REQUIRE(readyTurn > 0);
  CHECK(placedTurn - readyTurn <= 2);
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-big", SandboxPhase::Running); }));
  CHECK(f.find("sbx-big")->nodeName == "fake-big");
  CHECK(f.find("sbx-big")->message.empty());
  CHECK(big.calls(FakeNode::kCreate) == 1);
  CHECK(small.calls(FakeNode::kCreate) == 0);
}

TEST_CASE("SandboxController: a node's error fails the sandbox; its host ports stay its own until deleted") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  a.outcome = "error";
  a.outcomeError = "pull docker.io/library/nginx:latest: not found";
  a.pollsBeforeOutcome = 2;
  f.create(sandbox("sbx-bad"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-bad", SandboxPhase::Failed); }));
  const OrchSandbox* bad = f.find("sbx-bad");
  CHECK(bad->message == "node fake-a: pull docker.io/library/nginx:latest: not found");
  // The node keeps an errored sandbox's host ports until it is deleted: so
  // do we.
  CHECK(f.ctl().stats().bookedPorts == 1);
  CHECK(f.stored().at("sbx-bad").phase == SandboxPhase::Failed);
  const int port = bad->assignedPorts.at(0).hostPort;

  // The next sandbox on that node gets another port, and runs.
  a.outcome = "running";
  f.create(sandbox("sbx-next"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-next", SandboxPhase::Running); }));
  const OrchSandbox* next = f.find("sbx-next");
  CHECK(next->nodeName == "fake-a");
  CHECK(next->assignedPorts.at(0).hostPort != port);
  CHECK(f.ctl().stats().bookedPorts == 2);

  // Deleting the failed one deletes it on its node too, and frees its port.
  bool removed = false;
  f.ctl().remove("sbx-bad", [&](Result<bool> r) { removed = r.ok() && *r; });
  REQUIRE(f.waitFor([&] { return removed; }));
  CHECK(a.deletes == std::vector<std::string>{"sbx-bad"});
  CHECK(f.ctl().stats().bookedPorts == 1);
  f.create(sandbox("sbx-again"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-again", SandboxPhase::Running); }));
  CHECK(f.find("sbx-again")->assignedPorts.at(0).hostPort == port);
}

// Regression (SandboxController::fail; fixed by keeping the ports booked): a
// sandbox the node reports in phase
// "error" is marked Failed and its host ports are released in the
// HostPortBook at once, but sbxlet keeps an errored sandbox's host ports
// (and its admission) until the sandbox is DELETEd (Provisioner::failCreate:
// "the record stays (phase error) until it is deleted"), and the controller
// does not delete it. The next sandbox that gets the port on that node is
// refused ("host port already in use: 20000/tcp (sandbox sbx-bad)"), that
// node is added to its refused_by, and with no other node it stays Pending
// ("no node fits: fake-a: refused this sandbox") until pending_timeout fails
// it. Fixed: the ports stay booked while the Failed sandbox still exists on
// its node (release them when the node's DELETE succeeds), or DELETE it on
// the node when failing it.
TEST_CASE("SandboxController: a sandbox created after a Failed one runs (no port the node holds)") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  a.outcome = "error";
  a.outcomeError = "boom";
  f.create(sandbox("sbx-bad"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-bad", SandboxPhase::Failed); }));
  a.outcome = "running";
  f.create(sandbox("sbx-next"));
  const bool ran = f.waitFor([&] { return f.phaseIs("sbx-next", SandboxPhase::Running); }, 2s);
  INFO("sbx-next: ", std::string(sandboxPhaseName(f.find("sbx-next")->phase)), ": ",
       f.find("sbx-next")->message);
  INFO("fake-a refused: ", a.refusals.empty() ? std::string() : a.refusals.back());
  CHECK(ran);
  CHECK(f.find("sbx-next")->refusedBy.empty());
}

TEST_CASE("SandboxController: remove deletes on the node, in the store, and frees the ports") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  f.create(sandbox("sbx-del"));
  f.create(sandbox("sbx-keep"));
  REQUIRE(f.waitFor([&] { return f.allIn(SandboxPhase::Running); }));
  const int port = f.find("sbx-del")->assignedPorts.at(0).hostPort;
  CHECK(f.stored().size() == 2);

  int answers = 0;
  bool result = false;
  f.ctl().remove("sbx-del", [&](Result<bool> r) {
    ++answers;
    REQUIRE_MESSAGE(r.ok(), why(r));
    result = *r;
  });
  // Deleting until the node said so.
  CHECK(f.find("sbx-del")->phase == SandboxPhase::Deleting);
  REQUIRE(f.waitFor([&] { return answers == 1; }));
  CHECK(result);
  CHECK(f.find("sbx-del") == nullptr);
  CHECK(a.deletes == std::vector<std::string>{"sbx-del"});
  CHECK(a.sandboxes.count("sbx-del") == 0);
  CHECK(f.ctl().stats().bookedPorts == 1);
  auto docs = f.stored();
  CHECK(docs.count("sbx-del") == 0);
  CHECK(docs.count("sbx-keep") == 1);

  // Its port is free again: the next sandbox gets it.
  f.create(sandbox("sbx-after"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-after", SandboxPhase::Running); }));
  CHECK(f.find("sbx-after")->assignedPorts.at(0).hostPort == port);

  // Unknown: 404, at once.
  bool called = false;
  f.ctl().remove("sbx-nope", [&](Result<bool> r) {
    called = true;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == 404);
    CHECK(r.message() == "sandbox not found: sbx-nope");
  });
  CHECK(called);

  // A Pending sandbox (no node fits) is removed without calling any node.
  f.create(sandbox("sbx-huge", {"tcp"}, "64"));
  bool gone = false;
  f.ctl().remove("sbx-huge", [&](Result<bool> r) { gone = r.ok() && *r; });
  REQUIRE(f.waitFor([&] { return gone; }));
  CHECK(f.find("sbx-huge") == nullptr);
  CHECK(a.deletes.size() == 1);
}

TEST_CASE("SandboxController: ttl: Expired, then deleted on the node and removed") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  OrchSandbox s = sandbox("sbx-ttl");
  s.ttlSeconds = 1;
  s.expireAtMs = nowUnixMs() + 300;
  f.create(s);
  f.create(sandbox("sbx-forever"));
  std::set<SandboxPhase> seen;
  REQUIRE(f.waitFor([&] {
    const OrchSandbox* t = f.find("sbx-ttl");
    if (!t) return true;
    seen.insert(t->phase);
    return false;
  }));
  CHECK(seen.count(SandboxPhase::Running) == 1);  // ran first
  CHECK(seen.count(SandboxPhase::Expired) == 1);
  CHECK(seen.count(SandboxPhase::Deleting) == 0);
  CHECK(nowUnixMs() >= s.expireAtMs);
  CHECK(a.deletes == std::vector<std::string>{"sbx-ttl"});
  CHECK(a.sandboxes.count("sbx-ttl") == 0);
  CHECK(f.phaseIs("sbx-forever", SandboxPhase::Running));
  CHECK(f.ctl().stats().bookedPorts == 1);
  CHECK(f.stored().count("sbx-ttl") == 0);
}

TEST_CASE("SandboxController: restart: Scheduled re-created, Running kept, no port booked twice") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  FakeNode& b = f.fake("fake-b");
  for (int i = 0; i < 4; ++i) f.create(sandbox("sbx-run-" + std::to_string(i), {"tcp", "udp"}));
  REQUIRE(f.waitFor([&] { return f.allIn(SandboxPhase::Running); }));
  // These are accepted by their nodes but never finish creating.
  a.pollsBeforeOutcome = b.pollsBeforeOutcome = 1000000;
  for (int i = 0; i < 4; ++i) f.create(sandbox("sbx-slow-" + std::to_string(i), {"tcp", "udp"}));
  REQUIRE(f.waitFor([&] { return a.sandboxes.size() + b.sandboxes.size() == 8; }));
  std::map<std::string, std::tuple<std::string, int, int>> before;  // node, tcp, udp
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    before[id] = {s.nodeName, s.assignedPorts.at(0).hostPort, s.assignedPorts.at(1).hostPort};
    CHECK(s.phase ==
          (id.rfind("sbx-run", 0) == 0 ? SandboxPhase::Running : SandboxPhase::Scheduled));
  }
  CHECK(f.stored().size() == 8);  // flushes every pending write
  const int createsBefore = a.calls(FakeNode::kCreate) + b.calls(FakeNode::kCreate);

  // Down and up again over the same file.
  f.cp.reset();
  f.cp = std::make_unique<ControlPlane>(f.loop, f.dbPath, Fixture::defaults());
  CHECK(f.ctl().sandboxes().size() == 8);
  CHECK(f.ctl().stats().bookedPorts == 16);  // booked once each, from the store
  CHECK(f.registry().nodes().size() == 2);

  // The 4 Scheduled ones are created again; the nodes say "already exists",
  // which counts as accepted.
  REQUIRE(f.waitFor([&] {
    return a.calls(FakeNode::kCreate) + b.calls(FakeNode::kCreate) == createsBefore + 4;
  }));
  int alreadyExists = 0;
  for (FakeNode* n : {&a, &b}) {
    for (const auto& e : n->refusals) alreadyExists += e.rfind("sandbox already exists: ", 0) == 0;
  }
  CHECK(alreadyExists == 4);
  // Followed to the end once the nodes finish them.
  for (FakeNode* n : {&a, &b}) {
    for (auto& [id, s] : n->sandboxes) s.pollsLeft = 0;
  }
  REQUIRE(f.waitFor([&] { return f.allIn(SandboxPhase::Running); }));
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    CHECK(s.refusedBy.empty());
    CHECK(before.at(id) == std::make_tuple(s.nodeName, s.assignedPorts.at(0).hostPort,
                                           s.assignedPorts.at(1).hostPort));
  }
  CHECK(f.ctl().stats().nodeRefusals == 0);
  CHECK(f.ctl().stats().bookedPorts == 16);
  CHECK(f.assigned().size() == 16);

  // A new sandbox gets ports nobody holds.
  a.pollsBeforeOutcome = b.pollsBeforeOutcome = 0;
  f.create(sandbox("sbx-new", {"tcp", "udp"}));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-new", SandboxPhase::Running); }));
  CHECK(f.assigned().size() == 18);
  CHECK(f.ctl().stats().bookedPorts == 18);
  CHECK(a.refusals.size() + b.refusals.size() == 4);  // only the "already exists"
}

// Regression (SandboxController::onCreateReply, the "no answer" branch): when a
// create gets no answer (transport error, timeout, 5xx), the sandbox is
// unplaced and placed on another node, and the only attempt to remove what
// the first node may hold is one fire-and-forget DELETE whose outcome is
// ignored. If that DELETE fails too, the first node keeps the sandbox for
// good: two copies run, and its host ports and resources there stay taken
// while the controller's HostPortBook believes them free (later sandboxes
// given those ports on that node are refused with "host port already in
// use"). Reproduced through a restart: a sandbox Scheduled (and created) on
// fake-a, the control plane restarts while fake-a answers 503; start()
// re-sends the create, gets 503, sends one DELETE (503), and moves the
// sandbox to fake-b. When fake-a is back it still holds sbx-x. Fixed: keep
// deleting on the old node until it succeeds (with retries, as
// startNodeDelete does) before or while the sandbox runs elsewhere; or, for
// a Scheduled sandbox whose create went unanswered, retry the create on the
// same node ("already exists" counts as accepted) instead of moving it.
TEST_CASE("SandboxController: an unanswered create leaves no copy on that node") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  FakeNode& b = f.fake("fake-b");
  a.pollsBeforeOutcome = 1000000;  // created there, never finishes
  f.create(sandbox("sbx-x"));
  REQUIRE(f.waitFor([&] { return a.sandboxes.count("sbx-x") == 1; }));
  REQUIRE(f.find("sbx-x")->nodeName == "fake-a");
  f.stored();  // flushed: Scheduled on fake-a

  f.cp.reset();
  a.down = true;  // its sbxlet restarting, say
  f.cp = std::make_unique<ControlPlane>(f.loop, f.dbPath, Fixture::defaults());
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-x", SandboxPhase::Running); }));
  CHECK(f.find("sbx-x")->nodeName == "fake-b");
  CHECK(b.sandboxes.count("sbx-x") == 1);
  a.down = false;
  REQUIRE(f.waitFor([&] { return f.registry().find("fake-a")->state == NodeState::Ready; }));
  // The stray copy is deleted again (every second) until fake-a confirms.
  CHECK(f.waitFor([&] { return a.sandboxes.count("sbx-x") == 0; }, 3s));
  CHECK(a.hostPorts.empty());
  CHECK(f.waitFor([&] { return f.ctl().stats().bookedPorts == 1; }, 3s));
}

TEST_CASE("SandboxController: a NotReady node's sandboxes keep running with a message") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  FakeNode& b = f.fake("fake-b");
  for (int i = 0; i < 4; ++i) f.create(sandbox(padded(i)));
  REQUIRE(f.waitFor([&] { return f.allIn(SandboxPhase::Running); }));
  const int createsA = a.calls(FakeNode::kCreate);

  a.down = true;
  REQUIRE(f.waitFor([&] { return f.registry().find("fake-a")->state == NodeState::NotReady; }));
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    CHECK(s.phase == SandboxPhase::Running);
    if (s.nodeName == "fake-a") {
      CHECK(s.message == "node fake-a is NotReady: healthz: HTTP 503");
    } else {
      CHECK(s.message.empty());
    }
  }
  // Stored too, and nothing is moved or deleted while it is away.
  for (const auto& [id, s] : f.stored()) {
    if (s.nodeName == "fake-a") CHECK(s.message.rfind("node fake-a is NotReady", 0) == 0);
  }
  CHECK(a.deletes.empty());
  CHECK(b.deletes.empty());

  a.down = false;
  REQUIRE(f.waitFor([&] { return f.registry().find("fake-a")->state == NodeState::Ready; }));
  REQUIRE(f.waitFor([&] {
    for (const auto& [id, s] : f.ctl().sandboxes()) {
      if (!s.message.empty()) return false;
    }
    return true;
  }));
  CHECK(f.allIn(SandboxPhase::Running));
  CHECK(a.calls(FakeNode::kCreate) == createsA);
  CHECK(a.deletes.empty());
  CHECK(f.ctl().stats().bookedPorts == 4);
}

TEST_CASE("SandboxController: deleteAllOnNode deletes that node's sandboxes there") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  FakeNode& b = f.fake("fake-b");
  int stored = 0;
  for (int i = 0; i < 6; ++i) f.createAsync(sandbox(padded(i)), &stored);  // 3 on each node
  REQUIRE(f.waitFor([&] { return stored == 6 && f.allIn(SandboxPhase::Running); }));
  REQUIRE(a.sandboxes.size() == 3);

  SUBCASE("the node answers: done ok, all gone") {
    bool done = false;
    f.ctl().deleteAllOnNode("fake-a", [&](Status st) {
      CHECK_MESSAGE(st.ok(), why(st));
      done = true;
    });
    REQUIRE(f.waitFor([&] { return done; }));
    CHECK(a.deletes.size() == 3);
    CHECK(a.sandboxes.empty());
    CHECK(f.ctl().sandboxes().size() == 3);
    for (const auto& [id, s] : f.ctl().sandboxes()) CHECK(s.nodeName == "fake-b");
    CHECK(b.deletes.empty());
    CHECK(f.ctl().stats().bookedPorts == 3);
    CHECK(f.stored().size() == 3);
    // No sandbox left there: done at once.
    bool empty = false;
    f.ctl().deleteAllOnNode("fake-a", [&](Status st) { empty = st.ok(); });
    CHECK(empty);
  }

  SUBCASE("the node does not answer: 502, they stay Deleting and are retried") {
    a.down = true;
    Status outcome;
    bool done = false;
    f.ctl().deleteAllOnNode("fake-a", [&](Status st) {
      outcome = st;
      done = true;
    });
    REQUIRE(f.waitFor([&] { return done; }));
    REQUIRE_FALSE(outcome.ok());
    CHECK(outcome.error().code == 502);
    CHECK(outcome.message().rfind("could not delete 3 sandbox(es) on node fake-a yet", 0) == 0);
    size_t deleting = 0;
    for (const auto& [id, s] : f.ctl().sandboxes()) {
      if (s.nodeName != "fake-a") continue;
      CHECK(s.phase == SandboxPhase::Deleting);
      CHECK(s.message.rfind("delete on node failed, retrying: HTTP 503", 0) == 0);
      ++deleting;
    }
    CHECK(deleting == 3);
    CHECK(f.ctl().stats().bookedPorts == 6);  // held until the node deletes them
    a.down = false;
    REQUIRE(f.waitFor([&] { return f.ctl().sandboxes().size() == 3; }));
    CHECK(a.sandboxes.empty());
    CHECK(f.ctl().stats().bookedPorts == 3);
  }
}

TEST_CASE("SandboxController: failAllOnNode fails that node's sandboxes without calling it") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  FakeNode& b = f.fake("fake-b");
  int stored = 0;
  for (int i = 0; i < 6; ++i) f.createAsync(sandbox(padded(i)), &stored);  // 3 on each node
  REQUIRE(f.waitFor([&] { return stored == 6 && f.allIn(SandboxPhase::Running); }));
  // One of fake-a's is being deleted while the node is unreachable.
  a.down = true;
  std::string deletingId;
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    if (s.nodeName == "fake-a") deletingId = id;
  }
  int answers = 0;
  f.ctl().remove(deletingId, [&](Result<bool> r) { answers += r.ok() ? (*r ? 10 : 1) : 100; });
  REQUIRE(f.waitFor([&] { return answers == 1; }));  // not yet: Deleting, retried
  REQUIRE(f.phaseIs(deletingId, SandboxPhase::Deleting));
  const int callsA =
      a.calls(FakeNode::kCreate) + a.calls(FakeNode::kDelete) + a.calls(FakeNode::kStatuses);
  const size_t deletesA = a.deletes.size();

  f.ctl().failAllOnNode("fake-a", "node removed");
  // Nothing was called on the node in that call.
  CHECK(a.calls(FakeNode::kCreate) + a.calls(FakeNode::kDelete) + a.calls(FakeNode::kStatuses) ==
        callsA);
  CHECK(f.find(deletingId) == nullptr);  // nothing left to delete it on
  size_t failed = 0;
  for (const auto& [id, s] : f.ctl().sandboxes()) {
    if (s.nodeName == "fake-a") {
      CHECK(s.phase == SandboxPhase::Failed);
      CHECK(s.message == "node removed");
      ++failed;
    } else {
      CHECK(s.phase == SandboxPhase::Running);
    }
  }
  CHECK(failed == 2);
  CHECK(f.ctl().stats().bookedPorts == 3);  // fake-b's only
  CHECK(b.deletes.empty());
  // And it stays that way: the retry of the delete is gone with the sandbox.
  a.down = false;
  REQUIRE(f.waitFor([&] { return f.registry().find("fake-a")->state == NodeState::Ready; }));
  f.waitFor([] { return false; }, 200ms);
  CHECK(a.deletes.size() == deletesA);
  auto docs = f.stored();
  CHECK(docs.size() == 5);
  for (const auto& [id, s] : docs) {
    if (s.nodeName == "fake-a") CHECK(s.phase == SandboxPhase::Failed);
  }
}

// Regression (was a use-after-free in SandboxController::startNodeDelete, the
// DELETE reply's callback): when
// the node's DELETE fails, the callback holds `Runtime& r` (an element of
// runtime_), runs the waiting clients' callbacks (`for (auto& w : waiters)
// w(false);`), and then reads and writes r.backoff and r.retry. A waiter
// that re-enters the controller and ends the sandbox (failAllOnNode ->
// finishRemoval -> runtime_.erase(id)) frees `r` under it: ASan reports a
// heap-use-after-free READ of r.backoff in that lambda, freed by
// finishRemoval's runtime_.erase; a plain build writes a Timer into freed
// memory. The natural trigger is a node removal that falls back
// to force when the graceful one fails: deleteAllOnNode's `done` runs inside
// that waiter loop and calls failAllOnNode. Fixed: copy the waiters out and
// run them last (after the retry is armed), or look the Runtime up again
// after running them.
TEST_CASE("SandboxController: deleteAllOnNode's done may fall back to failAllOnNode") {
  Fixture f;
  FakeNode& a = f.fake("fake-a");
  f.create(sandbox("sbx-0"));
  REQUIRE(f.waitFor([&] { return f.phaseIs("sbx-0", SandboxPhase::Running); }));
  a.down = true;
  bool done = false;
  f.ctl().deleteAllOnNode("fake-a", [&](Status st) {
    if (!st.ok()) f.ctl().failAllOnNode("fake-a", "node removed");  // force
    done = true;
  });
  REQUIRE(f.waitFor([&] { return done; }));
  CHECK(f.find("sbx-0") == nullptr);
  a.down = false;
  f.waitFor([] { return false; }, 200ms);  // the retry armed on freed memory fires
  CHECK(f.ctl().stats().bookedPorts == 0);
}

// Regression (NodeRegistry::remove): a heartbeat() caller waiting for the probe in
// flight is never answered when the node is removed before the probe ends
// (remove() erases runtime_[name] with its waiters, and finishProbe() then
// returns early). OrchApi's POST /api/v1/nodes/{name}/heartbeat keeps that
// exchange open until the client gives up. Fixed: answer the waiters (e.g.
// heartbeat "failed", "node removed") in remove().
TEST_CASE("NodeRegistry: a heartbeat waiting on a node that is removed is answered") {
  Fixture f;
  f.fake("fake-a");
  bool answered = false;
  f.registry().heartbeat("fake-a", [&](const HeartbeatOutcome&) { answered = true; });
  bool removed = false;
  f.registry().remove("fake-a", [&](Status st) { removed = st.ok(); });
  REQUIRE(f.waitFor([&] { return removed; }));
  CHECK(f.waitFor([&] { return answered; }, 1s));
}
