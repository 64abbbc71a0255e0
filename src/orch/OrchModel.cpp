#include "orch/OrchModel.h"

#include <chrono>
#include <ctime>

#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/SandboxState.h"

namespace sbx::orch {

int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339(int64_t unixMs) {
  if (unixMs <= 0) return "";
  time_t secs = static_cast<time_t>(unixMs / 1000);
  tm t;
  ::gmtime_r(&secs, &t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

const char* nodeStateName(NodeState s) {
  switch (s) {
    case NodeState::Ready:
      return "Ready";
    case NodeState::NotReady:
      return "NotReady";
    case NodeState::Unknown:
      break;
  }
  return "Unknown";
}

namespace {

bool requireInt(const json::JsonCursor& c, std::initializer_list<std::string_view> names,
                int64_t& out, json::JsonReader& reader) {
  json::JsonCursor f = c.field(names);
  if (!f.present()) {
    reader.recordError(f.path() + ": missing");
    return false;
  }
  return f.get(out);
}

std::optional<NodeState> parseNodeState(std::string_view s) {
  if (s == "Ready") return NodeState::Ready;
  if (s == "NotReady") return NodeState::NotReady;
  if (s == "Unknown") return NodeState::Unknown;
  return std::nullopt;
}

void writeStrings(json::JsonWriter& w, const std::vector<std::string>& v) {
  w.beginArray();
  for (const auto& s : v) w.value(s);
  w.endArray();
}

// The spec in snake_case, as seed 001 shows it, with ttl_seconds; no
// host_port (the control plane assigns them: see assigned_ports).
void writeSpecSnake(json::JsonWriter& w, const OrchSandbox& s) {
  node::SpecJsonOptions o;
  o.snakeCase = true;
  o.withId = false;
  o.omitUnassignedHostPorts = true;
  o.extraFields = [&s](json::JsonWriter& jw) {
    if (s.ttlSeconds > 0) jw.kv("ttl_seconds", s.ttlSeconds);
  };
  node::writeSandboxSpecJson(w, s.spec, o);
}

void writeAssignedPorts(json::JsonWriter& w, const std::vector<AssignedPort>& ports) {
  w.beginArray();
  for (const auto& p : ports) {
    w.beginObject()
        .kv("host_port", p.hostPort)
        .kv("container_port", p.containerPort)
        .kv("protocol", p.protocol)
        .endObject();
  }
  w.endArray();
}

}  // namespace

Result<NodeResources> decodeNodeResources(const json::JsonCursor& c, json::JsonReader& reader) {
  NodeResources r;
  if (!c.present()) return makeError("resources: missing");
  bool ok = requireInt(c, {"capacity_cpu_milli"}, r.capacityCpuMilli, reader) &&
            requireInt(c, {"capacity_memory_bytes"}, r.capacityMemoryBytes, reader) &&
            requireInt(c, {"allocatable_cpu_milli"}, r.allocatableCpuMilli, reader) &&
            requireInt(c, {"allocatable_memory_bytes"}, r.allocatableMemoryBytes, reader) &&
            requireInt(c, {"used_cpu_milli"}, r.usedCpuMilli, reader) &&
            requireInt(c, {"used_memory_bytes"}, r.usedMemoryBytes, reader) &&
            requireInt(c, {"available_cpu_milli"}, r.availableCpuMilli, reader) &&
            requireInt(c, {"available_memory_bytes"}, r.availableMemoryBytes, reader);
  c.field({"max_alloc_percent"}).get(r.maxAllocPercent);
  c.field({"updated_at"}).get(r.updatedAt);
  c.field({"external"}).get(r.external);
  if (!ok || !reader.ok()) return makeError(reader.ok() ? "resources: invalid" : reader.error());
  r.known = true;
  return r;
}

std::string OrchNode::baseUrl() const {
  if (ip.find(':') != std::string::npos) return "http://[" + ip + "]:" + std::to_string(port);
  return "http://" + ip + ":" + std::to_string(port);
}

std::string OrchNode::external() const {
  if (!configExternal.empty()) return configExternal;
  if (!resources.external.empty()) return resources.external;
  return ip;
}

namespace {

// The fields sbxlet's /v1/node/status reports (decodeNodeResources reads them back).
void writeResourceFields(json::JsonWriter& w, const NodeResources& r) {
  w.kv("capacity_cpu_milli", r.capacityCpuMilli)
      .kv("capacity_memory_bytes", r.capacityMemoryBytes)
      .kv("allocatable_cpu_milli", r.allocatableCpuMilli)
      .kv("allocatable_memory_bytes", r.allocatableMemoryBytes)
      .kv("used_cpu_milli", r.usedCpuMilli)
      .kv("used_memory_bytes", r.usedMemoryBytes)
      .kv("available_cpu_milli", r.availableCpuMilli)
      .kv("available_memory_bytes", r.availableMemoryBytes)
      .kv("max_alloc_percent", r.maxAllocPercent)
      .kv("updated_at", r.updatedAt);
}

}  // namespace

void writeNodeResourcesJson(json::JsonWriter& w, const OrchNode& n) {
  w.beginObject();
  if (n.resources.known) writeResourceFields(w, n.resources);
  w.kv("external", n.external());
  w.endObject();
}

void writeNodeJson(json::JsonWriter& w, const OrchNode& n) {
  w.beginObject()
      .kv("id", n.name)
      .kv("name", n.name)
      .kv("ip", n.ip)
      .kv("port", n.port)
      .kv("state", nodeStateName(n.state))
      .kv("source", n.source)
      .kv("last_error", n.lastError)
      .kv("success_streak", n.successStreak)
      .kv("failure_streak", n.failureStreak)
      .kv("created_at", rfc3339(n.createdAtMs))
      .kv("updated_at", rfc3339(n.updatedAtMs))
      .kv("last_heartbeat", rfc3339(n.lastHeartbeatMs));
  w.key("resources");
  writeNodeResourcesJson(w, n);
  w.kv("sbxlet_base_url", n.baseUrl()).endObject();
}

const char* sandboxPhaseName(SandboxPhase p) {
  switch (p) {
    case SandboxPhase::Pending:
      return "Pending";
    case SandboxPhase::Scheduled:
      return "Scheduled";
    case SandboxPhase::Running:
      return "Running";
    case SandboxPhase::Failed:
      return "Failed";
    case SandboxPhase::Expired:
      return "Expired";
    case SandboxPhase::Deleting:
      return "Deleting";
  }
  return "Pending";
}

std::optional<SandboxPhase> parseSandboxPhase(std::string_view s) {
  for (SandboxPhase p : {SandboxPhase::Pending, SandboxPhase::Scheduled, SandboxPhase::Running,
                         SandboxPhase::Failed, SandboxPhase::Expired, SandboxPhase::Deleting}) {
    if (s == sandboxPhaseName(p)) return p;
  }
  return std::nullopt;
}

void writeSandboxJson(json::JsonWriter& w, const OrchSandbox& s) {
  w.beginObject().kv("id", s.id).key("spec");
  writeSpecSnake(w, s);
  w.key("status").beginObject().kv("phase", sandboxPhaseName(s.phase));
  if (!s.nodeName.empty()) w.kv("node_name", s.nodeName);
  if (!s.external.empty()) w.kv("external", s.external);
  if (!s.ip.empty()) w.kv("ip", s.ip);
  if (!s.assignedPorts.empty()) {
    w.key("assigned_ports");
    writeAssignedPorts(w, s.assignedPorts);
  }
  if (s.expireAtMs > 0) w.kv("expire_at", rfc3339(s.expireAtMs));
  if (!s.message.empty()) w.kv("message", s.message);
  w.endObject();
  w.kv("created_at", rfc3339(s.createdAtMs)).kv("updated_at", rfc3339(s.updatedAtMs)).endObject();
}

std::string encodeNodeDoc(const OrchNode& n) {
  json::JsonWriter w(512);
  w.beginObject()
      .kv("name", n.name)
      .kv("ip", n.ip)
      .kv("port", n.port)
      .kv("source", n.source)
      .kv("config_external", n.configExternal)
      .kv("state", nodeStateName(n.state))
      .kv("last_error", n.lastError)
      .kv("success_streak", n.successStreak)
      .kv("failure_streak", n.failureStreak)
      .kv("created_at_ms", n.createdAtMs)
      .kv("updated_at_ms", n.updatedAtMs)
      .kv("last_heartbeat_ms", n.lastHeartbeatMs);
  if (n.resources.known) {
    w.key("resources").beginObject();
    writeResourceFields(w, n.resources);
    w.kv("external", n.resources.external).endObject();
  }
  w.endObject();
  return w.take();
}

Result<OrchNode> decodeNodeDoc(std::string_view doc) {
  json::JsonReader reader;
  auto root = reader.parse(doc);
  if (!root.ok()) return root.error();
  OrchNode n;
  int64_t port = 0, ok = 0, bad = 0;
  std::string state;
  root->field({"name"}).get(n.name);
  root->field({"ip"}).get(n.ip);
  root->field({"port"}).get(port);
  root->field({"source"}).get(n.source);
  root->field({"config_external"}).get(n.configExternal);
  root->field({"state"}).get(state);
  root->field({"last_error"}).get(n.lastError);
  root->field({"success_streak"}).get(ok);
  root->field({"failure_streak"}).get(bad);
  root->field({"created_at_ms"}).get(n.createdAtMs);
  root->field({"updated_at_ms"}).get(n.updatedAtMs);
  root->field({"last_heartbeat_ms"}).get(n.lastHeartbeatMs);
  json::JsonCursor res = root->field({"resources"});
  if (res.present()) {
    auto r = decodeNodeResources(res, reader);
    if (!r.ok()) return r.error();
    n.resources = *r;
  }
  if (!reader.ok()) return makeError(reader.error());
  if (n.name.empty() || n.ip.empty() || port < 1 || port > 65535) {
    return makeError("node document: name, ip or port missing");
  }
  n.port = static_cast<int>(port);
  n.successStreak = static_cast<int>(ok);
  n.failureStreak = static_cast<int>(bad);
  n.state = parseNodeState(state).value_or(NodeState::Unknown);
  return n;
}

std::string encodeSandboxDoc(const OrchSandbox& s) {
  json::JsonWriter w(1024);
  w.beginObject().kv("id", s.id).key("spec");
  writeSpecSnake(w, s);
  w.kv("phase", sandboxPhaseName(s.phase))
      .kv("node_name", s.nodeName)
      .kv("external", s.external)
      .kv("ip", s.ip)
      .kv("message", s.message)
      .kv("expire_at_ms", s.expireAtMs)
      .kv("created_at_ms", s.createdAtMs)
      .kv("updated_at_ms", s.updatedAtMs)
      .kv("expired", s.expired);
  w.key("assigned_ports");
  writeAssignedPorts(w, s.assignedPorts);
  w.key("refused_by");
  writeStrings(w, s.refusedBy);
  w.endObject();
  return w.take();
}

Result<OrchSandbox> decodeSandboxDoc(std::string_view doc) {
  json::JsonReader reader;
  auto root = reader.parse(doc);
  if (!root.ok()) return root.error();
  OrchSandbox s;
  root->field({"id"}).get(s.id);
  json::JsonCursor specCursor = root->field({"spec"});
  node::SandboxSpecOptions opts;
  opts.readId = false;
  opts.allowUnassignedHostPorts = true;
  auto spec = node::decodeSandboxSpec(specCursor, reader, opts);
  if (!spec.ok()) return makeError("sandbox " + s.id + ": " + spec.message());
  s.spec = std::move(*spec);
  s.spec.id = s.id;
  specCursor.field({"ttl_seconds"}).get(s.ttlSeconds);
  std::string phase;
  root->field({"phase"}).get(phase);
  root->field({"node_name"}).get(s.nodeName);
  root->field({"external"}).get(s.external);
  root->field({"ip"}).get(s.ip);
  root->field({"message"}).get(s.message);
  root->field({"expire_at_ms"}).get(s.expireAtMs);
  root->field({"created_at_ms"}).get(s.createdAtMs);
  root->field({"updated_at_ms"}).get(s.updatedAtMs);
  root->field({"expired"}).get(s.expired);
  root->field({"assigned_ports"}).forEach([&](const json::JsonCursor& c) {
    AssignedPort p;
    int64_t hp = 0, cp = 0;
    c.field({"host_port"}).get(hp);
    c.field({"container_port"}).get(cp);
    c.field({"protocol"}).get(p.protocol);
    p.hostPort = static_cast<int>(hp);
    p.containerPort = static_cast<int>(cp);
    s.assignedPorts.push_back(std::move(p));
  });
  root->field({"refused_by"}).forEach([&](const json::JsonCursor& c) {
    std::string n;
    if (c.get(n)) s.refusedBy.push_back(std::move(n));
  });
  if (!reader.ok()) return makeError("sandbox " + s.id + ": " + reader.error());
  auto p = parseSandboxPhase(phase);
  if (!p) return makeError("sandbox " + s.id + ": unknown phase \"" + phase + "\"");
  s.phase = *p;
  if (Status st = node::validateSandboxId(s.id); !st.ok()) return st.error();
  return s;
}

std::string nodeCreateBody(const OrchSandbox& s) {
  node::SandboxSpec spec = s.spec;
  spec.id = s.id;
  // Assigned ports in the order of the spec's ports.
  for (size_t i = 0; i < spec.ports.size() && i < s.assignedPorts.size(); ++i) {
    spec.ports[i].hostPort = s.assignedPorts[i].hostPort;
  }
  json::JsonWriter w(1024);
  node::writeSandboxSpecJson(w, spec);
  return w.take();
}

}  // namespace sbx::orch
