// sandboxd-o: the sandboxd control plane. Wiring only.
#include <cstdio>
#include <filesystem>

#include "app/HttpDaemon.h"
#include "app/InstanceLock.h"
#include "app/MemoryTrim.h"
#include "app/SharedSecret.h"
#include "http/HttpClient.h"
#include "log/Log.h"
#include "orch/NodeClient.h"
#include "orch/NodeRegistry.h"
#include "orch/OrchApi.h"
#include "orch/OrchConfig.h"
#include "orch/SandboxController.h"
#include "orch/SqliteStore.h"
#include "orch/StoreWriter.h"
#include "reactor/WorkerPool.h"

using namespace sbx;

int main(int argc, char** argv) {
  orch::OrchConfigHooks hooks;
  hooks.validateListenAddress = [](std::string_view addr) -> Status {
    auto parsed = http::parseListenAddress(addr);
    if (!parsed.ok()) return parsed.error();
    return {};
  };
  auto loaded = orch::loadOrchConfig(argc, argv, config::processEnv(), config::readFileFromDisk, hooks);
  if (!loaded.ok()) {
    std::fprintf(stderr, "sandboxd-o: %s\n", loaded.message().c_str());
    return 2;
  }
  if (loaded->helpRequested) {
    std::fputs(loaded->helpText.c_str(), stdout);
    return 0;
  }
  orch::OrchConfig cfg = loaded->config;
  auto dur = [](std::chrono::nanoseconds d) { return std::chrono::duration_cast<Duration>(d); };

  // Two control planes on one database would schedule twice.
  auto instanceLock = app::lockInstance(cfg.sqlitePath + ".lock");
  if (!instanceLock.ok()) {
    logError("store", {{"error", instanceLock.message()}});
    return 1;
  }

  http::HttpServerOptions serverOptions;
  serverOptions.maxConnections = static_cast<size_t>(cfg.httpMaxConnections);
  serverOptions.maxBodyBytes = static_cast<size_t>(cfg.httpMaxBodyBytes);
  app::HttpDaemon daemon({"sandboxd-o", "sandboxd control plane (nodes, scheduling, proxy)", ":8082"},
                         cfg.httpAddr, dur(cfg.shutdownGrace), serverOptions);

  const std::string dataDir = std::filesystem::path(cfg.sqlitePath).parent_path().string();
  if (cfg.sharedSecret.empty()) {
    const std::string path = (dataDir.empty() ? "." : dataDir) + "/sbxorch_secret";
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
  const std::string nodeSecret = cfg.nodeSharedSecret.empty() ? cfg.sharedSecret : cfg.nodeSharedSecret;

  // The store is opened and read before the loop serves anyone (blocking,
  // once); every write after that goes through the worker pool.
  orch::SqliteStore store(cfg.sqlitePath);
  if (Status st = store.open(); !st.ok()) {
    logError("store", {{"error", st.message()}});
    return 1;
  }
  std::vector<orch::OrchNode> nodes;
  std::vector<orch::OrchSandbox> sandboxes;
  for (const char* collection : {"nodes", "sandboxes"}) {
    auto docs = store.loadAll(collection);
    if (!docs.ok()) {
      logError("store", {{"error", docs.message()}});
      return 1;
    }
    for (const auto& d : *docs) {
      if (std::string_view(collection) == "nodes") {
        auto n = orch::decodeNodeDoc(d.doc);
        if (n.ok()) {
          nodes.push_back(std::move(*n));
        } else {
          logWarn("stored node skipped", {{"id", d.id}, {"error", n.message()}});
        }
      } else {
        auto s = orch::decodeSandboxDoc(d.doc);
        if (s.ok()) {
          sandboxes.push_back(std::move(*s));
        } else {
          logWarn("stored sandbox skipped", {{"id", d.id}, {"error", s.message()}});
        }
      }
    }
  }
  logInfo("state loaded", {{"nodes", std::to_string(nodes.size())},
                           {"sandboxes", std::to_string(sandboxes.size())},
                           {"path", cfg.sqlitePath}});

  WorkerPool pool(daemon.loop(), {.threads = static_cast<size_t>(cfg.workerThreads), .maxQueued = 4096});
  // RSS follows what is in use after bursts (app/MemoryTrim.h).
  Timer memoryTrim = app::trimMemoryEvery(daemon.loop(), pool, std::chrono::seconds(30));
  orch::StoreWriter writer(daemon.loop(), pool, store);
  http::HttpClient http(daemon.loop());
  orch::NodeClient client(http, nodeSecret);

  orch::NodeRegistryConfig ncfg;
  ncfg.heartbeatInterval = dur(cfg.heartbeatInterval);
  ncfg.probeTimeout = dur(cfg.probeTimeout);
  ncfg.readySuccessThreshold = cfg.readySuccessThreshold;
  ncfg.notReadyFailureThreshold = cfg.notreadyFailureThreshold;
  orch::NodeRegistry registry(daemon.loop(), client, writer, ncfg);
  registry.load(std::move(nodes));

  orch::SandboxControllerConfig scfg;
  scfg.hostPortMin = cfg.hostPortMin;
  scfg.hostPortMax = cfg.hostPortMax;
  scfg.opTimeout = dur(cfg.sandboxOpTimeout);
  scfg.pendingTimeout = dur(cfg.pendingTimeout);
  scfg.statusSyncInterval = dur(cfg.statusSyncInterval);
  scfg.runningSyncInterval = dur(cfg.heartbeatInterval);
  orch::SandboxController controller(daemon.loop(), registry, client, writer, scfg);
  controller.load(std::move(sandboxes));
  registry.setListener([&](const orch::OrchNode& n, orch::NodeState previous, bool removed) {
    controller.onNodeChanged(n, previous, removed);
  });

  // Nodes of the configuration file: registered (or updated) as "config".
  for (const auto& cn : cfg.nodes) {
    registry.upsert(cn.id, cn.ip, cn.port, "config", cn.external,
                    [id = cn.id](Result<const orch::OrchNode*> r) {
                      if (!r.ok()) logError("config node", {{"node", id}, {"error", r.message()}});
                    });
  }

  orch::OrchApiOptions aopts;
  aopts.sharedSecret = cfg.sharedSecret;
  aopts.createRps = cfg.createRps;
  aopts.createBurst = cfg.createBurst;
  aopts.proxyTimeout = dur(cfg.sandboxOpTimeout);
  orch::OrchApi api(daemon.loop(), registry, controller, client, aopts);
  api.registerRoutes(daemon.router());

  registry.start();
  controller.start();

  daemon.onStop([&] {
    registry.stop();
    controller.stop();
    pool.shutdown();
  });
  return daemon.run();
}
