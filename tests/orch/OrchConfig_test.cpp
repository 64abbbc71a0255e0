#include "orch/OrchConfig.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using namespace sbx;
using namespace sbx::orch;
using namespace std::chrono_literals;

namespace {

struct Harness {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  OrchConfigHooks hooks;
  std::vector<std::string> filesRead;

  Result<OrchLoadOutcome> load(std::vector<std::string> args) {
    args.insert(args.begin(), "sandboxd-o");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    return loadOrchConfig(
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

TEST_CASE("OrchConfig: defaults are SPEC's") {
  const OrchConfig c = defaultOrchConfig();
  CHECK(c.httpAddr == ":8082");
  CHECK(c.sharedSecret.empty());
  CHECK(c.nodeSharedSecret.empty());
  CHECK(c.sqlitePath == "/var/lib/sandboxd/orchestrator.db");
  CHECK(c.heartbeatInterval == 10s);
  CHECK(c.probeTimeout == 3s);
  CHECK(c.readySuccessThreshold == 2);
  CHECK(c.notreadyFailureThreshold == 2);
  CHECK(c.hostPortMin == 10000);
  CHECK(c.hostPortMax == 32767);
  CHECK(c.createRps == 20);
  CHECK(c.createBurst == 40);
  CHECK(c.sandboxOpTimeout == 60s);
  CHECK(c.nodes.empty());
  CHECK(c.pendingTimeout == 10min);
  CHECK(c.statusSyncInterval == 20ms);
  CHECK(c.workerThreads == 4);
  CHECK(c.shutdownGrace == 10s);
  CHECK(c.httpMaxConnections == 10000);
  CHECK(c.httpMaxBodyBytes == 1LL << 20);
  CHECK(c.logDir.empty());
  CHECK(c.logFilePrefix == "sandboxd-o");
  CHECK(c.appEnv.empty());
}

TEST_CASE("OrchConfig: load with nothing given reads the default file; missing is fine") {
  Harness h;
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK_FALSE(r->helpRequested);
  CHECK(h.filesRead == std::vector<std::string>{"/var/lib/sandboxd/sbxorch_config.json"});
  CHECK(r->configFile.empty());
  CHECK(r->config.hostPortMin == 10000);

  h.files["/var/lib/sandboxd/sbxorch_config.json"] = R"({"create_rps": 5})";
  r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->configFile == "/var/lib/sandboxd/sbxorch_config.json");
  CHECK(r->config.createRps == 5);
}

TEST_CASE("OrchConfig: flag > env > file > default") {
  Harness h;
  h.files["/etc/orch.json"] = R"({
    "heartbeat_interval": "1s", "probe_timeout": "2s", "sandbox_op_timeout": "30s",
    "create_rps": 7, "host_port_min": 20000,
    "nodes": [{"id": "node-a", "ip": "10.0.0.5", "external": "203.0.113.10"}]
  })";
  h.env = {
      {"ORCH_HEARTBEAT_INTERVAL", "5s"}, {"ORCH_PROBE_TIMEOUT", "4s"}, {"ORCH_CREATE_BURST", "9"}};
  auto r = h.load({"-c", "/etc/orch.json", "--heartbeat-interval", "7s"});
  REQUIRE(r.ok());
  const OrchConfig& c = r->config;
  CHECK(c.heartbeatInterval == 7s);  // flag over env and file
  CHECK(c.probeTimeout == 4s);       // env over file
  CHECK(c.sandboxOpTimeout == 30s);  // file
  CHECK(c.createRps == 7);           // file
  CHECK(c.createBurst == 9);         // env
  CHECK(c.hostPortMin == 20000);     // file
  CHECK(c.hostPortMax == 32767);     // default
  CHECK(c.pendingTimeout == 10min);  // default
  CHECK(c.nodes == std::vector<ConfiguredNode>{{"node-a", "10.0.0.5", 8080, "203.0.113.10"}});
  CHECK(r->configFile == "/etc/orch.json");
  for (const config::EffectiveSetting& e : r->effective) {
    if (e.key == "heartbeat_interval") CHECK(e.source.describe() == "--heartbeat-interval");
    if (e.key == "probe_timeout") CHECK(e.source.describe() == "ORCH_PROBE_TIMEOUT");
    if (e.key == "create_rps") CHECK(e.source.describe() == "config file /etc/orch.json");
    if (e.key == "host_port_max") CHECK(e.source.describe() == "default");
  }

