#include "node/SbxletConfig.h"

#include <sys/stat.h>

#include <charconv>
#include <cstdlib>

#include "base/Quantity.h"

namespace sbx::node {

namespace {

using std::chrono::nanoseconds;

std::string quoted(std::string_view s) { return "\"" + std::string(s.substr(0, 64)) + "\""; }

Status nonEmpty(const std::string& s) {
  if (s.empty()) return Error("must not be empty");
  return Status();
}

Status absolutePath(const std::string& s) {
  if (s.empty() || s.front() != '/') return Error("must be an absolute path");
  return Status();
}

// "" keeps its documented meaning; anything else must be absolute.
Status emptyOrAbsolutePath(const std::string& s) {
  if (s.empty()) return Status();
  return absolutePath(s);
}

Status validateRuntime(const std::string& s) {
  if (s != "runsc" && s != "runc" && s != "sim") {
    return Error("must be runsc, runc or sim, got " + quoted(s));
  }
  return Status();
}

Status validateLogFilePrefix(const std::string& s) {
  if (s.empty() || s.find('/') != std::string::npos) {
    return Error("must be a non-empty file name prefix without '/'");
  }
  return Status();
}

Status validateMirrors(const config::StringListMap& mirrors) {
  for (const auto& [registry, urls] : mirrors) {
    if (registry.empty()) return Error("registry name must not be empty");
    // Pulls of a mirrored registry go to the mirrors only: none would make
    // the registry unreachable.
    if (urls.empty()) return Error(registry + ": needs at least one mirror URL");
    for (const std::string& url : urls) {
      const bool http = url.starts_with("http://") && url.size() > 7;
      const bool https = url.starts_with("https://") && url.size() > 8;
      if (!http && !https) {
        return Error(registry + ": mirror " + quoted(url) + " must start with http:// or https://");
      }
    }
  }
  return Status();
}

Status validateInsecureRegistries(const config::StringList& hosts) {
  for (const std::string& host : hosts) {
    if (host.empty()) return Error("a registry host must not be empty");
    if (host.find('/') != std::string::npos) {
      return Error("insecure registry " + quoted(host) + " must be a host[:port], not a URL");
    }
  }
  return Status();
}

// Any IPv4 network (a /0 to /32), host bits zero.
Status validateCidrList(const config::StringList& cidrs) {
  for (const std::string& c : cidrs) {
    Status st = validateSubnetCidr(c);
    // validateSubnetCidr refuses prefixes outside /8../30 for the sandbox
    // subnet; a deny list may name any size.
    if (!st.ok() && st.message() != "prefix length must be between 8 and 30") {
      return Error(c + ": " + st.message());
    }
  }
  return Status();
}

bool realDirectoryExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string joinPath(std::string_view dir, std::string_view rest) {
  std::string out(dir);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out != "/") out.push_back('/');
  out.append(rest);
  return out;
}

// Parses one decimal octet; no sign, no leading zeros (inet_aton would read
// "010" as octal, so refuse the ambiguity).
bool parseOctet(std::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s.front() == '0')) return false;
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > 255) return false;
  out = v;
  return true;
}

std::string formatIpv4(uint32_t addr) {
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xff) + "." +
         std::to_string((addr >> 8) & 0xff) + "." + std::to_string(addr & 0xff);
}

}  // namespace

Status validateSubnetCidr(std::string_view cidr) {
  const Error bad("invalid CIDR " + quoted(cidr) +
                  ": expected an IPv4 network such as 10.89.0.0/16");
  const size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) return bad;
  std::string_view ip = cidr.substr(0, slash);
  const std::string_view prefixText = cidr.substr(slash + 1);
  uint32_t addr = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? ip.find('.') : ip.size();
    if (dot == std::string_view::npos) return bad;
    uint32_t octet = 0;
    if (!parseOctet(ip.substr(0, dot), octet)) return bad;
    addr = (addr << 8) | octet;
    ip.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  unsigned prefix = 0;
  auto [ptr, ec] =
      std::from_chars(prefixText.data(), prefixText.data() + prefixText.size(), prefix);
  if (prefixText.empty() || ec != std::errc() || ptr != prefixText.data() + prefixText.size()) {
    return bad;
  }
  // /8 and wider would swallow far more than a node needs; /31 and /32 leave
  // no room for a gateway plus sandboxes.
  if (prefix < 8 || prefix > 30) return Error("prefix length must be between 8 and 30");
  const uint32_t mask = ~uint32_t{0} << (32 - prefix);
  if ((addr & ~mask) != 0) {
    return Error("host bits must be zero (did you mean " + formatIpv4(addr & mask) + "/" +
                 std::to_string(prefix) + "?)");
  }
  return Status();
}

Status validateInterfaceName(std::string_view name) {
  // The kernel's dev_valid_name(): IFNAMSIZ is 16 with the terminating NUL.
  bool ok = !name.empty() && name.size() <= 15 && name != "." && name != "..";
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r')) ok = false;
  }
  if (!ok) {
    return Error("invalid interface name " + quoted(name) +
                 ": must be 1 to 15 characters without '/', ':' or whitespace");
  }
  return Status();
}

