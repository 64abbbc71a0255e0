#include "node/Provisioner.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "base/Quantity.h"
#include "log/Log.h"
#include "net/Cni.h"
#include "net/Firewall.h"
#include "net/Netns.h"
#include "net/PortTable.h"
#include "net/ProbeRunner.h"
#include "node/Admission.h"
#include "node/ImageService.h"
#include "node/SandboxStore.h"
#include "reactor/WorkerPool.h"
#include "runtime/OciSpec.h"

namespace sbx::node {

using runtime::ContainerdCall;
using runtime::TaskStatus;

struct Provisioner::Job {
  bool stepInFlight = false;     // a create step runs on the pool
  bool deleteRequested = false;  // a delete arrived meanwhile
  bool deleting = false;
  bool killed = false;
  bool timedOut = false;         // provision_timeout passed while a step ran
  bool tearingDown = false;      // deleteTeardown's job runs
  std::vector<std::function<void(Status)>> deleteWaiters;
  Timer timer;
  // Images, in container order, while they are being ensured.
  std::vector<runtime::ImageInfo> images;
  size_t imagesPending = 0;
  std::string imageError;
  // The fork of network and runtime (runc): branches still running, and
  // the first error of either.
  int forkPending = 0;
  std::string forkError;
};

namespace {

// Label keys on everything sbxlet creates in containerd: reconcile finds
// orphans by them.
constexpr char kLabelSandbox[] = "sandboxd.io/sandbox";
constexpr char kLabelContainer[] = "sandboxd.io/container";

std::string leaseId(const std::string& sandboxId) { return "sandboxd-" + sandboxId; }

}  // namespace

// runsc finds containers by id prefix within its root ("id \"a-b\" is
// ambiguous" once "a-b-c" exists), and ids are "<sandbox>-<name>", so ids of
// different sandboxes can be prefixes of each other. A root per container
// makes every lookup unambiguous; the root goes with the container.
std::string Provisioner::runtimeRootFor(const std::string& containerId) const {
  return config_.runtimeRoot.empty() ? "" : config_.runtimeRoot + "/" + containerId;
}

namespace {

// Image env first, the request's overriding it key by key.
std::vector<std::string> mergeEnv(const std::vector<std::string>& image,
                                  const std::vector<std::string>& request) {
  std::vector<std::string> out;
  auto key = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  for (const auto& e : image) {
    bool overridden = false;
    for (const auto& r : request) overridden = overridden || key(r) == key(e);
    if (!overridden) out.push_back(e);
  }
  out.insert(out.end(), request.begin(), request.end());
  return out;
}

// "1000", "1000:1000"; user names would need the image's /etc/passwd: 0.
void parseUser(const std::string& user, uint32_t& uid, uint32_t& gid) {
  uid = gid = 0;
  if (user.empty()) return;
  size_t colon = user.find(':');
  std::string u = user.substr(0, colon);
  std::string g = colon == std::string::npos ? "" : user.substr(colon + 1);
  auto num = [](const std::string& s, uint32_t& out) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9) return;
    out = static_cast<uint32_t>(std::stoul(s));
  };
  num(u, uid);
  num(g, gid);
}

bool ignorable(const Error& e) { return runtime::isNotFound(e); }

std::vector<net::PortMapping> cniPorts(const SandboxSpec& spec) {
  std::vector<net::PortMapping> out;
  for (const auto& p : spec.ports) {
    if (p.hostPort > 0) {
      out.push_back({static_cast<uint16_t>(p.hostPort), static_cast<uint16_t>(p.containerPort), p.protocol});
    }
  }
  return out;
}

}  // namespace

Provisioner::Provisioner(EventLoop& loop, WorkerPool& pool, runtime::ContainerdClient& containerd,
                         ImageService& images, SandboxStore& store, StatePersister& persister,
                         Admission& admission, net::Netns& netns, NetworkParts network,
                         ProvisionerConfig config)
    : loop_(loop),
      pool_(pool),
      containerd_(containerd),
      images_(images),
      store_(store),
      persister_(persister),
      admission_(admission),
      netns_(netns),
      net_(network),
      config_(std::move(config)) {}

Provisioner::~Provisioner() { *alive_ = false; }

Status Provisioner::runJob(const char* tag, std::function<Status()> work,
                           std::function<void(Status)> done) {
  // Status through a shared slot rather than WorkerPool::call's
  // std::optional<Status>, which trips GCC 12's -Wmaybe-uninitialized.
  auto result = std::make_shared<Status>();
  auto submitted = pool_.submit(
      [result, work = std::move(work)] { *result = work(); },
      [result, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
          WorkerPool::JobStatus st) {
        if (alive.expired()) return;
        done(st == WorkerPool::JobStatus::Done ? *result : Status(Error("cancelled")));
      },
      tag);
  if (!submitted.ok()) return submitted.error();
  return {};
}

SandboxState* Provisioner::mutableFind(const std::string& id) {
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : &it->second;
}

const SandboxState* Provisioner::find(const std::string& id) const {
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : &it->second;
}

void Provisioner::touch(SandboxState& s) {
  s.updatedAt = rfc3339Now();
  ++s.version;
}

void Provisioner::persist(SandboxState& s, std::function<void(Status)> done) {
  touch(s);
  persister_.persist(s, [id = s.id(), done = std::move(done)](Status st) {
    if (!st.ok()) logError("state write failed", {{"sandbox", id}, {"error", st.message()}});
    if (done) done(st);
  });
}

// ---- create ------------------------------------------------------------------------

