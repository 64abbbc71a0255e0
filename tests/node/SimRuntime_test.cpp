#include "node/SimRuntime.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <atomic>
#include <future>
#include <thread>
#include <map>
#include <optional>
#include <set>

#include "../TestUtil.h"
#include "net/PortTable.h"
#include "node/Admission.h"
#include "node/SandboxStore.h"
#include "reactor/WorkerPool.h"

using namespace sbx;
using namespace sbx::node;
namespace fs = std::filesystem;

namespace {

struct SimTempDir : test::TempDir {
  SimTempDir() : test::TempDir("sbx-sim-test") {}
};

SandboxSpec simSpec(const std::string& id, int64_t cpuMillis = 100, int hostPort = 0) {
  SandboxSpec spec;
  spec.id = id;
  if (hostPort) spec.ports.push_back(PortMapping{hostPort, 80, "tcp"});
  ContainerSpec c;
  c.name = "main";
  c.image = "busybox:1.36";
  c.resource.cpu = std::to_string(cpuMillis) + "m";
  c.resource.memory = "64Mi";
  c.resource.cpuMillis = cpuMillis;
  c.resource.memoryBytes = 64 << 20;
  spec.containers.push_back(c);
  return spec;
}

// One hollow node: a real loop, pool, store and persister on a temp dir.
struct SimNode {
  explicit SimNode(SimConfig cfg = quick(), std::string dir = "",
                   HostResources cap = {2000, 1LL << 32},
                   WorkerPool::Options poolOptions = {.threads = 2, .maxQueued = 4096})
      : pool(loop, poolOptions),
        store((dir.empty() ? tmp.path : dir) + "/sandboxes"),
        persister(store, pool),
        admission(cap, 100),
        ports([](uint16_t, const std::string&) { return Status(); }),
        sim(loop, pool, store, persister, admission, ports, std::move(cfg)) {
    admission.setAddressPool(simConfigSubnet);
    REQUIRE(sim.init().ok());
  }
  ~SimNode() { pool.shutdown(); }

  static inline std::string simConfigSubnet = "10.77.0.0/16";
  static SimConfig quick() {
    SimConfig c;
    c.startLatency = std::chrono::milliseconds(20);
    c.seed = 7;
    c.subnetCidr = simConfigSubnet;
    return c;
  }

  Result<const SandboxState*> create(SandboxSpec spec) {
    std::optional<Result<const SandboxState*>> out;
    sim.create(std::move(spec), [&](Result<const SandboxState*> r) { out = std::move(r); });
    REQUIRE(test::runUntil(loop, [&] { return out.has_value(); }));
    return *out;
  }
  Status remove(const std::string& id) {
    std::optional<Status> out;
    sim.remove(id, [&](Status st) { out = st; });
    REQUIRE(test::runUntil(loop, [&] { return out.has_value(); }));
    return *out;
  }
  std::vector<std::string> recover() {
    std::optional<std::vector<std::string>> out;
    sim.recover([&](std::vector<std::string> p) { out = std::move(p); });
    REQUIRE(test::runUntil(loop, [&] { return out.has_value(); }));
    return *out;
  }
  SandboxPhase phase(const std::string& id) {
    const SandboxState* s = sim.find(id);
    return s ? s->phase : SandboxPhase::Deleted;
  }
  bool settle(const std::string& id) {
    return test::runUntil(
        loop, [&] { return phase(id) != SandboxPhase::Creating && persister.inFlight() == 0; });
  }

  SimTempDir tmp;
  EventLoop loop;
  WorkerPool pool;
  SandboxStore store;
  StatePersister persister;
  Admission admission;
  net::PortTable ports;
  SimRuntime sim;
};

}  // namespace

