#include "node/SimRuntime.h"

#include <arpa/inet.h>

#include <charconv>

#include "log/Log.h"
#include "net/PortTable.h"
#include "node/Admission.h"
#include "node/SandboxStore.h"
#include "node/SbxletConfig.h"
#include "reactor/WorkerPool.h"

namespace sbx::node {

// ---- addresses -----------------------------------------------------------------------

Result<SimAddressPool> SimAddressPool::parse(const std::string& cidr) {
  if (Status st = validateSubnetCidr(cidr); !st.ok()) return st.error();
  const size_t slash = cidr.find('/');
  in_addr net{};
  ::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &net);
  int prefix = 0;
  std::from_chars(cidr.data() + slash + 1, cidr.data() + cidr.size(), prefix);
  const uint64_t size = uint64_t{1} << (32 - prefix);
  SimAddressPool pool;
  pool.first_ = ntohl(net.s_addr) + 2;
  pool.used_.assign(size - 3, false);
  return pool;
}

std::string SimAddressPool::allocate() {
  while (cursor_ < used_.size() && used_[cursor_]) ++cursor_;
  if (cursor_ == used_.size()) return "";
  used_[cursor_] = true;
  ++usedCount_;
  in_addr a{htonl(first_ + static_cast<uint32_t>(cursor_))};
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

int64_t SimAddressPool::indexOf(const std::string& ip) const {
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1) return -1;
  const uint32_t host = ntohl(a.s_addr);
  if (host < first_ || host - first_ >= used_.size()) return -1;
  return host - first_;
}

bool SimAddressPool::claim(const std::string& ip) {
  const int64_t i = indexOf(ip);
  if (i < 0 || used_[i]) return false;
  used_[i] = true;
  ++usedCount_;
  return true;
}

void SimAddressPool::release(const std::string& ip) {
  const int64_t i = indexOf(ip);
  if (i < 0 || !used_[i]) return;
  used_[i] = false;
  --usedCount_;
  if (static_cast<size_t>(i) < cursor_) cursor_ = i;
}

// ---- runtime -------------------------------------------------------------------------

SimRuntime::SimRuntime(EventLoop& loop, WorkerPool& pool, SandboxStore& store,
                       StatePersister& persister, Admission& admission, net::PortTable& ports,
                       SimConfig config)
    : loop_(loop),
      pool_(pool),
      store_(store),
      persister_(persister),
      admission_(admission),
      ports_(ports),
      config_(std::move(config)),
      random_(config_.seed ? config_.seed : std::random_device{}()) {}

SimRuntime::~SimRuntime() { *alive_ = false; }

Status SimRuntime::init() {
  auto pool = SimAddressPool::parse(config_.subnetCidr);
  if (!pool.ok()) return Error("subnet_cidr: " + pool.message());
  addresses_ = std::move(*pool);
  return Status();
}

SandboxState* SimRuntime::mutableFind(const std::string& id) {
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : &it->second;
}

const SandboxState* SimRuntime::find(const std::string& id) const {
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : &it->second;
}

void SimRuntime::persist(SandboxState& s, std::function<void(Status)> done) {
  s.updatedAt = rfc3339Now();
  ++s.version;
  persister_.persist(s, [id = s.id(), done = std::move(done)](Status st) {
    if (!st.ok()) logError("state write failed", {{"sandbox", id}, {"error", st.message()}});
    if (done) done(st);
  });
}

Duration SimRuntime::drawLatency() {
  if (config_.startJitter <= Duration::zero()) return config_.startLatency;
  std::uniform_int_distribution<int64_t> d(0, config_.startJitter.count());
  return config_.startLatency + Duration(d(random_));
}

bool SimRuntime::drawFailure() {
  if (config_.failurePercent <= 0) return false;
  std::uniform_int_distribution<int> d(0, 99);
  return d(random_) < config_.failurePercent;
}


void SimRuntime::create(SandboxSpec spec,
                        std::function<void(Result<const SandboxState*>)> accepted) {
  const std::string id = spec.id;
  if (sandboxes_.count(id)) {
    accepted(Error("sandbox already exists: " + id, 400));
    return;
  }
  if (Status booked = admitAndBook(admission_, ports_, spec); !booked.ok()) {
    accepted(booked.error());
    return;
  }
  SandboxState s = newSandboxState(std::move(spec), rfc3339Now());
  s.namespaceName = config_.namespaceName;
  s.runtime = "sim";
  s.subnetCidr = config_.subnetCidr;
  s.bridgeName = config_.bridgeName;
  s.cniConfPath = config_.cniConfPath;
  // Admission counted the address; the pool is never fuller than that.
  s.ip = addresses_.allocate();
  auto [it, inserted] = sandboxes_.emplace(id, std::move(s));
  startTimers_.emplace(id, Timer());
  // As with the real runtime, the state file exists before the client
  // hears "accepted".
  persist(it->second, [this, id, accepted = std::move(accepted),
                       alive = std::weak_ptr<bool>(alive_)](Status st) {
    if (alive.expired()) return;
    SandboxState* s = mutableFind(id);
    if (!s) {
      accepted(Error("sandbox " + id + " was deleted while being created", 409));
      return;
    }
    if (!st.ok()) {
      admission_.release(id);
      ports_.release(id);
      addresses_.release(s->ip);
      sandboxes_.erase(id);
      startTimers_.erase(id);
      persister_.erase(id);
      // A full worker queue is the node being busy (503: retry), not a fault.
      accepted(Error("cannot write state for sandbox " + id + ": " + st.message(),
                     st.error().code == 503 ? 503 : 500));
      return;
    }
    accepted(s);
    if (deleteWaiters_.count(id)) return;  // a delete came first
    startTimers_[id] = loop_.runAfter(drawLatency(), [this, id] { start(id); });
  });
}