void Provisioner::create(SandboxSpec spec,
                         std::function<void(Result<const SandboxState*>)> accepted) {
  const std::string id = spec.id;
  if (sandboxes_.count(id)) {
    accepted(Error("sandbox already exists: " + id, 400));
    return;
  }
  if (releasing_.count(id)) {
    accepted(Error("sandbox " + id + " is being cleaned up; retry in a moment", 409));
    return;
  }
  if (Status booked = admitAndBook(admission_, *net_.ports, spec); !booked.ok()) {
    accepted(booked.error());
    return;
  }
  SandboxState s = newSandboxState(std::move(spec), rfc3339Now());
  s.namespaceName = config_.namespaceName;
  s.runtime = config_.runtime;
  s.subnetCidr = config_.subnetCidr;
  s.bridgeName = config_.bridgeName;
  s.cniConfPath = config_.cniConfPath;
  s.netnsPath = netns_.path(config_.netnsPrefix + id);
  for (const auto& c : s.containers) containerToSandbox_[c.id] = id;
  auto [it, inserted] = sandboxes_.emplace(id, std::move(s));
  jobs_[id] = std::make_unique<Job>();
  // The state file exists before the client hears "accepted": a crash after
  // the 202 never loses the sandbox.
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
      net_.ports->release(id);
      for (const auto& c : s->containers) containerToSandbox_.erase(c.id);
      sandboxes_.erase(id);
      jobs_.erase(id);
      persister_.erase(id);
      // A full worker queue is the node being busy (503: retry), not a fault.
      accepted(Error("cannot write state for sandbox " + id + ": " + st.message(),
                     st.error().code == 503 ? 503 : 500));
      return;
    }
    accepted(s);
    startProvisioning(id);
  });
}

void Provisioner::startProvisioning(const std::string& id) {
  provisionTimers_[id] = loop_.runAfter(config_.provisionTimeout, [this, id] {
    provisionTimers_.erase(id);
    SandboxState* s = mutableFind(id);
    if (!s || s->phase != SandboxPhase::Creating) return;
    const std::string msg = "provisioning timed out after " + formatDuration(config_.provisionTimeout);
    auto it = jobs_.find(id);
    if (it != jobs_.end() && it->second->stepInFlight) {
      it->second->timedOut = true;  // the step's completion fails it
      return;
    }
    failCreate(id, msg);
  });
  stepNetns(id);
}

// True when the provision timer fired while a step ran: the step's
// completion fails the sandbox instead of going on.
bool Provisioner::timedOut(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || !it->second->timedOut) return false;
  failCreate(id, "provisioning timed out after " + formatDuration(config_.provisionTimeout));
  return true;
}

void Provisioner::stepNetns(const std::string& id) {
  Job& job = *jobs_[id];
  job.stepInFlight = true;
  const std::string name = config_.netnsPrefix + id;
  const SandboxState* s = find(id);
  const bool egress = s->spec.egress;
  const bool overlap = config_.runtime == "runc";
  auto attachment = std::make_shared<net::CniAttachment>();
  // The namespace, and (serial order) its network.
  auto attach = [this, name, id, egress, attachment](const std::string& path) -> Status {
    auto attached = net_.cni->attach(id, path);
    if (!attached.ok()) return Error("network: " + attached.message());
    *attachment = *attached;
    Status st = net_.firewall->addSandbox(id, attached->ip, egress, attached->hostVeth);
    if (!st.ok()) return Error("network: firewall: " + st.message());
    return {};
  };
  auto netnsPath = std::make_shared<std::string>();
  Status r = runJob(
      "netns-create",
      [this, name, id, overlap, attach, netnsPath]() -> Status {
        Status st = store_.prepare(id);
        if (!st.ok()) return st;
        auto created = netns_.create(name);
        if (!created.ok()) return Error("network namespace: " + created.message());
        *netnsPath = *created;
        return overlap ? Status() : attach(*created);
      },
      [this, id, overlap, attach, attachment, netnsPath](Status st) {
        Job* job = jobs_.count(id) ? jobs_[id].get() : nullptr;
        if (!job) return;
        job->stepInFlight = false;
        recordAttachment(id, *attachment);
        if (job->deleteRequested) return beginDelete(id);
        if (!st.ok()) return failCreate(id, st.message());
        if (timedOut(id)) return;
        if (!overlap) return stepImages(id);
        // Fork: the network on one worker, images and containers meanwhile.
        job->stepInFlight = true;
        job->forkPending = 2;
        job->forkError.clear();
        Status submitted = runJob(
            "network", [attach, netnsPath]() -> Status { return attach(*netnsPath); },
            [this, id, attachment](Status st) {
              recordAttachment(id, *attachment);
              forkDone(id, st);
            });
        if (!submitted.ok()) forkDone(id, Error("network: " + submitted.message()));
        stepImages(id);
      });
  if (!r.ok()) {
    job.stepInFlight = false;
    failCreate(id, "network: " + r.message());
  }
}

void Provisioner::recordAttachment(const std::string& id, const net::CniAttachment& attachment) {
  if (attachment.ip.empty()) return;
  if (SandboxState* s = mutableFind(id)) {
    s->ip = attachment.ip;
    s->cniResult = attachment.result;
    s->hostVeth = attachment.hostVeth;
    persist(*s);
  }
}

// One branch of the fork ended; at the join, go on (start the tasks) or
// fail with the first error, both branches being done by then.
void Provisioner::forkDone(const std::string& id, Status st) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& job = *it->second;
  if (!st.ok() && job.forkError.empty()) job.forkError = st.message();
  if (--job.forkPending > 0) return;
  job.stepInFlight = false;
  if (job.deleteRequested) return beginDelete(id);
  if (!job.forkError.empty()) return failCreate(id, job.forkError);
  if (timedOut(id)) return;
  stepStart(id);
}

