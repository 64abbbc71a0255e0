#include "node/SbxletConfig.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace sbx;
using namespace sbx::node;
using namespace std::chrono_literals;

namespace {

struct Harness {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  std::set<std::string> dirs;  // what directoryExists() reports
  SbxletConfigHooks hooks;
  std::vector<std::string> filesRead;

  Harness() {
    hooks.directoryExists = [this](const std::string& p) { return dirs.count(p) > 0; };
  }

  Result<SbxletLoadOutcome> load(std::vector<std::string> args) {
    args.insert(args.begin(), "sbxlet");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    return loadSbxletConfig(
        static_cast<int>(args.size()), argv.data(),
        [this](const std::string& name) -> std::optional<std::string> {
          auto it = env.find(name);
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        [this](const std::string& path) -> Result<std::optional<std::string>> {
          filesRead.push_back(path);
          auto it = files.find(path);
          if (it == files.end()) return std::optional<std::string>();
          return std::optional<std::string>(it->second);
        },
        hooks);
  }

  std::string error(std::vector<std::string> args) {
    auto r = load(std::move(args));
    REQUIRE_FALSE(r.ok());
    return r.message();
  }
};

}  // namespace

TEST_CASE("SbxletConfig: defaults are SPEC's") {
  const SbxletConfig c = defaultSbxletConfig();
  CHECK(c.httpAddr == ":8080");
  CHECK(c.sharedSecret.empty());
  CHECK(c.containerdAddress == "/run/containerd/containerd.sock");
  CHECK(c.containerdNamespace == "k8s.io");
  CHECK(c.stateDir == "/var/lib/sandboxd");
  CHECK(c.runtime == "runsc");
  CHECK(c.runtimeBinary.empty());
  CHECK(c.runtimeRoot.empty());
  CHECK(c.runtimeType == "io.containerd.runc.v2");
  CHECK(c.cniBinDir.empty());
  CHECK(c.cniConfPath == "/etc/cni/sandboxd.d/20-sbxnet.conflist");
  CHECK(c.bridgeInterface == "sbx-br0");
  CHECK(c.subnetCidr == "10.89.0.0/16");
  CHECK(c.maxAllocPercent == 90);
  CHECK(c.defaultEphemeralStorageBytes == 128LL << 20);
  CHECK(c.registryMirrors.empty());
  CHECK(c.insecureRegistries.empty());
  CHECK(c.provisionTimeout == 4min);
  CHECK(c.imagePullTimeout == 8min);
  CHECK(c.reconcileInterval == 15s);
  CHECK(c.logReadLimitContainerBytes == 32LL << 20);
  CHECK(c.logReadLimitSandboxBytes == 128LL << 20);
  CHECK(c.externalAddress.empty());
  CHECK(c.logDir.empty());
  CHECK(c.logFilePrefix == "sandboxd");
  CHECK(c.appEnv.empty());
  CHECK(c.workerThreads == 16);
  CHECK(c.shutdownGrace == 10s);
  CHECK(c.httpMaxConnections == 10000);
  CHECK(c.httpMaxBodyBytes == 1LL << 20);
}

TEST_CASE("SbxletConfig: load with nothing given reads the default file and finalizes") {
  Harness h;
  h.dirs = {"/usr/lib/cni"};
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK_FALSE(r->helpRequested);
  CHECK(h.filesRead == std::vector<std::string>{"/var/lib/sandboxd/sbxlet_config.json"});
  CHECK(r->configFile.empty());
  const SbxletConfig& c = r->config;
  CHECK(c.runtimeBinary == "runsc");
  CHECK(c.runtimeRoot == "/var/lib/sandboxd/runtime/runsc");
  CHECK(c.cniBinDir == "/usr/lib/cni");
  CHECK(c.maxAllocPercent == 90);
  // The start-up summary shows the resolved values.
  bool sawCni = false;
  for (const config::EffectiveSetting& e : r->effective) {
    if (e.key == "cni_bin_dir") {
      sawCni = true;
      CHECK(e.text == "/usr/lib/cni");
    }
  }
  CHECK(sawCni);
}

TEST_CASE("SbxletConfig: cni_bin_dir resolution") {
  SbxletConfig c = defaultSbxletConfig();
  std::set<std::string> dirs;
  auto exists = [&](const std::string& p) { return dirs.count(p) > 0; };
  SUBCASE("both exist: /opt/cni/bin first") {
    dirs = {"/opt/cni/bin", "/usr/lib/cni"};
    finalizeSbxletConfig(c, exists);
    CHECK(c.cniBinDir == "/opt/cni/bin");
  }
  SUBCASE("only /usr/lib/cni (Debian)") {
    dirs = {"/usr/lib/cni"};
    finalizeSbxletConfig(c, exists);
    CHECK(c.cniBinDir == "/usr/lib/cni");
  }
  SUBCASE("neither: /opt/cni/bin") {
    finalizeSbxletConfig(c, exists);
    CHECK(c.cniBinDir == "/opt/cni/bin");
  }
  SUBCASE("set explicitly: kept, exists() not asked") {
    c.cniBinDir = "/my/cni";
    finalizeSbxletConfig(c, [](const std::string&) -> bool {
      FAIL("exists() called");
      return false;
    });
    CHECK(c.cniBinDir == "/my/cni");
  }
}

TEST_CASE("SbxletConfig: runtime_root and runtime_binary resolution") {
  Harness h;
  auto r = h.load({"--runtime", "runc", "--state-dir", "/srv/sbx/"});
  REQUIRE(r.ok());
  CHECK(r->config.runtimeBinary == "runc");
  CHECK(r->config.runtimeRoot == "/srv/sbx/runtime/runc");
  r = h.load({"--runtime-binary", "/opt/runsc", "--runtime-root", "/run/runsc"});
  REQUIRE(r.ok());
  CHECK(r->config.runtimeBinary == "/opt/runsc");
  CHECK(r->config.runtimeRoot == "/run/runsc");
}

TEST_CASE("SbxletConfig: file, env and flag precedence") {
  Harness h;
  h.files["/etc/sbx.json"] = R"({
    "provision_timeout": "1m", "image_pull_timeout": "2m", "reconcile_interval": "3s",
    "registry_mirrors": {"docker.io": ["http://127.0.0.1:5000"]},
    "insecure_registries": ["127.0.0.1:5000"], "default_ephemeral_storage": "1Gi"
  })";
  h.env = {{"SBXLET_PROVISION_TIMEOUT", "5m"}, {"SBXLET_IMAGE_PULL_TIMEOUT", "6m"}};
  auto r = h.load({"-c", "/etc/sbx.json", "--provision-timeout", "7m"});
  REQUIRE(r.ok());
  const SbxletConfig& c = r->config;
  CHECK(c.provisionTimeout == 7min);  // flag
  CHECK(c.imagePullTimeout == 6min);  // env
  CHECK(c.reconcileInterval == 3s);   // file
  CHECK(c.registryMirrors ==
        std::map<std::string, std::vector<std::string>>{{"docker.io", {"http://127.0.0.1:5000"}}});
  CHECK(c.insecureRegistries == std::vector<std::string>{"127.0.0.1:5000"});
  CHECK(c.defaultEphemeralStorageBytes == 1LL << 30);
  CHECK(r->configFile == "/etc/sbx.json");
}

