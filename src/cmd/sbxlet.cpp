// sbxlet: the sandboxd node agent. Wiring only.
#include <cstdio>
#include <memory>

#include "app/HttpDaemon.h"
#include "app/InstanceLock.h"
#include "app/MemoryTrim.h"
#include "app/SharedSecret.h"
#include "base/Quantity.h"
#include "log/Log.h"
#include "http/HttpClient.h"
#include "net/Cni.h"
#include "net/Firewall.h"
#include "net/Netns.h"
#include "net/PortTable.h"
#include "net/ProbeRunner.h"
#include "node/Admission.h"
#include "node/ImageService.h"
#include "node/Provisioner.h"
#include "node/SandboxApi.h"
#include "node/SandboxStore.h"
#include "node/SimRuntime.h"
#include "node/SbxletConfig.h"
#include "reactor/WorkerPool.h"
#include "runtime/ContainerdClient.h"
#include "runtime/ImagePuller.h"
#include "runtime/RegistryClient.h"
#include "runtime/TaskEventStream.h"

using namespace sbx;

namespace {

runtime::RegistryConfig registryConfig(const node::SbxletConfig& cfg) {
  runtime::RegistryConfig r;
  r.mirrors = cfg.registryMirrors;
  r.insecure = cfg.insecureRegistries;
  return r;
}

// The real runtime's parts (runc, runsc): containerd, images, the network
// (CNI, firewall, host ports, probes) and the Provisioner that drives them.
struct RealRuntime {
  RealRuntime(app::HttpDaemon& daemon, const node::SbxletConfig& cfg, WorkerPool& pool,
              node::SandboxStore& store, node::StatePersister& persister,
              node::Admission& admission)
      : daemon(daemon),
        cfg(cfg),
        pool(pool),
        store(store),
        persister(persister),
        admission(admission),
        containerd(runtime::ContainerdOptions{.address = cfg.containerdAddress,
                                              .namespaceName = cfg.containerdNamespace}),
        registry(registryConfig(cfg)),
        puller(containerd, registry),
        images(pool, puller, std::chrono::duration_cast<Duration>(cfg.imagePullTimeout)),
        probeHttp(daemon.loop()),
        probes(daemon.loop(), probeHttp) {}

  // The network's conflist written (or an operator's checked) and the
  // firewall's base chains in place before the first sandbox; then the
  // provisioner and containerd's event stream. Blocking, but before the
  // loop serves anyone.
  Status init() {
    net::CniConfig ccfg;
    ccfg.binDir = cfg.cniBinDir;
    ccfg.confPath = cfg.cniConfPath;
    ccfg.bridge = cfg.bridgeInterface;
    ccfg.subnetCidr = cfg.subnetCidr;
    ccfg.ipamDataDir = cfg.stateDir + "/cni/networks";
    cni = std::make_unique<net::Cni>(ccfg);
    if (Status st = cni->ensureConfig(); !st.ok()) return Error("cni configuration: " + st.message());
    net::FirewallConfig fcfg;
    fcfg.bridge = cfg.bridgeInterface;
    fcfg.subnetCidr = cfg.subnetCidr;
    fcfg.egressDenyCidrs = cfg.egressDenyCidrs;
    firewall = std::make_unique<net::Firewall>(fcfg);
    if (Status st = firewall->ensureBase(); !st.ok()) return Error("firewall: " + st.message());
    if (Status st = firewall->ensureMasquerade(); !st.ok()) return Error("firewall: " + st.message());

    node::ProvisionerConfig pcfg;
    pcfg.namespaceName = cfg.containerdNamespace;
    pcfg.runtime = cfg.runtime;
    pcfg.runtimeType = cfg.runtimeType;
    pcfg.runtimeBinary = cfg.runtimeBinary;
    pcfg.runtimeRoot = cfg.runtimeRoot;
    pcfg.subnetCidr = cfg.subnetCidr;
    pcfg.bridgeName = cfg.bridgeInterface;
    pcfg.cniConfPath = cfg.cniConfPath;
    pcfg.defaultEphemeralBytes = cfg.defaultEphemeralStorageBytes;
    pcfg.netnsPrefix = cfg.netnsPrefix;
    pcfg.provisionTimeout = std::chrono::duration_cast<Duration>(cfg.provisionTimeout);
    pcfg.ipamLeaseDir = ccfg.ipamDataDir + "/" + cni->networkName();
    node::NetworkParts network{cni.get(), firewall.get(), &ports, &probes};
    provisioner = std::make_unique<node::Provisioner>(daemon.loop(), pool, containerd, images, store,
                                                      persister, admission, netns, network, pcfg);
    events = std::make_unique<runtime::TaskEventStream>(
        daemon.loop(), containerd,
        [this](const runtime::TaskEvent& ev) { provisioner->onTaskEvent(ev); },
        [](const std::string& err) { logWarn("containerd event stream reconnected", {{"after", err}}); });
    events->start();
    return Status();
  }

