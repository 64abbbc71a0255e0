#include "orch/OrchConfig.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "json/JsonReader.h"
#include "orch/NodeAddress.h"

namespace sbx::orch {

namespace {

using std::chrono::nanoseconds;

// Quoted and cut short, printable only: node ids and fields may come from
// an API client one day, and messages end up in logs.
std::string quoteValue(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "\"";
  for (char c : s.substr(0, kMaxShown)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > kMaxShown) out.append("...");
  out.push_back('"');
  return out;
}

Status nonEmpty(const std::string& s) {
  if (s.empty()) return Error("must not be empty");
  return Status();
}

Status validateLogFilePrefix(const std::string& s) {
  if (s.empty() || s.find('/') != std::string::npos) {
    return Error("must be a non-empty file name prefix without '/'");
  }
  return Status();
}

bool isIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// A node's public address is handed to clients as is (resources.external,
// status.external): a host name or an IP, never blank or multi-word.
Status validateExternal(std::string_view s) {
  constexpr size_t kMaxExternal = 255;
  bool ok = s.size() <= kMaxExternal;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) ok = false;
  }
  if (!ok) return Error("must be at most 255 characters without whitespace or control characters");
  return Status();
}

// One item of `nodes`; `where` is "nodes[i]".
Result<ConfiguredNode> parseNode(const json::JsonCursor& item, const std::string& where) {
  if (item.kind() != json::JsonKind::Object) return Error(where + ": expected object");
  ConfiguredNode node;
  bool hasId = false;
  bool hasIp = false;
  std::optional<Error> error;
  auto readString = [&](const json::JsonCursor& v, std::string_view field, std::string& out) {
    if (v.kind() != json::JsonKind::String) {
      error = Error(where + "." + std::string(field) + ": expected string");
      return false;
    }
    v.get(out);
    return true;
  };
  item.forEachMember([&](std::string_view field, const json::JsonCursor& v) {
    if (error) return;
    // (A repeated field is refused by JsonReader::parse.)
    if (v.kind() == json::JsonKind::Null) return;  // as in the config file: null is absent
    if (field == "id") {
      hasId = readString(v, field, node.id);
    } else if (field == "ip") {
      hasIp = readString(v, field, node.ip);
    } else if (field == "external") {
      readString(v, field, node.external);
    } else if (field == "port") {
      int64_t port = 0;
      if (v.kind() != json::JsonKind::Integer) {
        error = Error(where + ".port: expected integer");
      } else if (!v.get(port) || port < 1 || port > 65535) {
        error = Error(where + ".port: must be between 1 and 65535");
      } else {
        node.port = static_cast<int>(port);
      }
    } else {
      // Typos are caught at start, not silently ignored (as unknown keys).
      error = Error(where + ": unknown field " + quoteValue(field) +
                    " (expected \"id\", \"ip\", \"port\" or \"external\")");
    }
  });
  if (error) return std::move(*error);
  if (!hasId) return Error(where + ".id is required");
  if (Status s = validateNodeId(node.id); !s) return Error(where + ".id: " + s.message());
  if (!hasIp) return Error(where + ".ip is required");
  if (Status s = validateNodeAddress(node.ip); !s) return Error(where + ".ip: " + s.message());
  if (Status s = validateExternal(node.external); !s) {
    return Error(where + ".external: " + s.message());
  }
  return node;
}

// The key's value is already a JSON array of objects (the loader checks
// that); the items are checked here.
Status validateNodes(const std::string& json) {
  Result<std::vector<ConfiguredNode>> nodes = parseConfiguredNodes(json);
  if (!nodes) return nodes.error();
  return Status();
}

const config::EffectiveSetting* findSetting(const OrchLoadOutcome& outcome, std::string_view key) {
  for (const config::EffectiveSetting& e : outcome.effective) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string describeSource(const OrchLoadOutcome& outcome, std::string_view key) {
  const config::EffectiveSetting* e = findSetting(outcome, key);
  return e == nullptr ? "default" : e->source.describe();
}

}  // namespace