void Provisioner::stepImages(const std::string& id) {
  SandboxState* s = mutableFind(id);
  Job& job = *jobs_[id];
  job.images.assign(s->spec.containers.size(), {});
  job.imagesPending = s->spec.containers.size();
  job.imageError.clear();
  const bool forked = job.forkPending > 0;
  job.stepInFlight = true;
  for (size_t i = 0; i < s->spec.containers.size(); ++i) {
    images_.ensure(s->spec.containers[i].image,
                   [this, id, i, forked, alive = std::weak_ptr<bool>(alive_)](
                       Result<runtime::ImageInfo> r) {
                     if (alive.expired()) return;
                     auto it = jobs_.find(id);
                     if (it == jobs_.end()) return;
                     Job& j = *it->second;
                     if (r.ok()) {
                       j.images[i] = *r;
                       if (SandboxState* st = mutableFind(id)) st->containers[i].image = r->name;
                     } else if (j.imageError.empty()) {
                       j.imageError = r.message();
                     }
                     if (--j.imagesPending > 0) return;
                     if (forked) {
                       // Containers and tasks are made even if a delete
                       // came: the join deletes them with the rest.
                       if (!j.imageError.empty() || j.deleteRequested) {
                         return forkDone(id, Error(j.imageError.empty() ? "deleted"
                                                                        : j.imageError));
                       }
                       return stepRuntime(id, std::move(j.images), false);
                     }
                     j.stepInFlight = false;
                     if (j.deleteRequested) return beginDelete(id);
                     if (!j.imageError.empty()) return failCreate(id, j.imageError);
                     if (timedOut(id)) return;
                     stepRuntime(id, std::move(j.images), true);
                   });
  }
}

struct Provisioner::RuntimePlan {
  std::string sandboxId;
  std::string lease;
  std::string netnsPath;
  struct Container {
    std::string id;
    std::string name;
    std::string chainId;
    std::string specJson;
    std::string logPath;
  };
  std::vector<Container> containers;
};

struct Provisioner::StartOutcome {
  Status status;
  std::vector<uint32_t> pids;
};

// Containers and tasks; with `start`, the tasks are started too (the serial
// order); without, the fork's join starts them (stepStart).
void Provisioner::stepRuntime(const std::string& id, std::vector<runtime::ImageInfo> images,
                              bool start) {
  SandboxState* s = mutableFind(id);
  RuntimePlan plan;
  plan.sandboxId = id;
  plan.lease = leaseId(id);
  plan.netnsPath = s->netnsPath;
  for (size_t i = 0; i < s->spec.containers.size(); ++i) {
    const ContainerSpec& cs = s->spec.containers[i];
    const runtime::ImageInfo& img = images[i];
    runtime::OciSpecInput in;
    if (!cs.args.empty()) {
      in.args = cs.args;
    } else {
      in.args = img.entrypoint;
      in.args.insert(in.args.end(), img.cmd.begin(), img.cmd.end());
    }
    if (in.args.empty()) {
      const std::string msg =
          "container " + cs.name + ": no command: args is empty and the image has no entrypoint or cmd";
      return start ? failCreate(id, msg) : forkDone(id, Error(msg));
    }
    in.env = mergeEnv(img.env, cs.env);
    in.cwd = !cs.workDir.empty() ? cs.workDir : (!img.workingDir.empty() ? img.workingDir : "/");
    parseUser(img.user, in.uid, in.gid);
    in.hostname = id;
    in.netnsPath = s->netnsPath;
    in.cpuMillis = cs.resource.cpuMillis;
    in.memoryBytes = cs.resource.memoryBytes;
    in.pidsLimit = config_.pidsLimit;
    int64_t ephemeral = cs.resource.ephemeralStorageBytes > 0 ? cs.resource.ephemeralStorageBytes
                                                              : config_.defaultEphemeralBytes;
    in.tmpBytes = ephemeral / 5;  // SPEC: 20% of ephemeralStorage for /tmp
    in.cgroupsPath = config_.cgroupParent + "/" + s->containers[i].id;
    in.annotations["sandboxd.io/sandbox"] = id;
    plan.containers.push_back(RuntimePlan::Container{s->containers[i].id, cs.name, img.chainId,
                                                     runtime::buildOciSpec(in),
                                                     store_.logPath(id, cs.name)});
  }

  Job& job = *jobs_[id];
  job.stepInFlight = true;
  // A shared slot rather than WorkerPool::call's std::optional, which trips
  // GCC 12's -Wmaybe-uninitialized here.
  auto slot = std::make_shared<StartOutcome>();
  auto r = pool_.submit(
      [this, slot, plan = std::move(plan), start] { *slot = [&]() -> StartOutcome {
        StartOutcome out;
        ContainerdCall call;
        call.lease = plan.lease;
        call.timeout = config_.callTimeout;
        Status st = containerd_.createLease(plan.lease, {{kLabelSandbox, plan.sandboxId}}, call);
        if (!st.ok() && !runtime::isAlreadyExists(st.error())) {
          out.status = st;
          return out;
        }
        for (const auto& c : plan.containers) {
          std::map<std::string, std::string> labels = {{kLabelSandbox, plan.sandboxId},
                                                       {kLabelContainer, c.name}};
          auto mounts = containerd_.prepareSnapshot(config_.snapshotter, c.id, c.chainId, labels, call);
          if (!mounts.ok()) {
            out.status = Error("container " + c.name + ": " + mounts.message());
            return out;
          }
          runtime::ContainerCreate cc;
          cc.id = c.id;
          cc.image = "";
          cc.labels = labels;
          cc.runtimeName = config_.runtimeType;
          cc.runtimeBinary = config_.runtimeBinary;
          cc.runtimeRoot = runtimeRootFor(c.id);
          cc.specJson = c.specJson;
          cc.snapshotter = config_.snapshotter;
          cc.snapshotKey = c.id;
          st = containerd_.createContainer(cc, call);
          if (!st.ok()) {
            out.status = Error("container " + c.name + ": " + st.message());
            return out;
          }
          runtime::TaskCreate tc;
          tc.containerId = c.id;
          tc.rootfs = *mounts;
          tc.stdoutUri = "file://" + c.logPath;
          tc.stderrUri = "file://" + c.logPath;
          auto pid = containerd_.createTask(tc, call);
          if (!pid.ok()) {
            out.status = Error("container " + c.name + ": " + pid.message());
            return out;
          }
        }
        if (!start) return out;
        for (const auto& c : plan.containers) {
          auto pid = containerd_.startTask(c.id, call);
          if (!pid.ok()) {
            out.status = Error("container " + c.name + ": " + pid.message());
            return out;
          }
          out.pids.push_back(*pid);
        }
        return out;
      }(); },
      [this, id, start, slot, alive = std::weak_ptr<bool>(alive_)](WorkerPool::JobStatus st) {
        if (alive.expired()) return;
        const bool ran = st == WorkerPool::JobStatus::Done;
        if (!start) {
          forkDone(id, !ran ? Status(Error("provisioning cancelled")) : slot->status);
          return;
        }
        onStarted(id, ran ? slot.get() : nullptr);
      },
      "provision");
  if (!r.ok()) {
    if (!start) return forkDone(id, r.error());
    job.stepInFlight = false;
    failCreate(id, r.message());
  }
}