void SimRuntime::start(const std::string& id) {
  startTimers_.erase(id);
  SandboxState* s = mutableFind(id);
  if (!s || s->phase != SandboxPhase::Creating) return;
  if (drawFailure()) {
    fail(*s, "sim: injected start failure (sim_failure_percent=" +
                 std::to_string(config_.failurePercent) + ")");
    return;
  }
  s->phase = SandboxPhase::Running;
  s->ready = true;
  for (auto& c : s->containers) {
    c.phase = ContainerPhase::Running;
    c.taskStatus = "running";
  }
  persist(*s);
}

void SimRuntime::fail(SandboxState& s, const std::string& message) {
  logWarn("sandbox failed", {{"sandbox", s.id()}, {"error", message}});
  s.phase = SandboxPhase::Error;
  s.error = message;
  // Like the real runtime, a failed sandbox keeps its admission until it is
  // deleted, but what it ran on is released: here its address.
  addresses_.release(s.ip);
  s.ip.clear();
  for (auto& c : s.containers) {
    if (c.phase == ContainerPhase::Creating) {
      c.phase = ContainerPhase::Error;
      c.error = message;
    }
    c.taskStatus = "not_found";
  }
  persist(s);
}

void SimRuntime::remove(const std::string& id, std::function<void(Status)> done) {
  SandboxState* s = mutableFind(id);
  if (!s) {
    done({});
    return;
  }
  auto& waiters = deleteWaiters_[id];
  waiters.push_back(std::move(done));
  if (waiters.size() > 1) return;  // a delete is under way
  // Still waiting for its create's state write: that callback sees the
  // waiter and does not start it; the delete goes on from here.
  beginDelete(id);
}

void SimRuntime::beginDelete(const std::string& id) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  startTimers_.erase(id);
  s->phase = SandboxPhase::Deleting;
  s->updatedAt = rfc3339Now();
  ++s->version;
  // No runtime to stop: the directory goes (after any write in flight),
  // then the bookings. A crash before it is gone leaves the sandbox to be
  // found again at start, as the client was not told it was deleted.
  persister_.erase(id, [this, id, alive = std::weak_ptr<bool>(alive_)](Status st) {
    if (alive.expired()) return;
    finishDelete(id, st);
  });
}

void SimRuntime::finishDelete(const std::string& id, Status st) {
  std::vector<std::function<void(Status)>> waiters;
  if (auto it = deleteWaiters_.find(id); it != deleteWaiters_.end()) {
    waiters = std::move(it->second);
    deleteWaiters_.erase(it);
  }
  if (!st.ok()) {
    logError("delete failed", {{"sandbox", id}, {"error", st.message()}});
    for (auto& w : waiters) w(st);
    return;
  }
  if (SandboxState* s = mutableFind(id)) addresses_.release(s->ip);
  admission_.release(id);
  ports_.release(id);
  sandboxes_.erase(id);
  for (auto& w : waiters) w({});
}

void SimRuntime::refresh(const std::string& id,
                         std::function<void(Result<const SandboxState*>)> done) {
  const SandboxState* s = find(id);
  if (!s) return done(Error("sandbox not found: " + id, 404));
  done(s);
}

void SimRuntime::reconcile(std::function<void(Status)> done) {
  if (reconciling_) return done({});
  reconciling_ = true;
  auto r = pool_.call([this]() { return store_.listIds(); },
                      [this, done, alive = std::weak_ptr<bool>(alive_)](
                          std::optional<std::vector<std::string>> ids) {
                        if (alive.expired()) return;
                        reconciling_ = false;
                        if (!ids) return done(Error("reconcile cancelled"));
                        for (const auto& id : *ids) {
                          if (sandboxes_.count(id)) continue;
                          logInfo("removing state of no sandbox", {{"sandbox", id}});
                          persister_.erase(id);
                        }
                        done({});
                      },
                      "sim-reconcile");
  if (!r.ok()) {
    reconciling_ = false;
    done(r.error());
  }
}

void SimRuntime::recover(std::function<void(std::vector<std::string>)> done) {
  Status r = persister_.loadAll([this, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
                                    std::optional<StatePersister::Loaded> l) {
    if (alive.expired()) return;
    if (!l) return done({"state load cancelled"});
    for (auto& st : l->states) {
      const std::string id = st.id();
      admission_.restore(id, st.spec.totalCpuMillis(), st.spec.totalMemoryBytes());
      ports_.restore(id, hostPorts(st.spec));
      if (!st.ip.empty() && !addresses_.claim(st.ip)) {
        l->problems.push_back(id + ": address " + st.ip + " outside " + config_.subnetCidr +
                              " or taken twice; cleared");
        st.ip.clear();
      }
      const SandboxPhase phase = st.phase;
      auto [it, inserted] = sandboxes_.emplace(id, std::move(st));
      if (phase == SandboxPhase::Creating) {
        fail(it->second, "provisioning interrupted by an sbxlet restart");
      } else if (phase == SandboxPhase::Deleting) {
        deleteWaiters_[id];
        beginDelete(id);
      }
    }
    done(std::move(l->problems));
  });
  if (!r.ok()) done({r.message()});
}

}  // namespace sbx::node