config::ConfigSchema<SbxletConfig> sbxletConfigSchema(const SbxletConfigHooks& hooks) {
  using C = SbxletConfig;
  config::ConfigSchema<C> s(config::SchemaInfo{"sbxlet",
                                               "sandboxd node agent: runs sandboxes on containerd",
                                               "SBXLET_", std::string(kSbxletDefaultConfigFile)});

  auto addr =
      s.string("http_addr", ":8080",
               "listen address of the HTTP API: :8080, 127.0.0.1:8080 or [::1]:8080", &C::httpAddr);
  if (hooks.validateListenAddress) {
    addr.validate([check = hooks.validateListenAddress](const std::string& a) { return check(a); });
  }
  s.string("shared_secret", "",
           "bearer token required by every endpoint but /healthz; none: generated at first "
           "start into <state_dir>/secret (0600)",
           &C::sharedSecret)
      .secret();
  s.string("containerd_address", "/run/containerd/containerd.sock", "containerd's socket",
           &C::containerdAddress)
      .validate(nonEmpty);
  s.string("containerd_namespace", "k8s.io", "containerd namespace of every call",
           &C::containerdNamespace)
      .validate(nonEmpty);
  s.string("state_dir", "/var/lib/sandboxd",
           "where sbxlet keeps its state (sandboxes under sandboxes/<id>/)", &C::stateDir)
      .validate(absolutePath);
  s.string("runtime", "runsc",
           "OCI runtime: runsc (gVisor) or runc; sim: a hollow node for scale tests (nothing runs)",
           &C::runtime)
      .validate(validateRuntime);
  s.string("runtime_binary", "", "runtime binary the shim runs; none: the runtime's own binary",
           &C::runtimeBinary);
  s.string("runtime_root", "", "runtime state root; none: <state_dir>/runtime/<runtime>",
           &C::runtimeRoot)
      .validate(emptyOrAbsolutePath);
  s.string("runtime_type", "io.containerd.runc.v2", "containerd runtime (shim) type",
           &C::runtimeType)
      .validate(nonEmpty);
  s.string("cni_bin_dir", "",
           "CNI plugin directory; none: the first of /opt/cni/bin, /usr/lib/cni that exists",
           &C::cniBinDir)
      .validate(emptyOrAbsolutePath);
  s.string("cni_conf_path", "/etc/cni/sandboxd.d/20-sbxnet.conflist",
           "CNI network configuration list sbxlet writes and uses", &C::cniConfPath)
      .validate(absolutePath);
  s.string("bridge_interface", "sbx-br0", "Linux bridge the sandboxes attach to",
           &C::bridgeInterface)
      .validate([](const std::string& n) { return validateInterfaceName(n); });
  s.string("subnet_cidr", "10.89.0.0/16",
           "IPv4 subnet sandbox addresses come from (prefix /8 to /30)", &C::subnetCidr)
      .validate([](const std::string& c) { return validateSubnetCidr(c); });
  s.stringList("egress_deny_cidrs",
               "[\"10.0.0.0/8\",\"172.16.0.0/12\",\"192.168.0.0/16\",\"100.64.0.0/10\","
               "\"127.0.0.0/8\",\"169.254.0.0/16\",\"224.0.0.0/4\"]",
               "destinations a sandbox with egress:true may never reach (besides the node and "
               "other sandboxes, always refused)",
               &C::egressDenyCidrs)
      .validate(validateCidrList);
  s.integer("max_alloc_percent", 90, 1, 100,
            "share (percent) of the node's CPU and memory that admission may hand out",
            &C::maxAllocPercent);
  s.memory("default_ephemeral_storage", "128Mi",
           "writable-layer size of a container that does not ask for one",
           &C::defaultEphemeralStorageBytes);
  s.stringListMap("registry_mirrors", "{}",
                  "registry host -> mirror URLs, e.g. {\"docker.io\":[\"http://127.0.0.1:5000\"]}; "
                  "pulls of that registry go to the mirrors only",
                  &C::registryMirrors)
      .validate(validateMirrors);
  s.stringList("insecure_registries", "[]", "registry hosts (host[:port]) allowed over plain http",
               &C::insecureRegistries)
      .validate(validateInsecureRegistries);
  s.duration("provision_timeout", "4m",
             "how long a sandbox may take from create to running before it fails",
             &C::provisionTimeout)
      .positive();
  s.duration("image_pull_timeout", "8m", "how long one image pull may take", &C::imagePullTimeout)
      .positive();
  s.duration("reconcile_interval", "15s",
             "how often containerd's state is reconciled with sbxlet's", &C::reconcileInterval)
      .positive();
  s.memory("log_read_limit_container", "32Mi", "most bytes one container's log read returns",
           &C::logReadLimitContainerBytes);
  s.memory("log_read_limit_sandbox", "128Mi", "most bytes one sandbox's log read returns",
           &C::logReadLimitSandboxBytes);
  s.string("external_address", "", "this node's public address, reported as resources.external",
           &C::externalAddress);
  s.string("log_dir", "", "directory of sbxlet's own log files; none: stderr", &C::logDir)
      .envAlias("SANDBOX_LOG_DIR");
  s.string("log_file_prefix", "sandboxd", "name prefix of sbxlet's log files", &C::logFilePrefix)
      .envAlias("SANDBOX_LOG_FILE_PREFIX")
      .validate(validateLogFilePrefix);
  s.string("app_env", "", "deployment environment name, e.g. prod, staging", &C::appEnv)
      .envAlias("APP_ENV");
  s.string("netns_prefix", "sandboxd-",
           "name prefix of the sandboxes' network namespaces (/var/run/netns/<prefix><id>)",
           &C::netnsPrefix)
      .validate(validateLogFilePrefix);
  s.integer("worker_threads", 16, 1, 64, "threads for blocking work (containerd calls, CNI)",
            &C::workerThreads);
  // A bare number of seconds is what the earlier --shutdown-grace took.
  s.duration("shutdown_grace", "10s",
             "time in-flight requests get after SIGTERM (a plain number means seconds)",
             &C::shutdownGrace)
      .range(nanoseconds(0), std::chrono::hours(1))
      .acceptBareSeconds();
  s.integer("http_max_connections", 10000, 1, 1000000, "most open HTTP connections",
            &C::httpMaxConnections);
  s.memory("http_max_body_bytes", "1Mi", "largest HTTP request body accepted",
           &C::httpMaxBodyBytes);
  // runtime "sim" (hollow node, node/SimRuntime.h) only.
  s.duration("sim_start_latency", "200ms", "sim: time from create to running", &C::simStartLatency)
      .range(nanoseconds(0), std::chrono::hours(1));
  s.duration("sim_start_jitter", "0s", "sim: up to this much more start latency (uniform)",
             &C::simStartJitter)
      .range(nanoseconds(0), std::chrono::hours(1));
  s.integer("sim_failure_percent", 0, 0, 100, "sim: share of starts that fail (phase error)",
            &C::simFailurePercent);
  s.string("sim_cpu", "", "sim: CPU capacity the node reports (e.g. 64 or 500m); none: the host's",
           &C::simCpu)
      .validate([](const std::string& v) -> Status {
        if (v.empty()) return Status();
        if (auto r = parseCpuMillis(v); !r.ok()) return r.error();
        return Status();
      });
  s.string("sim_memory", "", "sim: memory capacity the node reports (e.g. 256Gi); none: the host's",
           &C::simMemory)
      .validate([](const std::string& v) -> Status {
        if (v.empty()) return Status();
        if (auto r = parseMemoryBytes(v); !r.ok()) return r.error();
        return Status();
      });
  return s;
}

