#pragma once
// SbxletConfig: the node agent's configuration (SPEC §1 "Configuration")
// and how it is loaded: defaults < /var/lib/sandboxd/sbxlet_config.json (or
// -c FILE) < SBXLET_<KEY> (and the seed's SANDBOX_LOG_DIR,
// SANDBOX_LOG_FILE_PREFIX, APP_ENV) < --key-name flags. The rules are
// config::ConfigSchema's; this file only lists the keys.
//
// main():
//   node::SbxletConfigHooks hooks;
//   hooks.validateListenAddress = [](std::string_view a) -> Status {
//     auto r = http::parseListenAddress(a);
//     return r ? Status() : Status(r.error());
//   };
//   auto loaded = node::loadSbxletConfig(argc, argv, config::processEnv(),
//                                        config::readFileFromDisk, hooks);
//   if (!loaded) { fprintf(stderr, "sbxlet: %s\n", loaded.message().c_str()); return 2; }
//   if (loaded->helpRequested) { fputs(loaded->helpText.c_str(), stdout); return 0; }
//   const node::SbxletConfig& cfg = loaded->config;
//
// shared_secret is never printed: not by --help, not in
// LoadOutcome::effective (redacted), not in any error message. Do not log
// SbxletConfig as a whole; log `effective` instead.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "config/ConfigSchema.h"

namespace sbx::node {

inline constexpr std::string_view kSbxletDefaultConfigFile = "/var/lib/sandboxd/sbxlet_config.json";

// Field defaults are not repeated here: they live in the schema (one place),
// see defaultSbxletConfig(). A value-initialized SbxletConfig is all zeros.
struct SbxletConfig {
  std::string httpAddr;  // ":8080"
  // Bearer token for every endpoint but /healthz. "" means: generated at first
  // start into <stateDir>/secret (0600) and read from there after; that is
  // the daemon's job, not the loader's. Never log it.
  std::string sharedSecret;
  std::string containerdAddress;    // "/run/containerd/containerd.sock"
  std::string containerdNamespace;  // "k8s.io"
  std::string stateDir;             // "/var/lib/sandboxd"; sandboxes under sandboxes/<id>/
  std::string runtime;              // "runsc", "runc" or "sim" (hollow node)
  // The OCI runtime binary the shim runs. Loaded as "" = the runtime's own
  // binary; finalizeSbxletConfig() sets it to `runtime` ("runsc").
  std::string runtimeBinary;
  // The runtime's state root. Loaded as "" = ours; finalizeSbxletConfig()
  // sets it to <stateDir>/runtime/<runtime>.
  std::string runtimeRoot;
  std::string runtimeType;  // containerd shim, "io.containerd.runc.v2"
  // CNI plugin directory. Loaded as "" = first of /opt/cni/bin, /usr/lib/cni
  // that exists; finalizeSbxletConfig() resolves it.
  std::string cniBinDir;
  std::string cniConfPath;      // "/etc/cni/sandboxd.d/20-sbxnet.conflist"
  std::string bridgeInterface;  // "sbx-br0"
  std::string subnetCidr;       // "10.89.0.0/16"
  // Destinations a sandbox with egress:true may still never reach.
  std::vector<std::string> egressDenyCidrs;  // RFC 1918, CGNAT, loopback, link-local, multicast
  int maxAllocPercent = 0;      // 90: share of the node's CPU/memory admission may hand out
  int64_t defaultEphemeralStorageBytes = 0;  // 128Mi
  // Registry host → mirror URLs; pulls of that registry go to the mirrors only.
  std::map<std::string, std::vector<std::string>> registryMirrors;
  std::vector<std::string> insecureRegistries;    // hosts allowed over plain http
  std::chrono::nanoseconds provisionTimeout{0};   // 4m
  std::chrono::nanoseconds imagePullTimeout{0};   // 8m
  std::chrono::nanoseconds reconcileInterval{0};  // 15s
  int64_t logReadLimitContainerBytes = 0;         // 32Mi
  int64_t logReadLimitSandboxBytes = 0;           // 128Mi
  std::string externalAddress;                    // "" = none; reported as resources.external
  std::string logDir;                             // "" = stderr
  std::string logFilePrefix;                      // "sandboxd"
  std::string appEnv;                             // ""
  // Ours, beyond SPEC's table.
  // Network namespaces are /var/run/netns/<netns_prefix><sandbox id>;
  // reconcile removes those with this prefix that no sandbox owns, so two
  // sbxlets on one host (a test next to a real one) need different prefixes.
  std::string netnsPrefix;  // "sandboxd-"
  int workerThreads = 0;                      // 16: blocking containerd calls wait, they do not burn CPU
  std::chrono::nanoseconds shutdownGrace{0};  // 10s
  int httpMaxConnections = 0;                 // 10000
  int64_t httpMaxBodyBytes = 0;               // 1Mi
  // runtime "sim" (a hollow node for scale tests; node/SimRuntime.h).
  std::chrono::nanoseconds simStartLatency{0};  // 200ms: create → running
  std::chrono::nanoseconds simStartJitter{0};   // 0s: uniform extra latency
  int simFailurePercent = 0;                    // 0: share of starts that fail
  std::string simCpu;     // "" = the host's CPU capacity; else a CPU quantity ("64")
  std::string simMemory;  // "" = the host's memory; else a memory quantity ("256Gi")
};

struct SbxletConfigHooks {
  // Checks http_addr; main wires http::parseListenAddress (the config layer
  // does not link the HTTP layer). Unset: http_addr is not checked here.
  std::function<Status(std::string_view)> validateListenAddress;
  // Whether a directory exists, for cni_bin_dir. Unset: the real filesystem.
  std::function<bool(const std::string&)> directoryExists;
};

// The schema of every key (for --help, tests, docs). `hooks` supplies the
// http_addr check.
config::ConfigSchema<SbxletConfig> sbxletConfigSchema(const SbxletConfigHooks& hooks = {});

// The defaults of SPEC's table, as loaded with no file, environment or flags
// (before finalizeSbxletConfig()).
SbxletConfig defaultSbxletConfig();

// Fills in what the empty defaults mean: runtimeBinary, runtimeRoot and
// cniBinDir (the first candidate that `directoryExists`; /opt/cni/bin when
// none does, so that a later error names a real place to install plugins).
void finalizeSbxletConfig(SbxletConfig& config,
                          const std::function<bool(const std::string&)>& directoryExists);

using SbxletLoadOutcome = config::LoadOutcome<SbxletConfig>;

// Loads and finalizes the configuration. Either a config or, for -h/--help,
// helpRequested with helpText (print it, exit 0). Errors name the key and the
// value's source; exit 2 on them.
Result<SbxletLoadOutcome> loadSbxletConfig(int argc, const char* const* argv,
                                           const config::EnvLookup& env,
                                           const config::FileReader& readFile,
                                           const SbxletConfigHooks& hooks = {});

// Key-specific checks, exposed for reuse and tests.
// An IPv4 network "a.b.c.d/p" with p in 8..30 and the host bits zero.
Status validateSubnetCidr(std::string_view cidr);
// A Linux interface name: 1..15 bytes, not "." or "..", no '/', ':' or
// whitespace.
Status validateInterfaceName(std::string_view name);

}  // namespace sbx::node