TEST_CASE("SbxletConfig: error messages name the key and the source") {
  Harness h;
  h.env["SBXLET_PROVISION_TIMEOUT"] = "4x";
  CHECK(h.error({}) ==
        "invalid value for provision_timeout (from SBXLET_PROVISION_TIMEOUT): invalid duration "
        "\"4x\": expected e.g. 250ms, 10s, 4m or 1h30m");
  h.env.clear();
  CHECK(
      h.error({"--max-alloc-percent", "101"}) ==
      "invalid value for max_alloc_percent (from --max-alloc-percent): must be between 1 and 100");
  CHECK(
      h.error({"--max_alloc_percent=0"}) ==
      "invalid value for max_alloc_percent (from --max_alloc_percent): must be between 1 and 100");
  h.files["/x.json"] = R"({"max_alloc_percent": "90"})";
  CHECK(h.error({"-c", "/x.json"}) == "config file /x.json: max_alloc_percent: expected integer");
  h.files["/x.json"] = R"({"max_alloc_precent": 90})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: unknown key \"max_alloc_precent\" (did you mean "
        "\"max_alloc_percent\"?)");
  CHECK(h.error({"--reconcile-interval", "0s"}) ==
        "invalid value for reconcile_interval (from --reconcile-interval): must be greater than 0");
  CHECK(h.error({"--image-pull-timeout", "0"}) ==
        "invalid value for image_pull_timeout (from --image-pull-timeout): must be greater than 0");
  CHECK(h.error({"--worker-threads", "65"}) ==
        "invalid value for worker_threads (from --worker-threads): must be between 1 and 64");
  CHECK(h.error({"--runtime", "kata"}) ==
        "invalid value for runtime (from --runtime): must be runsc, runc or sim, got \"kata\"");
  CHECK(h.error({"--state-dir", "rel/dir"}) ==
        "invalid value for state_dir (from --state-dir): must be an absolute path");
  CHECK(h.error({"--log-file-prefix", "a/b"}) ==
        "invalid value for log_file_prefix (from --log-file-prefix): must be a non-empty file "
        "name prefix without '/'");
  CHECK(h.error({"--log-read-limit-sandbox", "0"}) ==
        "invalid value for log_read_limit_sandbox (from --log-read-limit-sandbox): invalid "
        "memory quantity \"0\": must be positive");
  CHECK(h.error({"--bogus"}) == "unknown flag --bogus (see --help)");
  CHECK(h.error({"-c", "/missing.json"}) == "config file /missing.json: not found");
}