// The fork's join: every task was created and the network is in place.
void Provisioner::stepStart(const std::string& id) {
  SandboxState* s = mutableFind(id);
  Job& job = *jobs_[id];
  std::vector<std::pair<std::string, std::string>> containers;  // id, name
  for (const auto& c : s->containers) containers.emplace_back(c.id, c.name);
  job.stepInFlight = true;
  auto slot = std::make_shared<StartOutcome>();
  auto r = pool_.submit(
      [this, slot, containers, lease = leaseId(id)] {
        ContainerdCall call;
        call.lease = lease;
        call.timeout = config_.callTimeout;
        for (const auto& [cid, name] : containers) {
          auto pid = containerd_.startTask(cid, call);
          if (!pid.ok()) {
            slot->status = Error("container " + name + ": " + pid.message());
            return;
          }
          slot->pids.push_back(*pid);
        }
      },
      [this, id, slot, alive = std::weak_ptr<bool>(alive_)](WorkerPool::JobStatus st) {
        if (alive.expired()) return;
        onStarted(id, st == WorkerPool::JobStatus::Done ? slot.get() : nullptr);
      },
      "provision-start");
  if (!r.ok()) {
    job.stepInFlight = false;
    failCreate(id, r.message());
  }
}

void Provisioner::onStarted(const std::string& id, const StartOutcome* out) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  it->second->stepInFlight = false;
  SandboxState* s = mutableFind(id);
  if (!s) return;
  if (out && out->status.ok()) {
    for (size_t i = 0; i < s->containers.size() && i < out->pids.size(); ++i) {
      auto& c = s->containers[i];
      // An exit event may already have arrived for a short-lived task.
      if (c.phase == ContainerPhase::Creating) {
        c.phase = ContainerPhase::Running;
        c.taskStatus = "running";
      }
      c.taskPid = out->pids[i];
    }
  }
  if (it->second->deleteRequested) return beginDelete(id);
  if (!out) return failCreate(id, "provisioning cancelled");
  if (!out->status.ok()) return failCreate(id, out->status.message());
  if (timedOut(id)) return;
  if (s->phase != SandboxPhase::Creating) return;  // a task exited already
  persist(*s);
  stepAwaitReady(id);
}

// Every task runs: with a readiness probe the sandbox stays creating until
// the probe has passed successThreshold times; then its host ports are
// published and it is running.
void Provisioner::stepAwaitReady(const std::string& id) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  if (!s->spec.readinessProbe) return publishAndRun(id);
  const ReadinessProbe& p = *s->spec.readinessProbe;
  net::ProbeSpec ps;
  ps.protocol = p.protocol == "http" ? net::ProbeSpec::Protocol::Http : net::ProbeSpec::Protocol::Tcp;
  ps.host = s->ip;
  ps.port = static_cast<uint16_t>(p.port);
  ps.path = p.path.empty() ? "/" : p.path;
  ps.initialDelay = std::chrono::seconds(p.initialDelaySeconds);
  ps.period = std::chrono::seconds(p.periodSeconds);
  ps.timeout = std::chrono::seconds(p.timeoutSeconds);
  ps.successThreshold = p.successThreshold;
  ps.failureThreshold = p.failureThreshold;
  stopProbe(id);
  auto started = net_.probes->start(ps, [this, id](const net::ProbeOutcome& o) {
    onProbeOutcome(id, o.kind == net::ProbeOutcome::Kind::Ready, o.message);
  });
  if (!started.ok()) {
    // Validation admits only valid probes; a refusal here is a bug to see.
    if (s->phase == SandboxPhase::Creating) failCreate(id, started.message());
    return;
  }
  probes_[id] = *started;
}

void Provisioner::stopProbe(const std::string& id) {
  auto it = probes_.find(id);
  if (it == probes_.end()) return;
  net_.probes->stop(it->second);
  probes_.erase(it);
}

void Provisioner::onProbeOutcome(const std::string& id, bool ready, const std::string& message) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  if (ready) {
    if (s->phase == SandboxPhase::Creating) publishAndRun(id);
    return;
  }
  probes_.erase(id);  // a failed probe has stopped
  if (s->phase == SandboxPhase::Creating) return failCreate(id, message);
  if (s->phase == SandboxPhase::Running) {
    logWarn("sandbox unhealthy", {{"sandbox", id}, {"error", message}});
    s->phase = SandboxPhase::Error;
    s->error = message;
    persist(*s);
  }
}

void Provisioner::publishAndRun(const std::string& id) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  auto run = [this, id] {
    SandboxState* s = mutableFind(id);
    if (!s || s->phase != SandboxPhase::Creating) return;
    provisionTimers_.erase(id);
    s->phase = SandboxPhase::Running;
    s->ready = true;
    jobs_.erase(id);
    persist(*s);
    logInfo("sandbox running", {{"sandbox", id}});
  };
  std::vector<net::PortMapping> ports = cniPorts(s->spec);
  if (ports.empty() || s->portsPublished) return run();
  Job& job = *jobs_[id];
  job.stepInFlight = true;
  Status r = runJob(
      "publish-ports",
      [this, id, netns = s->netnsPath, result = s->cniResult, ports]() -> Status {
        return net_.cni->publishPorts(id, netns, result, ports);
      },
      [this, id, run](Status st) {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        it->second->stepInFlight = false;
        SandboxState* s = mutableFind(id);
        if (!s) return;
        // Published (or partly): the teardown must undo it either way.
        s->portsPublished = true;
        if (it->second->deleteRequested) return beginDelete(id);
        if (!st.ok()) return failCreate(id, "publish host ports: " + st.message());
        if (timedOut(id)) return;
        run();
      });
  if (!r.ok()) {
    job.stepInFlight = false;
    failCreate(id, "publish host ports: " + r.message());
  }
}