  // The environment's nodes replace the file's.
  h.env["ORCH_NODES"] = R"([{"id":"n1","ip":"::1","port":9000}])";
  r = h.load({"-c", "/etc/orch.json"});
  REQUIRE(r.ok());
  CHECK(r->config.nodes == std::vector<ConfiguredNode>{{"n1", "::1", 9000, ""}});
}

TEST_CASE("OrchConfig: each invalid value names the key and its source") {
  Harness h;
  CHECK(h.error({"--ready-success-threshold", "0"}) ==
        "invalid value for ready_success_threshold (from --ready-success-threshold): must be "
        "between 1 and 1000");
  h.env["ORCH_NOTREADY_FAILURE_THRESHOLD"] = "0";
  CHECK(h.error({}) ==
        "invalid value for notready_failure_threshold (from ORCH_NOTREADY_FAILURE_THRESHOLD): "
        "must be between 1 and 1000");
  h.env.clear();
  CHECK(h.error({"--host-port-min", "0"}) ==
        "invalid value for host_port_min (from --host-port-min): must be between 1 and 65535");
  CHECK(h.error({"--host-port-max=65536"}) ==
        "invalid value for host_port_max (from --host-port-max): must be between 1 and 65535");
  CHECK(h.error({"--create-rps", "0"}) ==
        "invalid value for create_rps (from --create-rps): must be between 1 and 1000000");
  CHECK(h.error({"--create-burst", "-1"}) ==
        "invalid value for create_burst (from --create-burst): must be between 1 and 1000000");
  CHECK(h.error({"--create-rps", "2.5"}) ==
        "invalid value for create_rps (from --create-rps): expected integer, got \"2.5\"");
  for (const char* key : {"heartbeat_interval", "probe_timeout", "sandbox_op_timeout",
                          "pending_timeout", "status_sync_interval"}) {
    CAPTURE(key);
    std::string flag = "--" + std::string(key);
    for (char& c : flag) {
      if (c == '_') c = '-';
    }
    CHECK(h.error({flag, "0s"}) ==
          "invalid value for " + std::string(key) + " (from " + flag + "): must be greater than 0");
  }
  CHECK(h.error({"--worker-threads", "0"}) ==
        "invalid value for worker_threads (from --worker-threads): must be between 1 and 64");
  CHECK(h.error({"--worker-threads", "65"}) ==
        "invalid value for worker_threads (from --worker-threads): must be between 1 and 64");
  CHECK(h.error({"--sqlite-path="}) ==
        "invalid value for sqlite_path (from --sqlite-path): must not be empty");
  CHECK(h.error({"--log-file-prefix", "a/b"}) ==
        "invalid value for log_file_prefix (from --log-file-prefix): must be a non-empty file "
        "name prefix without '/'");
  CHECK(h.error({"--shutdown-grace", "2h"}) ==
        "invalid value for shutdown_grace (from --shutdown-grace): must be between 0s and 1h");
  h.env["ORCH_PENDING_TIMEOUT"] = "10x";
  CHECK(h.error({}) ==
        "invalid value for pending_timeout (from ORCH_PENDING_TIMEOUT): invalid duration "
        "\"10x\": expected e.g. 250ms, 10s, 4m or 1h30m");
  h.env.clear();
  h.files["/x.json"] = R"({"create_burst": 0})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: create_burst: must be between 1 and 1000000");
  h.files["/x.json"] = R"({"status_sync_interval": "0ms"})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: status_sync_interval: must be greater than 0");
  h.files["/x.json"] = R"({"heartbeat_intervall": "1s"})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: unknown key \"heartbeat_intervall\" (did you mean "
        "\"heartbeat_interval\"?)");
  CHECK(h.error({"--bogus"}) == "unknown flag --bogus (see --help)");
  CHECK(h.error({"-c", "/missing.json"}) == "config file /missing.json: not found");
}

