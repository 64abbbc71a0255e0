#pragma once
// OrchConfig: the control plane's configuration (SPEC §2 "Configuration")
// and how it is loaded: defaults < /var/lib/sandboxd/sbxorch_config.json (or
// -c FILE) < ORCH_<KEY> (and the seed's SANDBOX_LOG_DIR,
// SANDBOX_LOG_FILE_PREFIX, APP_ENV) < --key-name flags. The rules are
// config::ConfigSchema's; this file only lists the keys.
//
// main():
//   orch::OrchConfigHooks hooks;
//   hooks.validateListenAddress = [](std::string_view a) -> Status {
//     auto r = http::parseListenAddress(a);
//     return r ? Status() : Status(r.error());
//   };
//   auto loaded = orch::loadOrchConfig(argc, argv, config::processEnv(),
//                                      config::readFileFromDisk, hooks);
//   if (!loaded) { fprintf(stderr, "sandboxd-o: %s\n", loaded.message().c_str()); return 2; }
//   if (loaded->helpRequested) { fputs(loaded->helpText.c_str(), stdout); return 0; }
//   const orch::OrchConfig& cfg = loaded->config;
//
// shared_secret and node_shared_secret are never printed: not by --help,
// not in LoadOutcome::effective (redacted), not in any error message. Do not
// log OrchConfig as a whole; log `effective` instead.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "config/ConfigSchema.h"

namespace sbx::orch {

inline constexpr std::string_view kOrchDefaultConfigFile = "/var/lib/sandboxd/sbxorch_config.json";

// A node listed in the configuration, registered at start with
// source "config".
struct ConfiguredNode {
  std::string id;        // also its name
  std::string ip;        // passed validateNodeAddress()
  int port = 8080;       // the sbxlet's port, 1..65535
  std::string external;  // "" = none; reported as resources.external
  bool operator==(const ConfiguredNode&) const = default;
};

// Field defaults are not repeated here: they live in the schema (one place),
// see defaultOrchConfig(). A value-initialized OrchConfig is all zeros.
struct OrchConfig {
  std::string httpAddr;  // ":8082"
  // Bearer token clients must send (every endpoint but /healthz). "" means:
  // the daemon generates one at first start and keeps it; that is the
  // daemon's job, not the loader's. Never log it.
  std::string sharedSecret;
  // Bearer token the control plane sends to the nodes' sbxlets. "" = use
  // sharedSecret (after the daemon has resolved it). Never log it.
  std::string nodeSharedSecret;
  std::string sqlitePath;                         // "/var/lib/sandboxd/orchestrator.db"
  std::chrono::nanoseconds heartbeatInterval{0};  // 10s
  std::chrono::nanoseconds probeTimeout{0};       // 3s: each heartbeat request
  int readySuccessThreshold = 0;                  // 2 successes in a row: Ready
  int notreadyFailureThreshold = 0;               // 2 failures in a row: NotReady
  int hostPortMin = 0;                            // 10000
  int hostPortMax = 0;                            // 32767; hostPortMin <= hostPortMax
  int createRps = 0;                              // 20 sandbox creates per second...
  int createBurst = 0;                            // ...with bursts of 40
  std::chrono::nanoseconds sandboxOpTimeout{0};   // 60s: one call to a node for a sandbox
  std::vector<ConfiguredNode> nodes;              // []
  // Ours, beyond SPEC's table.
  std::chrono::nanoseconds pendingTimeout{0};      // 10m: Pending longer than this is Failed
  std::chrono::nanoseconds statusSyncInterval{0};  // 20ms: in-flight sandboxes polled on nodes
  int workerThreads = 0;                           // 4: SQLite writes and other blocking work
  std::chrono::nanoseconds shutdownGrace{0};       // 10s
  int httpMaxConnections = 0;                      // 10000
  int64_t httpMaxBodyBytes = 0;                    // 1Mi
  std::string logDir;                              // "" = stderr
  std::string logFilePrefix;                       // "sandboxd-o"
  std::string appEnv;                              // ""
};

struct OrchConfigHooks {
  // Checks http_addr; main wires http::parseListenAddress (the config layer
  // does not link the HTTP layer). Unset: http_addr is not checked here.
  std::function<Status(std::string_view)> validateListenAddress;
};

// The schema of every key (for --help, tests, docs). `hooks` supplies the
// http_addr check.
config::ConfigSchema<OrchConfig> orchConfigSchema(const OrchConfigHooks& hooks = {});

// The defaults of SPEC's table (and ours), as loaded with no file,
// environment or flags.
OrchConfig defaultOrchConfig();

using OrchLoadOutcome = config::LoadOutcome<OrchConfig>;

// Loads the configuration. Either a config or, for -h/--help, helpRequested
// with helpText (print it, exit 0). Errors name the key and the value's
// source; exit 2 on them. Besides each key's own checks, the host port range
// is checked across keys:
//   invalid host port range: host_port_min 20000 (from --host-port-min) is
//   greater than host_port_max 10000 (from default)
Result<OrchLoadOutcome> loadOrchConfig(int argc, const char* const* argv,
                                       const config::EnvLookup& env,
                                       const config::FileReader& readFile,
                                       const OrchConfigHooks& hooks = {});

// Decodes and checks the `nodes` key's JSON text (an array of objects with
// "id" (required), "ip" (required), "port" (default 8080) and "external";
// null members count as absent, unknown members are refused). Messages name
// the item, as the key's validator reports them:
//   nodes[1].ip: invalid node ip "0.0.0.0": unspecified address
//   nodes[0].port: must be between 1 and 65535
//   nodes[2].id: duplicate node id "a" (also nodes[0])
//   nodes[0].id is required
//   nodes[0]: unknown field "prot"
Result<std::vector<ConfiguredNode>> parseConfiguredNodes(std::string_view json);

// A node id (also its name, in URLs): ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$.
// "invalid node id \"x\": must be 1 to 63 letters, digits, '_', '.' or '-',
// starting with a letter or digit".
Status validateNodeId(std::string_view id);

}  // namespace sbx::orch