TEST_CASE("SbxletConfig: registry validators") {
  Harness h;
  CHECK(h.error({"--registry-mirrors", R"({"docker.io":["ftp://m"]})"}) ==
        "invalid value for registry_mirrors (from --registry-mirrors): docker.io: mirror "
        "\"ftp://m\" must start with http:// or https://");
  CHECK(h.error({"--registry-mirrors", R"({"docker.io":[]})"}) ==
        "invalid value for registry_mirrors (from --registry-mirrors): docker.io: needs at least "
        "one mirror URL");
  h.env["SBXLET_INSECURE_REGISTRIES"] = "127.0.0.1:5000, http://reg:5000";
  CHECK(h.error({}) ==
        "invalid value for insecure_registries (from SBXLET_INSECURE_REGISTRIES): insecure "
        "registry \"http://reg:5000\" must be a host[:port], not a URL");
  h.env["SBXLET_INSECURE_REGISTRIES"] = "127.0.0.1:5000, reg:5000";
  h.env["SBXLET_REGISTRY_MIRRORS"] = R"({"docker.io":["https://m1","http://m2:5000"]})";
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.insecureRegistries == std::vector<std::string>{"127.0.0.1:5000", "reg:5000"});
  CHECK(r->config.registryMirrors.at("docker.io") ==
        std::vector<std::string>{"https://m1", "http://m2:5000"});
}

TEST_CASE("SbxletConfig: backward-compatible environment variables") {
  Harness h;
  h.env = {{"SANDBOX_LOG_DIR", "/var/log/sbx"},
           {"SANDBOX_LOG_FILE_PREFIX", "node"},
           {"APP_ENV", "staging"}};
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.logDir == "/var/log/sbx");
  CHECK(r->config.logFilePrefix == "node");
  CHECK(r->config.appEnv == "staging");
  // The SBXLET_ names win over the old ones.
  h.env["SBXLET_LOG_DIR"] = "/new";
  h.env["SBXLET_APP_ENV"] = "prod";
  r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.logDir == "/new");
  CHECK(r->config.appEnv == "prod");
  CHECK(r->config.logFilePrefix == "node");
}

TEST_CASE("SbxletConfig: --help lists every key and never the secret") {
  Harness h;
  h.env["SBXLET_SHARED_SECRET"] = "env-topsecret";
  h.files["/var/lib/sandboxd/sbxlet_config.json"] = R"({"shared_secret": "file-topsecret"})";
  auto r = h.load({"--shared-secret", "flag-topsecret", "--help"});
  REQUIRE(r.ok());
  REQUIRE(r->helpRequested);
  const std::string& text = r->helpText;
  const auto schema = sbxletConfigSchema();
  // SPEC §1's table plus ours.
  const std::vector<std::string> expected = {"http_addr",
                                             "shared_secret",
                                             "containerd_address",
                                             "containerd_namespace",
                                             "state_dir",
                                             "runtime",
                                             "runtime_binary",
                                             "runtime_root",
                                             "runtime_type",
                                             "cni_bin_dir",
                                             "cni_conf_path",
                                             "bridge_interface",
                                             "subnet_cidr",
                                             "egress_deny_cidrs",
                                             "max_alloc_percent",
                                             "default_ephemeral_storage",
                                             "registry_mirrors",
                                             "insecure_registries",
                                             "provision_timeout",
                                             "image_pull_timeout",
                                             "reconcile_interval",
                                             "log_read_limit_container",
                                             "log_read_limit_sandbox",
                                             "external_address",
                                             "log_dir",
                                             "log_file_prefix",
                                             "app_env",
                                             "netns_prefix",
                                             "worker_threads",
                                             "shutdown_grace",
                                             "http_max_connections",
                                             "http_max_body_bytes",
                                             "sim_start_latency",
                                             "sim_start_jitter",
                                             "sim_failure_percent",
                                             "sim_cpu",
                                             "sim_memory"};
  std::vector<std::string> names;
  for (const config::KeyDef& key : schema.schema().keys()) names.push_back(key.name);
  CHECK(names == expected);
  for (const config::KeyDef& key : schema.schema().keys()) {
    CAPTURE(key.name);
    CHECK(text.find(config::Schema::flagName(key) + " ") != std::string::npos);
    CHECK(text.find(schema.schema().envName(key)) != std::string::npos);
    CHECK(text.find("file key: " + key.name) != std::string::npos);
  }
  CHECK(text.find("--http-addr STRING") != std::string::npos);
  CHECK(text.find("--max-alloc-percent INT (1..100)") != std::string::npos);
  CHECK(text.find("default: 4m; env: SBXLET_PROVISION_TIMEOUT") != std::string::npos);
  CHECK(text.find("env: SBXLET_LOG_DIR or SANDBOX_LOG_DIR") != std::string::npos);
  CHECK(text.find("env: SBXLET_LOG_FILE_PREFIX or SANDBOX_LOG_FILE_PREFIX") != std::string::npos);
  CHECK(text.find("env: SBXLET_APP_ENV or APP_ENV") != std::string::npos);
  CHECK(text.find("/var/lib/sandboxd/sbxlet_config.json") != std::string::npos);
  CHECK(text.find("topsecret") == std::string::npos);
}