TEST_CASE("OrchConfig: the host port range is checked across keys") {
  Harness h;
  CHECK(h.error({"--host-port-min", "40000"}) ==
        "invalid host port range: host_port_min 40000 (from --host-port-min) is greater than "
        "host_port_max 32767 (from default)");
  h.env["ORCH_HOST_PORT_MAX"] = "9999";
  CHECK(h.error({}) ==
        "invalid host port range: host_port_min 10000 (from default) is greater than "
        "host_port_max 9999 (from ORCH_HOST_PORT_MAX)");
  // One port is a range.
  auto r = h.load({"--host-port-min", "9999"});
  REQUIRE(r.ok());
  CHECK(r->config.hostPortMin == 9999);
  CHECK(r->config.hostPortMax == 9999);
}

TEST_CASE("OrchConfig: nodes parsing") {
  auto r = parseConfiguredNodes(
      R"([{"id":"node-a","ip":"10.0.0.5","port":8080,"external":"203.0.113.10"},
          {"id":"b.2_x-y","ip":"fd00::5","port":null},
          {"ip":"127.0.0.1","id":"local","external":null,"port":65535}])");
  REQUIRE(r.ok());
  CHECK(*r == std::vector<ConfiguredNode>{{"node-a", "10.0.0.5", 8080, "203.0.113.10"},
                                          {"b.2_x-y", "fd00::5", 8080, ""},
                                          {"local", "127.0.0.1", 65535, ""}});
  r = parseConfiguredNodes("[]");
  REQUIRE(r.ok());
  CHECK(r->empty());
  // A 63-character id is the longest.
  const std::string longId(63, 'a');
  r = parseConfiguredNodes(R"([{"id":")" + longId + R"(","ip":"10.0.0.1"}])");
  REQUIRE(r.ok());
  CHECK(r->at(0).id == longId);
}

TEST_CASE("OrchConfig: nodes validation names the item") {
  auto err = [](const std::string& json) {
    auto r = parseConfiguredNodes(json);
    REQUIRE_FALSE(r.ok());
    return r.message();
  };
  const std::string ok = R"({"id":"a","ip":"10.0.0.1"},)";
  CHECK(err("[" + ok + R"({"id":"b","ip":"10.0.0.300"}])") ==
        "nodes[1].ip: invalid node ip \"10.0.0.300\": not an IP address");
  CHECK(err("[" + ok + R"({"id":"b","ip":"169.254.169.254"}])") ==
        "nodes[1].ip: invalid node ip \"169.254.169.254\": link-local address");
  CHECK(err(R"([{"id":"a","ip":"0.0.0.0"}])") ==
        "nodes[0].ip: invalid node ip \"0.0.0.0\": unspecified address");
  CHECK(err(R"([{"id":"a","ip":"node-a.example"}])") ==
        "nodes[0].ip: invalid node ip \"node-a.example\": not an IP address");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.1","port":0}])") ==
        "nodes[0].port: must be between 1 and 65535");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.1","port":65536}])") ==
        "nodes[0].port: must be between 1 and 65535");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.1","port":"8080"}])") == "nodes[0].port: expected integer");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.1","port":80.5}])") == "nodes[0].port: expected integer");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.1","port":18446744073709551615}])") ==
        "nodes[0].port: must be between 1 and 65535");
  CHECK(err("[" + ok + R"({"id":"b","ip":"10.0.0.2"},{"id":"a","ip":"10.0.0.3"}])") ==
        "nodes[2].id: duplicate node id \"a\" (also nodes[0])");
  CHECK(err("[" + ok + R"({"ip":"10.0.0.2"}])") == "nodes[1].id is required");
  CHECK(err(R"([{"id":null,"ip":"10.0.0.2"}])") == "nodes[0].id is required");
  CHECK(err(R"([{"id":"a"}])") == "nodes[0].ip is required");
  CHECK(err(R"([{"id":"","ip":"10.0.0.2"}])") ==
        "nodes[0].id: invalid node id \"\": must be 1 to 63 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit");
  CHECK(err(R"([{"id":"-a","ip":"10.0.0.2"}])").starts_with("nodes[0].id: invalid node id \"-a\""));
  CHECK(err(R"([{"id":"a/b","ip":"10.0.0.2"}])").starts_with("nodes[0].id: invalid node id"));
  CHECK(err(R"([{"id":")" + std::string(64, 'a') + R"(","ip":"10.0.0.2"}])")
            .starts_with("nodes[0].id: invalid node id"));
  CHECK(err(R"([{"id":7,"ip":"10.0.0.2"}])") == "nodes[0].id: expected string");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.2","prot":80}])") ==
        "nodes[0]: unknown field \"prot\" (expected \"id\", \"ip\", \"port\" or \"external\")");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.2","ip":"10.0.0.3"}])") ==
        "nodes: invalid JSON: duplicate key \"ip\" in [0]");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.2","external":"two words"}])") ==
        "nodes[0].external: must be at most 255 characters without whitespace or control "
        "characters");
  CHECK(err(R"([{"id":"a","ip":"10.0.0.2"}, 5])") == "nodes[1]: expected object");
  CHECK(err(R"({"id":"a"})") == "nodes: expected a JSON array of objects");
}