TEST_CASE("SimAddressPool: lowest free first, never network, gateway or broadcast") {
  auto p = SimAddressPool::parse("10.1.2.0/29");  // .0 net, .1 gw, .7 broadcast
  REQUIRE(p.ok());
  CHECK(p->capacity() == 5);
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) got.push_back(p->allocate());
  CHECK(got ==
        std::vector<std::string>{"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"});
  CHECK(p->allocate().empty());
  p->release("10.1.2.4");
  p->release("10.1.2.4");  // twice: no effect
  p->release("10.9.9.9");  // foreign: no effect
  CHECK(p->used() == 4);
  CHECK(p->allocate() == "10.1.2.4");
  CHECK_FALSE(p->claim("10.1.2.4"));  // taken
  CHECK_FALSE(p->claim("10.1.2.1"));  // gateway
  CHECK_FALSE(p->claim("not an ip"));
  CHECK_FALSE(SimAddressPool::parse("10.1.2.0/31").ok());
  CHECK_FALSE(SimAddressPool::parse("10.1.2.1/24").ok());
}

TEST_CASE("SimRuntime: create → running after the latency, with an address and a state file") {
  SimNode n;
  auto r = n.create(simSpec("sim-a", 100, 30080));
  REQUIRE(r.ok());
  CHECK((*r)->phase == SandboxPhase::Creating);
  CHECK((*r)->runtime == "sim");
  CHECK((*r)->ip == "10.77.0.2");
  CHECK(n.store.hasState("sim-a"));  // before "accepted"
  CHECK(n.sim.starting() == 1);
  REQUIRE(n.settle("sim-a"));
  const SandboxState* s = n.sim.find("sim-a");
  CHECK(s->phase == SandboxPhase::Running);
  CHECK(s->containers[0].phase == ContainerPhase::Running);
  CHECK(s->containers[0].taskStatus == "running");
  CHECK(n.sim.starting() == 0);
  auto onDisk = n.store.read("sim-a");
  REQUIRE(onDisk.ok());
  CHECK(onDisk->phase == SandboxPhase::Running);
  CHECK(n.admission.usedCpu() == 100);
  CHECK(n.ports.holder(30080, "tcp") == "sim-a");

  // Refresh answers from memory; unknown ids are 404.
  std::optional<Result<const SandboxState*>> got;
  n.sim.refresh("nope", [&](Result<const SandboxState*> r) { got = std::move(r); });
  REQUIRE(got.has_value());
  CHECK(got->error().code == 404);
}

TEST_CASE("SimRuntime: the same admission and host-port errors as the real runtime") {
  SimNode n;
  REQUIRE(n.create(simSpec("sim-a", 1500, 30080)).ok());
  auto dup = n.create(simSpec("sim-a"));
  CHECK(dup.message() == "sandbox already exists: sim-a");
  CHECK(dup.error().code == 400);
  auto cpu = n.create(simSpec("sim-b", 1000));
  CHECK(cpu.message().starts_with("insufficient cpu allocatable: requested=1000m used=1500m"));
  auto port = n.create(simSpec("sim-c", 100, 30080));
  CHECK(port.message() == "host port already in use: 30080/tcp (sandbox sim-a)");
  // Refused creates leave nothing behind.
  CHECK(n.sim.sandboxes().size() == 1);
  CHECK(n.admission.usedCpu() == 1500);
  CHECK(n.sim.addresses().used() == 1);
  CHECK_FALSE(n.store.hasState("sim-b"));
}

TEST_CASE("SimRuntime: address exhaustion is admission's message; delete frees the address") {
  SimNode::simConfigSubnet = "10.77.0.0/29";  // 5 sandbox addresses
  SimNode n;
  SimNode::simConfigSubnet = "10.77.0.0/16";
  for (int i = 0; i < 5; ++i) REQUIRE(n.create(simSpec("s" + std::to_string(i), 10)).ok());
  auto full = n.create(simSpec("s5", 10));
  CHECK(full.message() == "insufficient ip addresses in subnet 10.77.0.0/29: in_use=6 usable=6");
  REQUIRE(n.remove("s2").ok());
  auto again = n.create(simSpec("s5", 10));
  REQUIRE_MESSAGE(again.ok(), (again.ok() ? "" : again.message()));
  CHECK((*again)->ip == "10.77.0.4");
}