Status validateNodeId(std::string_view id) {
  bool ok =
      !id.empty() && id.size() <= 63 && id.front() != '_' && id.front() != '.' && id.front() != '-';
  for (char c : id) ok = ok && isIdChar(c);
  if (!ok) {
    return Error("invalid node id " + quoteValue(id) +
                 ": must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or "
                 "digit");
  }
  return Status();
}

Result<std::vector<ConfiguredNode>> parseConfiguredNodes(std::string_view text) {
  json::JsonReader reader;
  Result<json::JsonCursor> root = reader.parse(text);
  if (!root) return Error("nodes: " + root.message());
  if (root->kind() != json::JsonKind::Array) {
    return Error("nodes: expected a JSON array of objects");
  }
  // forEach would refuse a longer array with a message naming "request
  // body"; say it here with the key's name.
  const size_t maxItems = reader.limits().maxArrayItems;
  if (root->size() > maxItems) {
    return Error("nodes: too many items (max " + std::to_string(maxItems) + ")");
  }
  std::vector<ConfiguredNode> out;
  std::map<std::string, size_t> indexById;
  std::optional<Error> error;
  size_t index = 0;
  root->forEach([&](const json::JsonCursor& item) {
    const size_t i = index++;
    if (error) return;
    const std::string where = "nodes[" + std::to_string(i) + "]";
    Result<ConfiguredNode> node = parseNode(item, where);
    if (!node) {
      error = node.error();
      return;
    }
    auto [it, inserted] = indexById.emplace(node->id, i);
    if (!inserted) {
      error = Error(where + ".id: duplicate node id " + quoteValue(node->id) + " (also nodes[" +
                    std::to_string(it->second) + "])");
      return;
    }
    out.push_back(std::move(*node));
  });
  if (error) return std::move(*error);
  if (!reader.ok()) return Error("nodes: " + reader.error());
  return out;
}