TEST_CASE("SbxletConfig: the secret is redacted in the effective settings") {
  Harness h;
  h.env["SBXLET_SHARED_SECRET"] = "topsecret";
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.sharedSecret == "topsecret");
  for (const config::EffectiveSetting& e : r->effective) {
    CHECK(e.text.find("topsecret") == std::string::npos);
    if (e.key == "shared_secret") {
      CHECK(e.text == "(redacted)");
      CHECK(e.source.describe() == "SBXLET_SHARED_SECRET");
    }
  }
}

TEST_CASE("SbxletConfig: http_addr is checked by the injected validator") {
  Harness h;
  h.hooks.validateListenAddress = [](std::string_view a) -> Status {
    if (a == "nope") return Error("invalid listen address \"nope\"");
    return Status();
  };
  CHECK(h.error({"--http-addr", "nope"}) ==
        "invalid value for http_addr (from --http-addr): invalid listen address \"nope\"");
  auto r = h.load({"--http-addr", "127.0.0.1:0", "--shutdown-grace", "5"});
  REQUIRE(r.ok());
  CHECK(r->config.httpAddr == "127.0.0.1:0");
  CHECK(r->config.shutdownGrace == 5s);  // the earlier --shutdown-grace SECONDS still works
  // Without the hook, the loader does not judge addresses.
  h.hooks.validateListenAddress = nullptr;
  r = h.load({"--http-addr", "nope"});
  REQUIRE(r.ok());
}

TEST_CASE("SbxletConfig: shutdown_grace range") {
  Harness h;
  CHECK(h.error({"--shutdown-grace", "2h"}) ==
        "invalid value for shutdown_grace (from --shutdown-grace): must be between 0s and 1h");
  auto r = h.load({"--shutdown-grace", "0"});
  REQUIRE(r.ok());
  CHECK(r->config.shutdownGrace == 0s);
}

TEST_CASE("SbxletConfig: subnet_cidr validator") {
  CHECK(validateSubnetCidr("10.89.0.0/16").ok());
  CHECK(validateSubnetCidr("192.168.4.0/24").ok());
  CHECK(validateSubnetCidr("10.0.0.0/8").ok());
  CHECK(validateSubnetCidr("10.89.0.4/30").ok());
  const std::string bad = ": expected an IPv4 network such as 10.89.0.0/16";
  CHECK(validateSubnetCidr("10.89.0.0").message() == "invalid CIDR \"10.89.0.0\"" + bad);
  CHECK(validateSubnetCidr("10.89.0/16").message() == "invalid CIDR \"10.89.0/16\"" + bad);
  CHECK(validateSubnetCidr("10.89.0.256/24").message() == "invalid CIDR \"10.89.0.256/24\"" + bad);
  CHECK(validateSubnetCidr("10.089.0.0/16").message() == "invalid CIDR \"10.089.0.0/16\"" + bad);
  CHECK(validateSubnetCidr("10.89.0.0.0/16").message() == "invalid CIDR \"10.89.0.0.0/16\"" + bad);
  CHECK(validateSubnetCidr("10.89.0.0/").message() == "invalid CIDR \"10.89.0.0/\"" + bad);
  CHECK(validateSubnetCidr("10.89.0.0/1x").message() == "invalid CIDR \"10.89.0.0/1x\"" + bad);
  CHECK(validateSubnetCidr("fd00::/64").message() == "invalid CIDR \"fd00::/64\"" + bad);
  CHECK(validateSubnetCidr(" 10.89.0.0/16").message() == "invalid CIDR \" 10.89.0.0/16\"" + bad);
  CHECK(validateSubnetCidr("10.0.0.0/7").message() == "prefix length must be between 8 and 30");
  CHECK(validateSubnetCidr("10.89.0.0/31").message() == "prefix length must be between 8 and 30");
  CHECK(validateSubnetCidr("10.89.1.0/16").message() ==
        "host bits must be zero (did you mean 10.89.0.0/16?)");

  Harness h;
  CHECK(h.error({"--subnet-cidr", "10.89.1.1/16"}) ==
        "invalid value for subnet_cidr (from --subnet-cidr): host bits must be zero (did you "
        "mean 10.89.0.0/16?)");
}

