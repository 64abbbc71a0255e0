// sbxlet: the sandboxd node agent. Wiring only.
#include <cstdio>

#include "app/HttpDaemon.h"
#include "app/SharedSecret.h"
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
#include "node/SbxletConfig.h"
#include "reactor/WorkerPool.h"
#include "runtime/ContainerdClient.h"
#include "runtime/ImagePuller.h"
#include "runtime/RegistryClient.h"
#include "runtime/TaskEventStream.h"

using namespace sbx;

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
  }

  WorkerPool pool(daemon.loop(), {.threads = static_cast<size_t>(cfg.workerThreads), .maxQueued = 4096});
  runtime::ContainerdOptions copts;
  copts.address = cfg.containerdAddress;
  copts.namespaceName = cfg.containerdNamespace;
  runtime::ContainerdClient containerd(copts);
  runtime::RegistryConfig rcfg;
  rcfg.mirrors = cfg.registryMirrors;
  rcfg.insecure = cfg.insecureRegistries;
  runtime::RegistryClient registry(rcfg);
  runtime::ImagePuller puller(containerd, registry);
  node::ImageService images(pool, puller, std::chrono::duration_cast<Duration>(cfg.imagePullTimeout));
  node::SandboxStore store(cfg.stateDir + "/sandboxes");
  node::StatePersister persister(store, pool);
  node::Admission admission(node::HostResources::detect(), cfg.maxAllocPercent);
  net::Netns netns;
  admission.setAddressPool(cfg.subnetCidr);

  // The network: conflist written (or an operator's checked) and the
  // firewall's base chains in place before the first sandbox. Blocking, but
  // before the loop serves anyone.
  net::CniConfig ccfg;
  ccfg.binDir = cfg.cniBinDir;
  ccfg.confPath = cfg.cniConfPath;
  ccfg.bridge = cfg.bridgeInterface;
  ccfg.subnetCidr = cfg.subnetCidr;
  ccfg.ipamDataDir = cfg.stateDir + "/cni/networks";
  net::Cni cni(ccfg);
  if (Status st = cni.ensureConfig(); !st.ok()) {
    logError("cni configuration", {{"error", st.message()}});
    return 1;
  }
  net::FirewallConfig fcfg;
  fcfg.bridge = cfg.bridgeInterface;
  fcfg.subnetCidr = cfg.subnetCidr;
  fcfg.egressDenyCidrs = cfg.egressDenyCidrs;
  net::Firewall firewall(fcfg);
  if (Status st = firewall.ensureBase(); !st.ok()) {
    logError("firewall", {{"error", st.message()}});
    return 1;
  }
  if (Status st = firewall.ensureMasquerade(); !st.ok()) {
    logError("firewall", {{"error", st.message()}});
    return 1;
  }
  net::PortTable ports;
  http::HttpClient probeHttp(daemon.loop());
  net::ProbeRunner probes(daemon.loop(), probeHttp);
  node::NetworkParts network{&cni, &firewall, &ports, &probes};

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
  pcfg.ipamLeaseDir = ccfg.ipamDataDir + "/" + cni.networkName();
  node::Provisioner provisioner(daemon.loop(), pool, containerd, images, store, persister,
                                admission, netns, network, pcfg);

  runtime::TaskEventStream events(
      daemon.loop(), containerd, [&](const runtime::TaskEvent& ev) { provisioner.onTaskEvent(ev); },
      [](const std::string& err) { logWarn("containerd event stream reconnected", {{"after", err}}); });
  events.start();

  node::SandboxApiOptions aopts;
  aopts.sharedSecret = cfg.sharedSecret;
  aopts.logReadLimitContainer = cfg.logReadLimitContainerBytes;
  aopts.logReadLimitSandbox = cfg.logReadLimitSandboxBytes;
  aopts.externalAddress = cfg.externalAddress;
  aopts.loop = &daemon.loop();
  node::SandboxApi api(provisioner, admission, pool, aopts);
  api.registerRoutes(daemon.router());

  // Periodic reconcile once the state is loaded (a pass under way is never
  // doubled: reconcile() joins it).
  Timer reconcileTimer;
  provisioner.recover([&](std::vector<std::string> problems) {
    for (const auto& p : problems) logWarn("state file skipped", {{"problem", p}});
    logInfo("state recovered");
    reconcileTimer = daemon.loop().runEvery(std::chrono::duration_cast<Duration>(cfg.reconcileInterval), [&] {
      provisioner.reconcile([](Status st) {
        if (!st.ok()) logWarn("reconcile", {{"error", st.message()}});
      });
    });
  });

  daemon.onStop([&] {
    reconcileTimer.cancel();
    events.stop();
    pool.shutdown();
  });
  return daemon.run();
}