TEST_CASE("OrchConfig: bad nodes fail the load with the key, source and item") {
  Harness h;
  CHECK(h.error({"--nodes", R"([{"id":"a","ip":"10.0.0.1"},{"id":"b","ip":"224.0.0.1"}])"}) ==
        "invalid value for nodes (from --nodes): nodes[1].ip: invalid node ip \"224.0.0.1\": "
        "multicast address");
  h.env["ORCH_NODES"] = R"([{"id":"a","ip":"10.0.0.1","port":0}])";
  CHECK(h.error({}) ==
        "invalid value for nodes (from ORCH_NODES): nodes[0].port: must be between 1 and 65535");
  h.env.clear();
  h.files["/x.json"] = R"({"nodes": [{"id":"a","ip":"10.0.0.1"},{"id":"a","ip":"10.0.0.2"}]})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: nodes: nodes[1].id: duplicate node id \"a\" (also nodes[0])");
  h.files["/x.json"] = R"({"nodes": {"id":"a"}})";
  CHECK(h.error({"-c", "/x.json"}) == "config file /x.json: nodes: expected array of objects");
  // Empty text is an empty list.
  auto r = h.load({"--nodes", ""});
  REQUIRE(r.ok());
  CHECK(r->config.nodes.empty());
}

TEST_CASE("OrchConfig: backward-compatible environment variables") {
  Harness h;
  h.env = {{"SANDBOX_LOG_DIR", "/var/log/sbx"},
           {"SANDBOX_LOG_FILE_PREFIX", "orch"},
           {"APP_ENV", "staging"}};
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.logDir == "/var/log/sbx");
  CHECK(r->config.logFilePrefix == "orch");
  CHECK(r->config.appEnv == "staging");
  h.env["ORCH_LOG_DIR"] = "/new";
  h.env["ORCH_APP_ENV"] = "prod";
  r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.logDir == "/new");
  CHECK(r->config.appEnv == "prod");
}