  app::HttpDaemon& daemon;
  const node::SbxletConfig& cfg;
  WorkerPool& pool;
  node::SandboxStore& store;
  node::StatePersister& persister;
  node::Admission& admission;
  runtime::ContainerdClient containerd;
  runtime::RegistryClient registry;
  runtime::ImagePuller puller;
  node::ImageService images;
  net::Netns netns;
  net::PortTable ports;
  http::HttpClient probeHttp;
  net::ProbeRunner probes;
  std::unique_ptr<net::Cni> cni;
  std::unique_ptr<net::Firewall> firewall;
  std::unique_ptr<node::Provisioner> provisioner;
  std::unique_ptr<runtime::TaskEventStream> events;
};

}  // namespace

int main(int argc, char** argv) {
  node::SbxletConfigHooks hooks;
  hooks.validateListenAddress = [](std::string_view addr) -> Status {
    auto parsed = http::parseListenAddress(addr);
    if (!parsed.ok()) return parsed.error();
    return {};
  };
  auto loaded = node::loadSbxletConfig(argc, argv, config::processEnv(), config::readFileFromDisk, hooks);
  if (!loaded.ok()) {
    std::fprintf(stderr, "sbxlet: %s\n", loaded.message().c_str());
    return 2;
  }
  if (loaded->helpRequested) {
    std::fputs(loaded->helpText.c_str(), stdout);
    return 0;
  }
  node::SbxletConfig cfg = loaded->config;

  // Before anything touches the state directory or containerd.
  auto instanceLock = app::lockInstance(cfg.stateDir + "/sbxlet.lock");
  if (!instanceLock.ok()) {
    logError("state directory", {{"error", instanceLock.message()}});
    return 1;
  }

  http::HttpServerOptions serverOptions;
  serverOptions.maxConnections = static_cast<size_t>(cfg.httpMaxConnections);
  serverOptions.maxBodyBytes = static_cast<size_t>(cfg.httpMaxBodyBytes);
  app::HttpDaemon daemon({"sbxlet", "sandboxd node agent", ":8080"}, cfg.httpAddr,
                         std::chrono::duration_cast<Duration>(cfg.shutdownGrace), serverOptions);

  if (cfg.sharedSecret.empty()) {
    const std::string path = cfg.stateDir + "/secret";
    auto secret = app::loadOrCreateSecret(path);
    if (!secret.ok()) {
      logError("shared secret", {{"error", secret.message()}});
      return 1;
    }
    cfg.sharedSecret = *secret;
    logInfo("shared secret in use", {{"path", path}});
    if (std::string w = app::secretFileWarning(path); !w.empty()) {
      logWarn("shared secret file", {{"warning", w}});
    }
  }

  WorkerPool pool(daemon.loop(), {.threads = static_cast<size_t>(cfg.workerThreads), .maxQueued = 4096});
  // RSS follows what is in use after bursts (app/MemoryTrim.h).
  Timer memoryTrim = app::trimMemoryEvery(daemon.loop(), pool, std::chrono::seconds(30));
  node::SandboxStore store(cfg.stateDir + "/sandboxes");
  node::StatePersister persister(store, pool);
  node::HostResources capacity = node::HostResources::detect();
  if (cfg.runtime == "sim") {
    // Checked when the configuration was loaded.
    if (!cfg.simCpu.empty()) capacity.cpuMilli = *parseCpuMillis(cfg.simCpu);
    if (!cfg.simMemory.empty()) capacity.memoryBytes = *parseMemoryBytes(cfg.simMemory);
  }
  node::Admission admission(capacity, cfg.maxAllocPercent);
  admission.setAddressPool(cfg.subnetCidr);

  std::unique_ptr<RealRuntime> real;
  std::unique_ptr<net::PortTable> simPorts;
  std::unique_ptr<node::SimRuntime> sim;
  node::SandboxBackend* backend = nullptr;
  if (cfg.runtime == "sim") {
    // A hollow node (scale tests): no containerd, network or firewall.
    simPorts = std::make_unique<net::PortTable>([](uint16_t, const std::string&) { return Status(); });
    node::SimConfig scfg;
    scfg.startLatency = std::chrono::duration_cast<Duration>(cfg.simStartLatency);
    scfg.startJitter = std::chrono::duration_cast<Duration>(cfg.simStartJitter);
    scfg.failurePercent = cfg.simFailurePercent;
    scfg.subnetCidr = cfg.subnetCidr;
    scfg.bridgeName = cfg.bridgeInterface;
    scfg.cniConfPath = cfg.cniConfPath;
    scfg.namespaceName = cfg.containerdNamespace;
    sim = std::make_unique<node::SimRuntime>(daemon.loop(), pool, store, persister, admission,
                                             *simPorts, scfg);
    if (Status st = sim->init(); !st.ok()) {
      logError("sim runtime", {{"error", st.message()}});
      return 1;
    }
    logWarn("runtime sim: a hollow node for scale tests; nothing runs",
            {{"start_latency_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      cfg.simStartLatency).count())},
             {"failure_percent", std::to_string(cfg.simFailurePercent)}});
    backend = sim.get();
  } else {
    real = std::make_unique<RealRuntime>(daemon, cfg, pool, store, persister, admission);
    if (Status st = real->init(); !st.ok()) {
      logError("runtime setup", {{"error", st.message()}});
      return 1;
    }
    backend = real->provisioner.get();
  }

  node::SandboxApiOptions aopts;
  aopts.sharedSecret = cfg.sharedSecret;
  aopts.logReadLimitContainer = cfg.logReadLimitContainerBytes;
  aopts.logReadLimitSandbox = cfg.logReadLimitSandboxBytes;
  aopts.externalAddress = cfg.externalAddress;
  aopts.loop = &daemon.loop();
  node::SandboxApi api(*backend, admission, pool, aopts);
  api.registerRoutes(daemon.router());

  // Periodic reconcile once the state is loaded (a pass under way is never
  // doubled: reconcile() joins it).
  Timer reconcileTimer;
  backend->recover([&](std::vector<std::string> problems) {
    for (const auto& p : problems) logWarn("state file skipped", {{"problem", p}});
    logInfo("state recovered");
    auto pass = [&] {
      backend->reconcile([](Status st) {
        if (!st.ok()) logWarn("reconcile", {{"error", st.message()}});
      });
    };
    // At once (what a killed sbxlet left goes now, not an interval later),
    // then periodically.
    pass();
    reconcileTimer = daemon.loop().runEvery(std::chrono::duration_cast<Duration>(cfg.reconcileInterval), pass);
  });

  daemon.onStop([&] {
    reconcileTimer.cancel();
    if (real) real->events->stop();
    pool.shutdown();
  });
  return daemon.run();
}