TEST_CASE("SimRuntime: injected failures give phase error, release the address, keep admission") {
  SimConfig cfg = SimNode::quick();
  cfg.failurePercent = 100;
  SimNode n(cfg);
  REQUIRE(n.create(simSpec("sim-f", 100, 30081)).ok());
  REQUIRE(n.settle("sim-f"));
  const SandboxState* s = n.sim.find("sim-f");
  CHECK(s->phase == SandboxPhase::Error);
  CHECK(s->error == "sim: injected start failure (sim_failure_percent=100)");
  CHECK(s->containers[0].phase == ContainerPhase::Error);
  CHECK(s->ip.empty());
  CHECK(n.sim.addresses().used() == 0);
  CHECK(n.admission.usedCpu() == 100);
  CHECK(n.ports.holder(30081, "tcp") == "sim-f");
  REQUIRE(n.remove("sim-f").ok());
  CHECK(n.admission.usedCpu() == 0);
  CHECK(n.ports.size() == 0);
}

TEST_CASE("SimRuntime: a failure rate between 0 and 100 fails about that share") {
  SimConfig cfg = SimNode::quick();
  cfg.failurePercent = 30;
  cfg.startLatency = std::chrono::milliseconds(1);
  SimNode n(cfg, "", HostResources{1000000, 1LL << 40});
  for (int i = 0; i < 200; ++i) REQUIRE(n.create(simSpec("r" + std::to_string(i), 10)).ok());
  REQUIRE(test::runUntil(n.loop, [&] { return n.sim.starting() == 0; }));
  int failed = 0;
  for (const auto& [id, s] : n.sim.sandboxes()) failed += s.phase == SandboxPhase::Error;
  CHECK(failed > 30);  // 60 expected; binomial sd ~6.5
  CHECK(failed < 90);
}

TEST_CASE("SimRuntime: jitter spreads start latencies within [latency, latency + jitter]") {
  SimConfig cfg = SimNode::quick();
  cfg.startLatency = std::chrono::milliseconds(30);
  cfg.startJitter = std::chrono::milliseconds(60);
  SimNode n(cfg);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) REQUIRE(n.create(simSpec("j" + std::to_string(i), 10)).ok());
  std::map<std::string, int64_t> runningAtMs;  // first turn each was seen running
  REQUIRE(test::runUntil(n.loop, [&] {
    const int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    for (const auto& [id, s] : n.sim.sandboxes()) {
      if (s.phase == SandboxPhase::Running) runningAtMs.emplace(id, ms);
    }
    return n.sim.starting() == 0;
  }));
  REQUIRE(runningAtMs.size() == 20);
  int64_t lo = INT64_MAX, hi = 0;
  for (const auto& [id, ms] : runningAtMs) {
    lo = std::min(lo, ms);
    hi = std::max(hi, ms);
  }
  CHECK(lo >= 30);
  CHECK(hi - lo >= 10);  // 20 uniform draws over 60 ms: spread ~57 ms expected
}

TEST_CASE("SimRuntime: delete releases everything and removes the state directory; idempotent") {
  SimNode n;
  REQUIRE(n.create(simSpec("sim-d", 100, 30090)).ok());
  REQUIRE(n.settle("sim-d"));
  REQUIRE(n.remove("sim-d").ok());
  CHECK(n.sim.find("sim-d") == nullptr);
  CHECK_FALSE(fs::exists(n.store.sandboxDir("sim-d")));
  CHECK(n.admission.usedCpu() == 0);
  CHECK(n.admission.addressesInUse() == 1);  // the gateway
  CHECK(n.ports.size() == 0);
  CHECK(n.sim.addresses().used() == 0);
  CHECK(n.remove("sim-d").ok());  // unknown: fine
}

TEST_CASE("SimRuntime: a delete while creating cancels the start; two deletes answer both") {
  SimConfig cfg = SimNode::quick();
  cfg.startLatency = std::chrono::seconds(30);
  SimNode n(cfg);
  // Delete before the create's state write reported.
  std::optional<Result<const SandboxState*>> created;
  n.sim.create(simSpec("sim-x"), [&](Result<const SandboxState*> r) { created = std::move(r); });
  int answered = 0;
  n.sim.remove("sim-x", [&](Status st) { answered += st.ok(); });
  n.sim.remove("sim-x", [&](Status st) { answered += st.ok(); });
  REQUIRE(test::runUntil(n.loop, [&] { return created.has_value() && answered == 2; }));
  CHECK(n.sim.find("sim-x") == nullptr);
  CHECK(n.sim.starting() == 0);
  CHECK_FALSE(fs::exists(n.store.sandboxDir("sim-x")));
  CHECK(n.admission.usedCpu() == 0);

  // Delete while waiting for the start.
  REQUIRE(n.create(simSpec("sim-y")).ok());
  CHECK(n.sim.starting() == 1);
  REQUIRE(n.remove("sim-y").ok());
  CHECK(n.sim.starting() == 0);
  CHECK(n.sim.sandboxes().empty());
}