SbxletConfig defaultSbxletConfig() {
  const char* argv[] = {"sbxlet", nullptr};
  auto loaded = sbxletConfigSchema().load(
      1, argv, [](const std::string&) { return std::optional<std::string>(); },
      [](const std::string&) { return Result<std::optional<std::string>>(std::nullopt); });
  // The defaults are constants checked by the tests; failing here is a bug.
  if (!loaded) std::abort();
  return std::move(loaded->config);
}

void finalizeSbxletConfig(SbxletConfig& config,
                          const std::function<bool(const std::string&)>& directoryExists) {
  if (config.runtimeBinary.empty()) config.runtimeBinary = config.runtime;
  if (config.runtimeRoot.empty()) {
    config.runtimeRoot = joinPath(config.stateDir, "runtime/" + config.runtime);
  }
  if (config.cniBinDir.empty()) {
    // Debian's containernetworking-plugins install into /usr/lib/cni, the
    // upstream tarball into /opt/cni/bin.
    static const char* const kCandidates[] = {"/opt/cni/bin", "/usr/lib/cni"};
    config.cniBinDir = kCandidates[0];
    for (const char* dir : kCandidates) {
      if (directoryExists(dir)) {
        config.cniBinDir = dir;
        break;
      }
    }
  }
}

Result<SbxletLoadOutcome> loadSbxletConfig(int argc, const char* const* argv,
                                           const config::EnvLookup& env,
                                           const config::FileReader& readFile,
                                           const SbxletConfigHooks& hooks) {
  Result<SbxletLoadOutcome> loaded = sbxletConfigSchema(hooks).load(argc, argv, env, readFile);
  if (!loaded || loaded->helpRequested) return loaded;
  SbxletConfig& cfg = loaded->config;
  finalizeSbxletConfig(cfg, hooks.directoryExists ? hooks.directoryExists : realDirectoryExists);
  // Show the resolved values in the start-up summary, not the empty defaults.
  for (config::EffectiveSetting& e : loaded->effective) {
    if (e.key == "runtime_binary") e.text = cfg.runtimeBinary;
    if (e.key == "runtime_root") e.text = cfg.runtimeRoot;
    if (e.key == "cni_bin_dir") e.text = cfg.cniBinDir;
  }
  return loaded;
}

}  // namespace sbx::node