TEST_CASE("OrchConfig: --help lists every key and never a secret") {
  Harness h;
  h.env["ORCH_SHARED_SECRET"] = "env-topsecret";
  h.env["ORCH_NODE_SHARED_SECRET"] = "env-nodesecret";
  h.files["/var/lib/sandboxd/sbxorch_config.json"] =
      R"({"shared_secret": "file-topsecret", "node_shared_secret": "file-nodesecret"})";
  auto r = h.load(
      {"--shared-secret", "flag-topsecret", "--node-shared-secret=flag-nodesecret", "--help"});
  REQUIRE(r.ok());
  REQUIRE(r->helpRequested);
  CHECK(h.filesRead.empty());  // --help reads nothing
  const std::string& text = r->helpText;
  const auto schema = orchConfigSchema();
  // SPEC §2's table, then ours.
  const std::vector<std::string> expected = {"http_addr",
                                             "shared_secret",
                                             "node_shared_secret",
                                             "sqlite_path",
                                             "heartbeat_interval",
                                             "probe_timeout",
                                             "ready_success_threshold",
                                             "notready_failure_threshold",
                                             "host_port_min",
                                             "host_port_max",
                                             "create_rps",
                                             "create_burst",
                                             "sandbox_op_timeout",
                                             "nodes",
                                             "pending_timeout",
                                             "status_sync_interval",
                                             "worker_threads",
                                             "shutdown_grace",
                                             "http_max_connections",
                                             "http_max_body_bytes",
                                             "log_dir",
                                             "log_file_prefix",
                                             "app_env"};
  std::vector<std::string> names;
  for (const config::KeyDef& key : schema.schema().keys()) names.push_back(key.name);
  CHECK(names == expected);
  for (const config::KeyDef& key : schema.schema().keys()) {
    CAPTURE(key.name);
    CHECK(text.find(config::Schema::flagName(key) + " ") != std::string::npos);
    CHECK(text.find(schema.schema().envName(key)) != std::string::npos);
    CHECK(text.find("file key: " + key.name) != std::string::npos);
  }
  CHECK(text.find("Usage: sandboxd-o") != std::string::npos);
  CHECK(text.find("/var/lib/sandboxd/sbxorch_config.json") != std::string::npos);
  CHECK(text.find("--host-port-min INT (1..65535)") != std::string::npos);
  CHECK(text.find("default: 10s; env: ORCH_HEARTBEAT_INTERVAL") != std::string::npos);
  CHECK(text.find("env: ORCH_LOG_DIR or SANDBOX_LOG_DIR") != std::string::npos);
  CHECK(text.find("env: ORCH_APP_ENV or APP_ENV") != std::string::npos);
  CHECK(text.find("secret") != std::string::npos);
  CHECK(text.find("topsecret") == std::string::npos);
  CHECK(text.find("nodesecret") == std::string::npos);
}

TEST_CASE("OrchConfig: secrets are redacted in the effective settings and errors") {
  Harness h;
  h.env["ORCH_SHARED_SECRET"] = "topsecret";
  h.env["ORCH_NODE_SHARED_SECRET"] = "nodesecret";
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.sharedSecret == "topsecret");
  CHECK(r->config.nodeSharedSecret == "nodesecret");
  for (const config::EffectiveSetting& e : r->effective) {
    CHECK(e.text.find("topsecret") == std::string::npos);
    CHECK(e.text.find("nodesecret") == std::string::npos);
    if (e.key == "shared_secret" || e.key == "node_shared_secret") CHECK(e.text == "(redacted)");
  }
  // An unknown flag's value is not echoed either.
  CHECK(h.error({"--node-secret=nodesecret"}) == "unknown flag --node-secret (see --help)");
}

TEST_CASE("OrchConfig: http_addr is checked by the injected validator") {
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
  CHECK(r->config.shutdownGrace == 5s);
  h.hooks.validateListenAddress = nullptr;
  r = h.load({"--http-addr", "nope"});
  REQUIRE(r.ok());
}

TEST_CASE("OrchConfig: node ids") {
  CHECK(validateNodeId("a").ok());
  CHECK(validateNodeId("Node_1.x-y").ok());
  CHECK(validateNodeId("0").ok());
  CHECK(validateNodeId(std::string(63, 'z')).ok());
  CHECK_FALSE(validateNodeId("").ok());
  CHECK_FALSE(validateNodeId(std::string(64, 'z')).ok());
  CHECK_FALSE(validateNodeId("_a").ok());
  CHECK_FALSE(validateNodeId(".a").ok());
  CHECK_FALSE(validateNodeId("-a").ok());
  CHECK_FALSE(validateNodeId("a b").ok());
  CHECK_FALSE(validateNodeId("a/b").ok());
  CHECK_FALSE(validateNodeId("..").ok());
  CHECK_FALSE(validateNodeId("é").ok());
  CHECK(validateNodeId("a\nb").message() ==
        "invalid node id \"a?b\": must be 1 to 63 letters, digits, '_', '.' or '-', starting "
        "with a letter or digit");
}