TEST_CASE("SimRuntime: a restart keeps running sandboxes and their bookings; creating ones fail") {
  SimTempDir dir;
  {
    SimConfig cfg = SimNode::quick();
    SimNode n(cfg, dir.path);
    REQUIRE(n.create(simSpec("keep", 100, 30100)).ok());
    REQUIRE(n.settle("keep"));
    cfg.startLatency = std::chrono::hours(1);
  }
  {
    // A second node over the same directory, with a slow start: "slow"
    // stays creating when this one goes.
    SimConfig cfg = SimNode::quick();
    cfg.startLatency = std::chrono::hours(1);
    SimNode n(cfg, dir.path);
    CHECK(n.recover().empty());
    REQUIRE(n.create(simSpec("slow", 100)).ok());
  }
  SimNode n(SimNode::quick(), dir.path);
  CHECK(n.recover().empty());
  REQUIRE(n.sim.find("keep"));
  CHECK(n.sim.find("keep")->phase == SandboxPhase::Running);
  CHECK(n.sim.find("keep")->ip == "10.77.0.2");
  CHECK(n.ports.holder(30100, "tcp") == "keep");
  CHECK(n.admission.usedCpu() == 200);
  REQUIRE(n.sim.find("slow"));
  CHECK(n.sim.find("slow")->phase == SandboxPhase::Error);
  CHECK(n.sim.find("slow")->error == "provisioning interrupted by an sbxlet restart");
  // New creates do not reuse the restored address.
  auto c = n.create(simSpec("new", 100));
  REQUIRE(c.ok());
  CHECK((*c)->ip != "10.77.0.2");
}

TEST_CASE("SimRuntime: reconcile removes state directories no sandbox owns") {
  SimNode n;
  REQUIRE(n.create(simSpec("owned")).ok());
  REQUIRE(n.settle("owned"));
  REQUIRE(n.store.prepare("orphan").ok());
  std::optional<Status> st;
  n.sim.reconcile([&](Status s) { st = s; });
  REQUIRE(test::runUntil(n.loop, [&] {
    return st.has_value() && n.persister.inFlight() == 0 &&
           !fs::exists(n.store.sandboxDir("orphan"));
  }));
  CHECK(st->ok());
  CHECK(fs::exists(n.store.sandboxDir("owned")));
}

TEST_CASE("SimRuntime: a full worker queue answers 503 (busy, retry) and books nothing") {
  SimNode n(SimNode::quick(), "", {2000, 1LL << 32}, {.threads = 1, .maxQueued = 1});
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  int finished = 0;
  // The one worker takes a job that waits for the gate, then the queue
  // fills behind it.
  std::atomic<bool> taken{false};
  REQUIRE(n.pool.submit([open, &taken] { taken = true; open.wait(); },
                        [&](WorkerPool::JobStatus) { ++finished; }).ok());
  while (!taken) std::this_thread::yield();
  int blockers = 1;
  while (n.pool.submit([open] { open.wait(); }, [&](WorkerPool::JobStatus) { ++finished; }).ok()) {
    ++blockers;
  }
  REQUIRE(blockers == 2);
  auto r = n.create(simSpec("busy", 100, 31000));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == 503);
  CHECK(r.message().find("worker queue full") != std::string::npos);
  CHECK(n.sim.find("busy") == nullptr);
  gate.set_value();
  REQUIRE(test::runUntil(n.loop, [&] { return finished == blockers; }));
  // Nothing was kept: the same id and host port are free again.
  auto again = n.create(simSpec("busy", 100, 31000));
  REQUIRE_MESSAGE(again.ok(), (again.ok() ? "" : again.message()));
  CHECK(n.settle("busy"));
  CHECK(n.phase("busy") == SandboxPhase::Running);
}