void Provisioner::failCreate(const std::string& id, const std::string& message) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  stopProbe(id);
  provisionTimers_.erase(id);
  logWarn("sandbox failed", {{"sandbox", id}, {"error", message}});
  s->phase = SandboxPhase::Error;
  s->error = message;
  for (auto& c : s->containers) {
    if (c.phase == ContainerPhase::Creating) {
      c.phase = ContainerPhase::Error;
      c.error = message;
    }
  }
  persist(*s);
  // Release what the sandbox got so far; the record stays (phase error)
  // until it is deleted, and keeps its admission until then.
  auto& slot = jobs_[id];
  if (!slot) slot = std::make_unique<Job>();
  Job& job = *slot;
  job.stepInFlight = true;
  job.timedOut = false;
  SandboxState snapshot = *s;
  Status r = runJob("release", [this, snapshot]() { return releaseRuntime(snapshot); },
                      [this, id](Status st) {
                        auto it = jobs_.find(id);
                        if (it == jobs_.end()) return;
                        it->second->stepInFlight = false;
                        if (!st.ok()) {
                          logError("release after failure", {{"sandbox", id}, {"error", st.message()}});
                        }
                        if (SandboxState* s = mutableFind(id)) {
                          for (auto& c : s->containers) {
                            c.taskPid = 0;
                            c.taskStatus = "not_found";
                          }
                        }
                        if (it->second->deleteRequested) return beginDelete(id);
                        jobs_.erase(it);
                      });
  if (!r.ok()) job.stepInFlight = false;
}

// ---- delete ------------------------------------------------------------------------

void Provisioner::remove(const std::string& id, std::function<void(Status)> done) {
  SandboxState* s = mutableFind(id);
  if (!s) {
    done({});
    return;
  }
  auto& slot = jobs_[id];
  if (!slot) slot = std::make_unique<Job>();
  Job& job = *slot;
  job.deleteWaiters.push_back(std::move(done));
  if (job.deleting || job.deleteRequested) return;
  if (job.stepInFlight) {
    job.deleteRequested = true;  // picked up when the running step reports
    return;
  }
  beginDelete(id);
}

bool Provisioner::anyTaskAlive(const SandboxState& s) const {
  for (const auto& c : s.containers) {
    if (c.phase == ContainerPhase::Running) return true;
  }
  return false;
}

void Provisioner::beginDelete(const std::string& id) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  auto& slot = jobs_[id];
  if (!slot) slot = std::make_unique<Job>();
  slot->deleting = true;
  slot->deleteRequested = false;
  stopProbe(id);
  provisionTimers_.erase(id);
  s->phase = SandboxPhase::Deleting;
  persist(*s);
  if (!anyTaskAlive(*s)) return deleteTeardown(id);
  deleteStopTasks(id, SIGTERM);
}

void Provisioner::deleteStopTasks(const std::string& id, uint32_t signal) {
  SandboxState* s = mutableFind(id);
  std::vector<std::string> ids;
  for (const auto& c : s->containers) {
    if (c.phase == ContainerPhase::Running) ids.push_back(c.id);
  }
  Job& job = *jobs_[id];
  job.killed = signal == SIGKILL;
  Status r = runJob(
      "kill",
      [this, ids, signal]() -> Status {
        ContainerdCall call;
        call.timeout = config_.callTimeout;
        for (const auto& cid : ids) {
          Status st = containerd_.killTask(cid, signal, true, call);
          if (!st.ok() && !ignorable(st.error()) &&
              st.error().code != runtime::kErrFailedPrecondition) {
            return st;
          }
        }
        return {};
      },
      [this, id](Status st) {
        if (!st.ok()) logWarn("kill failed", {{"sandbox", id}, {"error", st.message()}});
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        deleteWaitForExits(id, it->second->killed);
      });
  if (!r.ok()) deleteTeardown(id);
}

void Provisioner::deleteWaitForExits(const std::string& id, bool killed) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  if (!anyTaskAlive(*s)) return deleteTeardown(id);
  Job& job = *jobs_[id];
  // Exit events end the wait early (onTaskEvent); the timer bounds it.
  job.timer = loop_.runAfter(killed ? config_.killWait : config_.stopGrace, [this, id, killed] {
    if (!killed) {
      deleteStopTasks(id, SIGKILL);
    } else {
      deleteTeardown(id);
    }
  });
}

void Provisioner::deleteTeardown(const std::string& id) {
  SandboxState* s = mutableFind(id);
  if (!s) return;
  Job& job = *jobs_[id];
  job.timer.cancel();
  // Once: the last exit event and the kill job's completion can both find
  // every task gone, and two teardowns at once would race each other's CNI
  // DELs and containerd deletes.
  if (job.tearingDown) return;
  job.tearingDown = true;
  SandboxState snapshot = *s;
  Status r = runJob(
      "teardown",
      [this, snapshot]() -> Status { return releaseRuntime(snapshot); },
      [this, id, alive = std::weak_ptr<bool>(alive_)](Status st) {
        if (!st.ok()) return finishDelete(id, st);
        // The state file and logs last, through the persister: after any
        // write of this sandbox still in flight, which would otherwise bring
        // the directory back.
        persister_.erase(id, [this, id, alive](Status st) {
          if (!alive.expired()) finishDelete(id, st);
        });
      });
  if (!r.ok()) finishDelete(id, r.error());
}