TEST_CASE("SbxletConfig: bridge_interface validator") {
  CHECK(validateInterfaceName("sbx-br0").ok());
  CHECK(validateInterfaceName("a").ok());
  CHECK(validateInterfaceName("abcdefghijklmno").ok());  // 15
  const std::string rule = ": must be 1 to 15 characters without '/', ':' or whitespace";
  CHECK(validateInterfaceName("").message() == "invalid interface name \"\"" + rule);
  CHECK(validateInterfaceName("abcdefghijklmnop").message() ==
        "invalid interface name \"abcdefghijklmnop\"" + rule);
  CHECK_FALSE(validateInterfaceName("br/0").ok());
  CHECK_FALSE(validateInterfaceName("br:0").ok());
  CHECK_FALSE(validateInterfaceName("br 0").ok());
  CHECK_FALSE(validateInterfaceName("br\t0").ok());
  CHECK_FALSE(validateInterfaceName(".").ok());
  CHECK_FALSE(validateInterfaceName("..").ok());

  Harness h;
  h.env["SBXLET_BRIDGE_INTERFACE"] = "much-too-long-bridge";
  CHECK(h.error({}) ==
        "invalid value for bridge_interface (from SBXLET_BRIDGE_INTERFACE): invalid interface "
        "name \"much-too-long-bridge\"" +
            rule);
}

TEST_CASE("SbxletConfig: egress_deny_cidrs defaults to SPEC's ranges; a bad one names the key") {
  auto d = defaultSbxletConfig();
  CHECK(d.egressDenyCidrs == std::vector<std::string>{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                      "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                                                      "224.0.0.0/4"});
  CHECK(d.netnsPrefix == "sandboxd-");
  const char* argv[] = {"sbxlet", "--egress-deny-cidrs", "[\"10.0.0.0/8\",\"10.1.2.3/8\"]", nullptr};
  auto r = loadSbxletConfig(3, argv, [](const std::string&) { return std::optional<std::string>(); },
                            [](const std::string&) { return Result<std::optional<std::string>>(std::nullopt); });
  REQUIRE(!r.ok());
  CHECK(r.message().find("egress_deny_cidrs") != std::string::npos);
}

TEST_CASE("SbxletConfig: the hollow node's keys (runtime sim)") {
  Harness h;
  auto d = h.load({});
  REQUIRE(d.ok());
  CHECK(d->config.simStartLatency == std::chrono::milliseconds(200));
  CHECK(d->config.simStartJitter == std::chrono::nanoseconds(0));
  CHECK(d->config.simFailurePercent == 0);
  CHECK(d->config.simCpu.empty());
  CHECK(d->config.simMemory.empty());
  auto r = h.load({"--runtime", "sim", "--sim-start-latency", "50ms", "--sim-start-jitter", "1s",
                   "--sim-failure-percent", "5", "--sim-cpu", "64", "--sim-memory", "256Gi"});
  REQUIRE(r.ok());
  CHECK(r->config.runtime == "sim");
  CHECK(r->config.simStartLatency == std::chrono::milliseconds(50));
  CHECK(r->config.simStartJitter == std::chrono::seconds(1));
  CHECK(r->config.simFailurePercent == 5);
  CHECK(r->config.simCpu == "64");
  CHECK(r->config.simMemory == "256Gi");
  CHECK(h.error({"--sim-cpu", "lots"}).find("invalid value for sim_cpu (from --sim-cpu): invalid cpu quantity") == 0);
  CHECK(h.error({"--sim-memory", "0"}).find("invalid value for sim_memory (from --sim-memory)") == 0);
  CHECK(h.error({"--sim-failure-percent", "101"}).find("sim_failure_percent") != std::string::npos);
}
