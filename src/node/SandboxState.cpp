#include "node/SandboxState.h"

#include <ctime>

#include "json/JsonReader.h"
#include "json/JsonWriter.h"

namespace sbx::node {

const char* phaseName(SandboxPhase p) {
  switch (p) {
    case SandboxPhase::Creating: return "creating";
    case SandboxPhase::Running: return "running";
    case SandboxPhase::Error: return "error";
    case SandboxPhase::Deleting: return "deleting";
    case SandboxPhase::Deleted: return "deleted";
  }
  return "error";
}

const char* phaseName(ContainerPhase p) {
  switch (p) {
    case ContainerPhase::Creating: return "creating";
    case ContainerPhase::Running: return "running";
    case ContainerPhase::Exited: return "exited";
    case ContainerPhase::Error: return "error";
  }
  return "error";
}

std::optional<SandboxPhase> parseSandboxPhase(std::string_view s) {
  for (SandboxPhase p : {SandboxPhase::Creating, SandboxPhase::Running, SandboxPhase::Error,
                         SandboxPhase::Deleting, SandboxPhase::Deleted}) {
    if (s == phaseName(p)) return p;
  }
  return std::nullopt;
}

std::optional<ContainerPhase> parseContainerPhase(std::string_view s) {
  for (ContainerPhase p : {ContainerPhase::Creating, ContainerPhase::Running,
                           ContainerPhase::Exited, ContainerPhase::Error}) {
    if (s == phaseName(p)) return p;
  }
  return std::nullopt;
}

ContainerStatus* SandboxState::container(std::string_view name) {
  for (auto& c : containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string containerId(const std::string& sandboxId, const std::string& containerName) {
  return sandboxId + "-" + containerName;
}

std::string rfc3339Now() {
  time_t now = ::time(nullptr);
  tm t;
  ::gmtime_r(&now, &t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

SandboxState newSandboxState(SandboxSpec spec, const std::string& now) {
  SandboxState s;
  s.spec = std::move(spec);
  s.createdAt = now;
  s.updatedAt = now;
  for (const auto& c : s.spec.containers) {
    ContainerStatus cs;
    cs.name = c.name;
    cs.id = containerId(s.spec.id, c.name);
    cs.image = c.image;
    s.containers.push_back(std::move(cs));
  }
  return s;
}

namespace {

void writePorts(json::JsonWriter& w, const std::vector<PortMapping>& ports) {
  w.beginArray();
  for (const auto& p : ports) {
    w.beginObject()
        .kv("hostPort", p.hostPort)
        .kv("containerPort", p.containerPort)
        .kv("protocol", p.protocol)
        .endObject();
  }
  w.endArray();
}

void writeStrings(json::JsonWriter& w, const std::vector<std::string>& v) {
  w.beginArray();
  for (const auto& s : v) w.value(s);
  w.endArray();
}

const ContainerSpec* specOf(const SandboxState& s, const std::string& name) {
  for (const auto& c : s.spec.containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace

void writeSandboxSpecJson(json::JsonWriter& w, const SandboxSpec& spec,
                          const SpecJsonOptions& options) {
  const bool snake = options.snakeCase;
  auto key = [snake](const char* camel, const char* snakeName) { return snake ? snakeName : camel; };
  w.beginObject();
  if (options.withId) w.kv("id", spec.id);
  w.kv("egress", spec.egress);
  if (options.extraFields) options.extraFields(w);
  w.key("ports").beginArray();
  for (const auto& p : spec.ports) {
    w.beginObject();
    if (p.hostPort != 0 || !options.omitUnassignedHostPorts) {
      w.kv(key("hostPort", "host_port"), p.hostPort);
    }
    w.kv(key("containerPort", "container_port"), p.containerPort).kv("protocol", p.protocol);
    w.endObject();
  }
  w.endArray();
  if (spec.readinessProbe) {
    const ReadinessProbe& p = *spec.readinessProbe;
    w.key(key("readinessProbe", "readiness_probe"))
        .beginObject()
        .kv("protocol", p.protocol)
        .kv("port", p.port);
    if (!p.path.empty()) w.kv("path", p.path);
    w.kv(key("initialDelaySeconds", "initial_delay_seconds"), p.initialDelaySeconds)
        .kv(key("periodSeconds", "period_seconds"), p.periodSeconds)
        .kv(key("timeoutSeconds", "timeout_seconds"), p.timeoutSeconds)
        .kv(key("successThreshold", "success_threshold"), p.successThreshold)
        .kv(key("failureThreshold", "failure_threshold"), p.failureThreshold)
        .endObject();
  }
  w.key("containers").beginArray();
  for (const auto& c : spec.containers) {
    w.beginObject().kv("name", c.name).kv("image", c.image);
    w.key("args");
    writeStrings(w, c.args);
    w.key("env");
    writeStrings(w, c.env);
    w.kv(key("workDir", "work_dir"), c.workDir);
    w.key("resource").beginObject().kv("cpu", c.resource.cpu).kv("memory", c.resource.memory);
    if (!c.resource.ephemeralStorage.empty()) {
      w.kv(key("ephemeralStorage", "ephemeral_storage"), c.resource.ephemeralStorage);
    }
    w.endObject().endObject();
  }
  w.endArray();
  w.endObject();
}

void writeSandboxJson(json::JsonWriter& w, const SandboxState& s) {
  w.beginObject();
  w.kv("id", s.id()).kv("phase", phaseName(s.phase)).kv("namespace", s.namespaceName);
  w.kv("ip", s.ip).kv("subnetCIDR", s.subnetCidr).kv("bridgeName", s.bridgeName);
  w.kv("egress", s.spec.egress);
  w.key("ports");
  writePorts(w, s.spec.ports);
  w.key("containers").beginObject();
  for (const auto& c : s.containers) {
    const ContainerSpec* cs = specOf(s, c.name);
    w.key(c.name).beginObject();
    w.kv("id", c.id).kv("name", c.name).kv("phase", phaseName(c.phase)).kv("image", c.image);
    w.key("args");
    writeStrings(w, cs ? cs->args : std::vector<std::string>{});
    w.key("resource").beginObject();
    w.kv("cpu", cs ? cs->resource.cpu : "").kv("memory", cs ? cs->resource.memory : "");
    w.endObject();
    w.kv("taskPID", c.taskPid).kv("runtime", s.runtime).kv("taskStatus", c.taskStatus);
    if (c.exitCode) w.kv("exitCode", *c.exitCode);
    if (c.oomKilled) w.kv("oomKilled", true);
    if (!c.error.empty()) w.kv("error", c.error);
    w.endObject();
  }
  w.endObject();
  w.kv("cniConfPath", s.cniConfPath).kv("createdAt", s.createdAt).kv("updatedAt", s.updatedAt);
  if (!s.error.empty()) w.kv("error", s.error);
  w.endObject();
}

std::string encodeStateFile(const SandboxState& s) {
  json::JsonWriter w(2048);
  w.beginObject().kv("format", 1);
  w.key("sandbox");
  writeSandboxJson(w, s);
  w.key("spec");
  writeSandboxSpecJson(w, s.spec);
  w.key("internal").beginObject().kv("netnsPath", s.netnsPath).kv("version", s.version);
  if (!s.hostVeth.empty()) w.kv("hostVeth", s.hostVeth);
  if (!s.cniResult.empty()) w.kv("cniResult", s.cniResult);
  if (s.portsPublished) w.kv("portsPublished", true);
  if (s.ready) w.kv("ready", true);
  w.endObject();
  w.endObject();
  return w.take();
}

Result<SandboxState> decodeStateFile(std::string_view text) {
  json::JsonReader reader;
  auto root = reader.parse(text);
  if (!root.ok()) return root.error();
  int64_t format = 0;
  root->field({"format"}).get(format);
  if (format != 1) return Error("unsupported state file format " + std::to_string(format));
  auto spec = decodeSandboxSpec(root->field({"spec"}), reader);
  if (!spec.ok()) return Error("state file spec: " + spec.message());
  SandboxState s = newSandboxState(std::move(*spec), "");
  json::JsonCursor sb = root->field({"sandbox"});
  std::string phase;
  sb.field({"phase"}).get(phase);
  auto p = parseSandboxPhase(phase);
  if (!p) return Error("state file: unknown phase \"" + phase + "\"");
  s.phase = *p;
  sb.field({"namespace"}).get(s.namespaceName);
  sb.field({"ip"}).get(s.ip);
  sb.field({"subnetCIDR"}).get(s.subnetCidr);
  sb.field({"bridgeName"}).get(s.bridgeName);
  sb.field({"cniConfPath"}).get(s.cniConfPath);
  sb.field({"createdAt"}).get(s.createdAt);
  sb.field({"updatedAt"}).get(s.updatedAt);
  sb.field({"error"}).get(s.error);
  json::JsonCursor containers = sb.field({"containers"});
  for (auto& c : s.containers) {
    json::JsonCursor cc = containers.field({c.name});
    if (!cc.present()) continue;
    std::string cphase;
    cc.field({"phase"}).get(cphase);
    if (auto cp = parseContainerPhase(cphase)) c.phase = *cp;
    cc.field({"id"}).get(c.id);
    cc.field({"image"}).get(c.image);
    int64_t pid = 0;
    if (cc.field({"taskPID"}).get(pid)) c.taskPid = static_cast<uint32_t>(pid);
    cc.field({"taskStatus"}).get(c.taskStatus);
    cc.field({"runtime"}).get(s.runtime);
    int64_t exit = 0;
    if (cc.field({"exitCode"}).get(exit)) c.exitCode = exit;
    cc.field({"oomKilled"}).get(c.oomKilled);
    cc.field({"error"}).get(c.error);
  }
  json::JsonCursor internal = root->field({"internal"});
  internal.field({"netnsPath"}).get(s.netnsPath);
  internal.field({"hostVeth"}).get(s.hostVeth);
  internal.field({"cniResult"}).get(s.cniResult);
  internal.field({"portsPublished"}).get(s.portsPublished);
  internal.field({"ready"}).get(s.ready);
  int64_t version = 0;
  if (internal.field({"version"}).get(version) && version < 0) {
    return Error("state file: internal.version must be >= 0");
  }
  s.version = static_cast<uint64_t>(version);
  if (!reader.ok()) return Error("state file: " + reader.error());
  return s;
}

}  // namespace sbx::node