void Provisioner::finishDelete(const std::string& id, Status st) {
  auto jit = jobs_.find(id);
  std::vector<std::function<void(Status)>> waiters;
  if (jit != jobs_.end()) waiters = std::move(jit->second->deleteWaiters);
  if (!st.ok()) {
    // Keep the record (phase deleting) so a retry or reconcile finishes it.
    logError("delete failed", {{"sandbox", id}, {"error", st.message()}});
    if (jit != jobs_.end()) {
      jit->second->deleting = false;
      jit->second->tearingDown = false;
    }
    for (auto& w : waiters) w(st);
    return;
  }
  if (SandboxState* s = mutableFind(id)) {
    for (const auto& c : s->containers) containerToSandbox_.erase(c.id);
  }
  admission_.release(id);
  net_.ports->release(id);
  sandboxes_.erase(id);
  jobs_.erase(id);
  logInfo("sandbox deleted", {{"sandbox", id}});
  for (auto& w : waiters) w({});
}

namespace {

// Removes the cgroup `path` in every v1 hierarchy (and the unified one).
// Runtimes remove their cgroups themselves, but runsc does it after its
// sandbox process is gone, which can be after containerd's delete returned:
// wait for that (bounded) and remove what is left, so a delete never leaves
// one behind. EBUSY means processes are still leaving; if they have not
// left after half a second they are orphans of a create that a crash cut
// short (runsc's sandbox and gofer outlive a shim that died mid-create), and
// since everything in the container's cgroup belongs to that container, they
// are killed.
void killCgroupProcesses(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files = {dir / "cgroup.procs"};
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_directory(ec)) files.push_back(it->path() / "cgroup.procs");
  }
  for (const auto& f : files) {
    std::ifstream in(f);
    for (long pid = 0; in >> pid;) {
      if (pid > 1) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
  }
}

Status removeCgroup(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string last;
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    fs::path dir = entry.path() / fs::path(path).relative_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (!fs::exists(dir, ec)) break;
      // Children first (runsc nests per-container cgroups).
      std::vector<fs::path> dirs;
      for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_directory(ec)) dirs.push_back(it->path());
      }
      std::sort(dirs.rbegin(), dirs.rend());
      for (const auto& d : dirs) ::rmdir(d.c_str());
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      last = dir.string() + ": " + std::strerror(errno);
      if (attempt % 25 == 24) killCgroupProcesses(dir);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (fs::exists(dir, ec)) return Error("cgroup " + last);
  }
  return {};
}

// `<runtime> --root ROOT delete --force ID`, bounded to 10 s. Needed when a
// create was cut short (sbxlet killed mid-call): containerd forgets the task
// but the runtime's own state and a `runc init` waiting on its fifo remain.
Status forceDeleteInRuntime(const std::string& binary, const std::string& root,
                            const std::string& id) {
  std::vector<std::string> args = {binary, "--root", root, "delete", "--force", id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    return Error("spawn " + binary + ": " + std::strerror(errno));
  }
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
      return Error(binary + " delete --force " + id + " failed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return Error(binary + " delete --force " + id + " timed out");
}

}  // namespace