config::ConfigSchema<OrchConfig> orchConfigSchema(const OrchConfigHooks& hooks) {
  using C = OrchConfig;
  config::ConfigSchema<C> s(config::SchemaInfo{
      "sandboxd-o", "sandboxd control plane: node registry, scheduler, pass-through proxy", "ORCH_",
      std::string(kOrchDefaultConfigFile)});

  auto addr =
      s.string("http_addr", ":8082",
               "listen address of the HTTP API: :8082, 127.0.0.1:8082 or [::1]:8082", &C::httpAddr);
  if (hooks.validateListenAddress) {
    addr.validate([check = hooks.validateListenAddress](const std::string& a) { return check(a); });
  }
  s.string("shared_secret", "",
           "bearer token required by every endpoint but /healthz; none: generated by the daemon "
           "at first start and kept in a 0600 file",
           &C::sharedSecret)
      .secret();
  s.string("node_shared_secret", "", "bearer token sent to the nodes' sbxlets; none: shared_secret",
           &C::nodeSharedSecret)
      .secret();
  // Not required to be absolute: SQLite's ":memory:" is handy in tests.
  s.string("sqlite_path", "/var/lib/sandboxd/orchestrator.db",
           "SQLite database of nodes and sandboxes", &C::sqlitePath)
      .validate(nonEmpty);
  s.duration("heartbeat_interval", "10s", "how often every node is probed", &C::heartbeatInterval)
      .positive();
  s.duration("probe_timeout", "3s", "how long one heartbeat request may take", &C::probeTimeout)
      .positive();
  s.integer("ready_success_threshold", 2, 1, 1000,
            "successful heartbeats in a row that make a node Ready", &C::readySuccessThreshold);
  s.integer("notready_failure_threshold", 2, 1, 1000,
            "failed heartbeats in a row that make a node NotReady", &C::notreadyFailureThreshold);
  s.integer("host_port_min", 10000, 1, 65535,
            "lowest host port assigned to sandbox ports (at most host_port_max)", &C::hostPortMin);
  s.integer("host_port_max", 32767, 1, 65535, "highest host port assigned to sandbox ports",
            &C::hostPortMax);
  s.integer("create_rps", 20, 1, 1000000,
            "sandbox creates accepted per second (over it: 429); see create_burst", &C::createRps);
  s.integer("create_burst", 40, 1, 1000000, "sandbox creates accepted at once after a quiet spell",
            &C::createBurst);
  s.duration("sandbox_op_timeout", "60s", "how long one call to a node about a sandbox may take",
             &C::sandboxOpTimeout)
      .positive();
  {
    // Bound by hand: the key's value is JSON text, the field a decoded list.
    config::KeyDef def;
    def.name = "nodes";
    def.type = config::KeyType::JsonArray;
    def.defaultText = "[]";
    def.help =
        "nodes registered at start (source \"config\"): "
        "[{\"id\":\"node-a\",\"ip\":\"10.0.0.5\",\"port\":8080,\"external\":\"203.0.113.10\"}]; "
        "port defaults to 8080, external is optional";
    def.validators.push_back([](const config::Value& v) -> Status {
      const std::string* json = std::get_if<std::string>(&v);
      if (json == nullptr) return Error("internal error: value of unexpected type");
      return validateNodes(*json);
    });
    s.add(std::move(def), [](C& target, const config::Value& v) {
      Result<std::vector<ConfiguredNode>> nodes = parseConfiguredNodes(std::get<std::string>(v));
      // The validator above accepted this very text.
      if (!nodes) std::abort();
      target.nodes = std::move(*nodes);
    });
  }
  s.duration("pending_timeout", "10m",
             "how long a sandbox may stay Pending (no node fits) before it is Failed",
             &C::pendingTimeout)
      .positive();
  s.duration("status_sync_interval", "20ms",
             "how often sandboxes on their way to Running are polled on their nodes (one "
             "batched call per node per tick, only while some are)",
             &C::statusSyncInterval)
      .positive();
  s.integer("worker_threads", 4, 1, 64, "threads for blocking work (SQLite writes)",
            &C::workerThreads);
  // As sbxlet's: a bare number of seconds is what the earlier flag took.
  s.duration("shutdown_grace", "10s",
             "time in-flight requests get after SIGTERM (a plain number means seconds)",
             &C::shutdownGrace)
      .range(nanoseconds(0), std::chrono::hours(1))
      .acceptBareSeconds();
  s.integer("http_max_connections", 10000, 1, 1000000, "most open HTTP connections",
            &C::httpMaxConnections);
  s.memory("http_max_body_bytes", "1Mi", "largest HTTP request body accepted",
           &C::httpMaxBodyBytes);
  s.string("log_dir", "", "directory of sandboxd-o's own log files; none: stderr", &C::logDir)
      .envAlias("SANDBOX_LOG_DIR");
  s.string("log_file_prefix", "sandboxd-o", "name prefix of sandboxd-o's log files",
           &C::logFilePrefix)
      .envAlias("SANDBOX_LOG_FILE_PREFIX")
      .validate(validateLogFilePrefix);
  s.string("app_env", "", "deployment environment name, e.g. prod, staging", &C::appEnv)
      .envAlias("APP_ENV");
  return s;
}

OrchConfig defaultOrchConfig() {
  const char* argv[] = {"sandboxd-o", nullptr};
  auto loaded = orchConfigSchema().load(
      1, argv, [](const std::string&) { return std::optional<std::string>(); },
      [](const std::string&) { return Result<std::optional<std::string>>(std::nullopt); });
  // The defaults are constants checked by the tests; failing here is a bug.
  if (!loaded) std::abort();
  return std::move(loaded->config);
}

Result<OrchLoadOutcome> loadOrchConfig(int argc, const char* const* argv,
                                       const config::EnvLookup& env,
                                       const config::FileReader& readFile,
                                       const OrchConfigHooks& hooks) {
  Result<OrchLoadOutcome> loaded = orchConfigSchema(hooks).load(argc, argv, env, readFile);
  if (!loaded || loaded->helpRequested) return loaded;
  const OrchConfig& cfg = loaded->config;
  // Each bound holds on its own; only together can they be wrong, and
  // either one may be the mistake, so name both with their sources.
  if (cfg.hostPortMin > cfg.hostPortMax) {
    return Error("invalid host port range: host_port_min " + std::to_string(cfg.hostPortMin) +
                 " (from " + describeSource(*loaded, "host_port_min") +
                 ") is greater than host_port_max " + std::to_string(cfg.hostPortMax) + " (from " +
                 describeSource(*loaded, "host_port_max") + ")");
  }
  return loaded;
}

}  // namespace sbx::orch