Status Provisioner::releaseRuntime(const SandboxState& s) {
  ContainerdCall call;
  call.timeout = config_.callTimeout;
  Status first;
  auto note = [&](const Status& st) {
    if (!st.ok() && !ignorable(st.error()) && first.ok()) first = st;
  };
  for (const auto& c : s.containers) {
    // Verify-and-retry: after a crash, a task create the previous process
    // started may still land in containerd moments after this first pass.
    for (int pass = 0; pass < 3; ++pass) {
      auto task = containerd_.getTask(c.id, call);
      if (task.ok() && task->status != TaskStatus::NotFound) {
        if (task->status != TaskStatus::Stopped) {
          Status killed = containerd_.killTask(c.id, SIGKILL, true, call);
          (void)killed;  // the wait below tells whether it took
          for (int i = 0; i < 100; ++i) {
            auto t = containerd_.getTask(c.id, call);
            if (!t.ok() || t->status == TaskStatus::Stopped || t->status == TaskStatus::NotFound) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }
        auto del = containerd_.deleteTask(c.id, call);
        if (!del.ok()) note(del.error());
      } else if (!task.ok()) {
        note(task.error());
      }
      note(containerd_.deleteContainer(c.id, call));
      note(containerd_.removeSnapshot(config_.snapshotter, c.id, call));
      auto again = containerd_.getTask(c.id, call);
      auto container = containerd_.getContainer(c.id, call);
      bool gone = again.ok() && again->status == TaskStatus::NotFound && !container.ok() &&
                  runtime::isNotFound(container.error());
      if (gone) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    if (!config_.runtimeRoot.empty()) {
      // The shim keeps the runtime's state under <root>/<namespace>/<id>.
      const std::string nsRoot = runtimeRootFor(c.id) + "/" + config_.namespaceName;
      std::error_code ec;
      if (std::filesystem::exists(nsRoot + "/" + c.id, ec)) {
        const std::string binary = config_.runtimeBinary.empty() ? "runc" : config_.runtimeBinary;
        note(forceDeleteInRuntime(binary, nsRoot, c.id));
      }
    }
    note(removeCgroup(config_.cgroupParent + "/" + c.id));
    if (!config_.runtimeRoot.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(runtimeRootFor(c.id), ec);
      // ENOENT: the runtime removed (part of) it meanwhile.
      if (ec && ec != std::errc::no_such_file_or_directory) {
        note(Status(Error("remove " + runtimeRootFor(c.id) + ": " + ec.message())));
      }
    }
  }
  note(containerd_.deleteLease(leaseId(s.id()), false, call));
  // The network before the namespace: the bridge plugin's DEL reads the
  // sandbox's addresses inside it to remove its masquerade rule.
  const std::string nsPath = netns_.exists(config_.netnsPrefix + s.id()) ? netns_.path(config_.netnsPrefix + s.id()) : "";
  note(net_.cni->detach(s.id(), nsPath, s.cniResult, cniPorts(s.spec)));
  note(net_.firewall->removeSandbox(s.id()));
  note(netns_.remove(config_.netnsPrefix + s.id()));
  return first;
}

// ---- events and refresh ------------------------------------------------------------------

void Provisioner::onTaskEvent(const runtime::TaskEvent& ev) {
  auto m = containerToSandbox_.find(ev.containerId);
  if (m == containerToSandbox_.end()) return;
  SandboxState* s = mutableFind(m->second);
  if (!s) return;
  ContainerStatus* c = nullptr;
  for (auto& cc : s->containers) {
    if (cc.id == ev.containerId) c = &cc;
  }
  if (!c) return;
  if (ev.kind == runtime::TaskEvent::Kind::Oom) {
    c->oomKilled = true;
    return;  // the exit follows
  }
  if (ev.kind != runtime::TaskEvent::Kind::Exit || (!ev.execId.empty() && ev.execId != ev.containerId)) {
    return;
  }
  c->phase = ContainerPhase::Exited;
  c->exitCode = ev.exitStatus;
  c->taskStatus = "stopped";
  auto jit = jobs_.find(s->id());
  if (jit != jobs_.end() && jit->second->deleting) {
    if (!anyTaskAlive(*s)) deleteTeardown(s->id());
    return;
  }
  if (s->phase == SandboxPhase::Running || s->phase == SandboxPhase::Creating) {
    stopProbe(s->id());
    provisionTimers_.erase(s->id());
    s->phase = SandboxPhase::Error;
    s->error = "container " + c->name + " exited with code " + std::to_string(ev.exitStatus) +
               (c->oomKilled ? " (OOM killed)" : "");
  }
  persist(*s);
}

void Provisioner::refresh(const std::string& id,
                          std::function<void(Result<const SandboxState*>)> done) {
  SandboxState* s = mutableFind(id);
  if (!s) {
    done(Error("sandbox not found: " + id, 404));
    return;
  }
  std::vector<std::string> ids;
  for (const auto& c : s->containers) ids.push_back(c.id);
  auto r = pool_.call(
      [this, ids]() -> Result<std::vector<runtime::TaskInfo>> {
        ContainerdCall call;
        call.timeout = config_.callTimeout;
        std::vector<runtime::TaskInfo> out;
        for (const auto& cid : ids) {
          auto t = containerd_.getTask(cid, call);
          if (!t.ok()) return t.error();
          out.push_back(*t);
        }
        return out;
      },
      [this, id, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
          std::optional<Result<std::vector<runtime::TaskInfo>>> r) {
        if (alive.expired()) return;
        SandboxState* s = mutableFind(id);
        if (!s) return done(Error("sandbox not found: " + id, 404));
        if (!r) return done(Error("refresh cancelled", 500));
        if (!r->ok()) return done(Error("runtime refresh: " + r->message(), 500));
        for (const auto& t : r->value()) {
          for (auto& c : s->containers) {
            if (c.id != t.containerId) continue;
            c.taskStatus = runtime::taskStatusName(t.status);
            if (t.status != TaskStatus::NotFound) c.taskPid = t.pid;
          }
        }
        done(static_cast<const SandboxState*>(s));
      },
      "refresh");
  if (!r.ok()) done(Error(r.message(), 503));
}

// ---- reconcile ---------------------------------------------------------------------------

struct Provisioner::Orphans {
  std::set<std::string> known;  // sandbox ids when the scan started
  // Sandboxes running (no job) when the scan started: only their tasks are
  // judged by the task list, which a sandbox created meanwhile is not in.
  std::set<std::string> running;
  // Sandbox id → its containerd container ids, for sandboxes nobody owns
  // (found by label, lease, netns, firewall tag, IP lease or directory).
  std::map<std::string, std::vector<std::string>> sandboxes;
  std::map<std::string, runtime::TaskInfo> tasks;  // every task, by container id
  Status scanError;
};

namespace {
bool looksLikeIpv4(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789.") == std::string::npos &&
         std::count(s.begin(), s.end(), '.') == 3;
}
}  // namespace

void Provisioner::reconcile(std::function<void(Status)> done) {
  reconcileWaiters_.push_back(std::move(done));
  if (reconciling_) return;  // the pass under way answers everyone
  reconciling_ = true;
  auto found = std::make_shared<Orphans>();
  for (const auto& [id, s] : sandboxes_) {
    found->known.insert(id);
    if (s.phase == SandboxPhase::Running && !jobs_.count(id)) found->running.insert(id);
  }
  Status r = runJob(
      "reconcile-scan",
      [this, found]() -> Status {
        ContainerdCall call;
        call.timeout = config_.callTimeout;
        auto add = [&](const std::string& id) {
          if (!id.empty() && !found->known.count(id)) found->sandboxes[id];
        };
        auto containers = containerd_.listContainers("labels.\"" + std::string(kLabelSandbox) + "\"", call);
        if (!containers.ok()) return containers.error();
        for (const auto& c : *containers) {
          auto it = c.labels.find(kLabelSandbox);
          if (it == c.labels.end() || found->known.count(it->second)) continue;
          found->sandboxes[it->second].push_back(c.id);
        }
        auto tasks = containerd_.listTasks(call);
        if (!tasks.ok()) return tasks.error();
        for (const auto& t : *tasks) found->tasks[t.containerId] = t;
        auto leases = containerd_.listLeases("", call);
        if (!leases.ok()) return leases.error();
        // By label: image pulls hold leases of their own ("sandboxd-pull-…"),
        // which are not sandboxes'. Those of pulls a killed sbxlet left
        // (with their half-unpacked snapshots) go now.
        auto stale = images_.puller().releaseStaleLeases(call);
        if (!stale.ok()) return stale.error();
        if (*stale > 0) logInfo("stale image-pull leases released", {{"count", std::to_string(*stale)}});
        for (const auto& l : *leases) {
          auto it = l.labels.find(kLabelSandbox);
          if (it != l.labels.end() && l.id == leaseId(it->second)) add(it->second);
        }
        for (const auto& name : netns_.list(config_.netnsPrefix)) add(name.substr(config_.netnsPrefix.size()));
        auto tagged = net_.firewall->sandboxIds();
        if (!tagged.ok()) return tagged.error();
        for (const auto& id : *tagged) add(id);
        std::error_code ec;
        if (!config_.ipamLeaseDir.empty()) {
          for (const auto& e : std::filesystem::directory_iterator(config_.ipamLeaseDir, ec)) {
            if (!looksLikeIpv4(e.path().filename().string())) continue;
            std::ifstream in(e.path());
            std::string owner;
            std::getline(in, owner);
            while (!owner.empty() && (owner.back() == '\r' || owner.back() == '\n')) owner.pop_back();
            add(owner);
          }
        }
        for (const auto& id : store_.listIds()) add(id);
        return {};
      },
      [this, found](Status st) {
        // Sandboxes created since the scan started are not orphans.
        for (auto it = found->sandboxes.begin(); it != found->sandboxes.end();) {
          it = sandboxes_.count(it->first) ? found->sandboxes.erase(it) : std::next(it);
        }
        if (st.ok()) checkTasks(found->running, found->tasks);
        retryDeletes();
        found->scanError = st;
        releaseOrphans(found, [this](Status st) {
          reconciling_ = false;
          auto waiters = std::move(reconcileWaiters_);
          reconcileWaiters_.clear();
          for (auto& w : waiters) w(st);
        });
      });
  if (!r.ok()) {
    reconciling_ = false;
    auto waiters = std::move(reconcileWaiters_);
    reconcileWaiters_.clear();
    for (auto& w : waiters) w(r);
  }
}

// A delete that failed (containerd was down, say) left its sandbox in phase
// deleting with no job: each reconcile pass tries it again.
void Provisioner::retryDeletes() {
  std::vector<std::string> ids;
  for (const auto& [id, s] : sandboxes_) {
    if (s.phase != SandboxPhase::Deleting) continue;
    auto j = jobs_.find(id);
    if (j != jobs_.end() && (j->second->deleting || j->second->deleteRequested || j->second->stepInFlight)) {
      continue;
    }
    ids.push_back(id);
  }
  for (const auto& id : ids) {
    logInfo("reconcile: retrying delete", {{"sandbox", id}});
    beginDelete(id);
  }
}

// A running sandbox whose task is gone or stopped without the event having
// reached us (missed while the stream reconnected, or sbxlet was down)
// becomes error with the exit code.
void Provisioner::checkTasks(const std::set<std::string>& runningAtScan,
                             const std::map<std::string, runtime::TaskInfo>& tasks) {
  for (auto& [id, s] : sandboxes_) {
    if (!runningAtScan.count(id) || s.phase != SandboxPhase::Running || jobs_.count(id)) continue;
    for (const auto& c : s.containers) {
      if (c.phase != ContainerPhase::Running) continue;
      auto t = tasks.find(c.id);
      runtime::TaskEvent ev;
      ev.kind = runtime::TaskEvent::Kind::Exit;
      ev.containerId = c.id;
      if (t == tasks.end()) {
        ev.exitStatus = 255;  // the task vanished: no exit status to report
      } else if (t->second.status == TaskStatus::Stopped) {
        ev.exitStatus = t->second.exitStatus;
      } else {
        continue;
      }
      logWarn("reconcile: task gone", {{"sandbox", id}, {"container", c.name}});
      onTaskEvent(ev);
      break;  // onTaskEvent may have changed the sandbox; the next pass sees the rest
    }
  }
}

void Provisioner::releaseOrphans(std::shared_ptr<Orphans> found, std::function<void(Status)> done) {
  if (found->sandboxes.empty()) return done(found->scanError);
  // Blocked for creates while released, so a create of the same id cannot
  // race the release of its namesake's leftovers.
  for (const auto& [id, cids] : found->sandboxes) releasing_.insert(id);
  Status r = runJob(
      "reconcile-release",
      [this, found]() -> Status {
        Status first = found->scanError;
        for (const auto& [id, cids] : found->sandboxes) {
          SandboxState orphan;
          orphan.spec.id = id;
          // Its ports are unknown; portmap's DEL acts only on a non-empty
          // list and then removes the sandbox's own chains whatever ports
          // the list names.
          orphan.spec.ports.push_back(PortMapping{1, 1, "tcp"});
          for (const auto& cid : cids) {
            ContainerStatus c;
            c.id = cid;
            c.name = cid;
            orphan.containers.push_back(c);
          }
          Status st = releaseRuntime(orphan);
          if (st.ok()) st = store_.remove(id);
          logInfo("reconcile: released orphan", {{"sandbox", id}, {"ok", st.ok() ? "true" : st.message()}});
          if (!st.ok() && first.ok()) first = st;
        }
        return first;
      },
      [this, found, done](Status st) {
        for (const auto& [id, cids] : found->sandboxes) releasing_.erase(id);
        done(st);
      });
  if (!r.ok()) {
    for (const auto& [id, cids] : found->sandboxes) releasing_.erase(id);
    done(r);
  }
}

// ---- recovery ----------------------------------------------------------------------------

void Provisioner::recover(std::function<void(std::vector<std::string>)> done) {
  Status r = persister_.loadAll(
      [this, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](std::optional<StatePersister::Loaded> l) {
        if (alive.expired()) return;
        if (!l) return done({"state load cancelled"});
        for (auto& st : l->states) {
          const std::string id = st.id();
          admission_.restore(id, st.spec.totalCpuMillis(), st.spec.totalMemoryBytes());
          net_.ports->restore(id, hostPorts(st.spec));
          for (const auto& c : st.containers) containerToSandbox_[c.id] = id;
          SandboxPhase phase = st.phase;
          sandboxes_.emplace(id, std::move(st));
          jobs_[id] = std::make_unique<Job>();
          if (phase == SandboxPhase::Creating) {
            failCreate(id, "provisioning interrupted by an sbxlet restart");
          } else if (phase == SandboxPhase::Deleting) {
            beginDelete(id);
          } else {
            jobs_.erase(id);
            refresh(id, [](Result<const SandboxState*>) {});
            // A running sandbox keeps being probed (failures now are "after
            // ready").
            const SandboxState* s = find(id);
            if (s->phase == SandboxPhase::Running && s->spec.readinessProbe) stepAwaitReady(id);
          }
        }
        done(std::move(l->problems));
      });
  if (!r.ok()) done({r.message()});
}

}  // namespace sbx::node
