// The control plane's records: store documents (round trips and what they
// refuse), the API's sandbox object against seed 001's shape, the body sent
// to a node's POST /v1/sandboxes, and the time format.

#include "orch/OrchModel.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/SandboxSpec.h"

using namespace sbx;
using namespace sbx::orch;

namespace {

// A result's error message, "" when it is ok (for REQUIRE_MESSAGE, which
// may format its message even when the check passes).
template <class T>
std::string why(const Result<T>& r) {
  return r.ok() ? std::string() : r.message();
}

// A spec as the API's "spec" object carries it (snake_case), with every
// optional part present.
constexpr char kFullSpec[] = R"({
  "egress": true,
  "ttl_seconds": 3600,
  "ports": [{"container_port": 80, "protocol": "tcp"}, {"container_port": 53, "protocol": "udp"}],
  "readiness_probe": {"protocol": "http", "port": 80, "path": "/ready",
    "initial_delay_seconds": 1, "period_seconds": 2, "timeout_seconds": 3,
    "success_threshold": 4, "failure_threshold": 5},
  "containers": [
    {"name": "web", "image": "nginx:latest", "args": ["nginx", "-g", "daemon off;"],
     "env": ["A=1", "B=two words"], "work_dir": "/srv",
     "resource": {"cpu": "200m", "memory": "256Mi", "ephemeral_storage": "96Mi"}},
    {"name": "side", "image": "alpine:3.20", "resource": {"cpu": "0.5", "memory": "64Mi"}}
  ]
})";

node::SandboxSpec decodeSpec(const std::string& id, const std::string& json) {
  json::JsonReader reader;
  auto root = reader.parse(json);
  REQUIRE(root.ok());
  node::SandboxSpecOptions opts;
  opts.readId = false;
  opts.allowUnassignedHostPorts = true;
  auto spec = node::decodeSandboxSpec(*root, reader, opts);
  REQUIRE_MESSAGE(spec.ok(), why(spec));
  spec->id = id;
  return *spec;
}

OrchSandbox runningSandbox() {
  OrchSandbox s;
  s.id = "sbx-demo-1";
  s.spec = decodeSpec(s.id, kFullSpec);
  s.ttlSeconds = 3600;
  s.phase = SandboxPhase::Running;
  s.nodeName = "node-a";
  s.external = "203.0.113.10";
  s.ip = "10.89.0.7";
  s.message = "node node-a is NotReady: \"quoted\"";
  s.assignedPorts = {AssignedPort{10000, 80, "tcp"}, AssignedPort{10001, 53, "udp"}};
  s.expireAtMs = 1778823090000;   // 2026-05-15T05:31:30Z
  s.createdAtMs = 1778819490000;  // 2026-05-15T04:31:30Z
  s.updatedAtMs = 1778819494000;  // 2026-05-15T04:31:34Z
  s.refusedBy = {"node-b", "node-c"};
  s.expired = true;
  return s;
}

// A stored sandbox document with `id`, `phase` and `spec` substituted.
std::string sandboxDoc(const std::string& id, const std::string& phase, const std::string& spec) {
  return R"({"id":")" + id + R"(","spec":)" + spec + R"(,"phase":")" + phase +
         R"(","node_name":"","external":"","ip":"","message":"","expire_at_ms":0,)"
         R"("created_at_ms":1,"updated_at_ms":1,"expired":false,"assigned_ports":[],"refused_by":[]})";
}

constexpr char kMinimalSpec[] =
    R"({"containers":[{"name":"web","image":"nginx","resource":{"cpu":"100m","memory":"64Mi"}}]})";

std::string str(const json::JsonCursor& c) {
  std::string s;
  CHECK_MESSAGE(c.get(s), c.path());
  return s;
}

int64_t num(const json::JsonCursor& c) {
  int64_t n = -1;
  CHECK_MESSAGE(c.get(n), c.path());
  return n;
}

}  // namespace

TEST_CASE("OrchModel: rfc3339") {
  CHECK(rfc3339(0) == "");
  CHECK(rfc3339(-5) == "");
  CHECK(rfc3339(1778819400000) == "2026-05-15T04:30:00Z");
  CHECK(rfc3339(1778819400999) == "2026-05-15T04:30:00Z");  // milliseconds dropped
  CHECK(rfc3339(1000) == "1970-01-01T00:00:01Z");
  CHECK(nowUnixMs() > 1700000000000);
}

TEST_CASE("OrchModel: a sandbox document round-trips every field") {
  const OrchSandbox s = runningSandbox();
  auto back = decodeSandboxDoc(encodeSandboxDoc(s));
  REQUIRE_MESSAGE(back.ok(), why(back));
  CHECK(back->id == s.id);
  CHECK(back->spec == s.spec);  // ports, probe, containers, args, env, work_dir, resources
  CHECK(back->spec.id == "sbx-demo-1");
  CHECK(back->spec.egress);
  REQUIRE(back->spec.readinessProbe.has_value());
  CHECK(back->spec.readinessProbe->path == "/ready");
  CHECK(back->spec.readinessProbe->failureThreshold == 5);
  REQUIRE(back->spec.containers.size() == 2);
  CHECK(back->spec.containers[0].env == std::vector<std::string>{"A=1", "B=two words"});
  CHECK(back->spec.containers[0].args == std::vector<std::string>{"nginx", "-g", "daemon off;"});
  CHECK(back->spec.containers[0].workDir == "/srv");
  CHECK(back->spec.containers[0].resource.ephemeralStorage == "96Mi");
  CHECK(back->spec.totalCpuMillis() == 700);
  CHECK(back->ttlSeconds == 3600);
  CHECK(back->phase == SandboxPhase::Running);
  CHECK(back->nodeName == "node-a");
  CHECK(back->external == "203.0.113.10");
  CHECK(back->ip == "10.89.0.7");
  CHECK(back->message == s.message);
  REQUIRE(back->assignedPorts.size() == 2);
  CHECK(back->assignedPorts[0].hostPort == 10000);
  CHECK(back->assignedPorts[0].containerPort == 80);
  CHECK(back->assignedPorts[0].protocol == "tcp");
  CHECK(back->assignedPorts[1].hostPort == 10001);
  CHECK(back->assignedPorts[1].containerPort == 53);
  CHECK(back->assignedPorts[1].protocol == "udp");
  CHECK(back->expireAtMs == s.expireAtMs);
  CHECK(back->createdAtMs == s.createdAtMs);
  CHECK(back->updatedAtMs == s.updatedAtMs);
  CHECK(back->refusedBy == std::vector<std::string>{"node-b", "node-c"});
  CHECK(back->expired);
  // Encoding what was decoded gives the same document.
  CHECK(encodeSandboxDoc(*back) == encodeSandboxDoc(s));

  SUBCASE("every phase, no ttl, nothing assigned") {
    for (SandboxPhase p : {SandboxPhase::Pending, SandboxPhase::Scheduled, SandboxPhase::Running,
                           SandboxPhase::Failed, SandboxPhase::Expired, SandboxPhase::Deleting}) {
      OrchSandbox t;
      t.id = "sbx-x";
      t.spec = decodeSpec(t.id, kMinimalSpec);
      t.phase = p;
      auto r = decodeSandboxDoc(encodeSandboxDoc(t));
      REQUIRE_MESSAGE(r.ok(), why(r));
      CHECK(r->phase == p);
      CHECK(parseSandboxPhase(sandboxPhaseName(p)) == p);
      CHECK(r->ttlSeconds == 0);
      CHECK(r->expireAtMs == 0);
      CHECK(r->assignedPorts.empty());
      CHECK(r->refusedBy.empty());
      CHECK_FALSE(r->expired);
      CHECK(r->spec == t.spec);
    }
  }
}

TEST_CASE("OrchModel: decodeSandboxDoc refuses a bad id, an unknown phase, an invalid spec") {
  REQUIRE(decodeSandboxDoc(sandboxDoc("sbx-ok", "Pending", kMinimalSpec)).ok());

  auto badId = decodeSandboxDoc(sandboxDoc("-starts-with-dash", "Pending", kMinimalSpec));
  REQUIRE_FALSE(badId.ok());
  CHECK(badId.message().find("invalid sandbox id") != std::string::npos);
  CHECK_FALSE(decodeSandboxDoc(sandboxDoc("", "Pending", kMinimalSpec)).ok());
  CHECK_FALSE(decodeSandboxDoc(sandboxDoc("a/b", "Pending", kMinimalSpec)).ok());

  auto badPhase = decodeSandboxDoc(sandboxDoc("sbx-ok", "Zombie", kMinimalSpec));
  REQUIRE_FALSE(badPhase.ok());
  CHECK(badPhase.message() == "sandbox sbx-ok: unknown phase \"Zombie\"");
  CHECK_FALSE(decodeSandboxDoc(sandboxDoc("sbx-ok", "running", kMinimalSpec)).ok());  // case

  auto noContainers = decodeSandboxDoc(sandboxDoc("sbx-ok", "Pending", R"({"containers":[]})"));
  REQUIRE_FALSE(noContainers.ok());
  CHECK(noContainers.message() == "sandbox sbx-ok: at least one container is required");

  auto noCpu = decodeSandboxDoc(sandboxDoc(
      "sbx-ok", "Pending",
      R"({"containers":[{"name":"web","image":"nginx","resource":{"memory":"64Mi"}}]})"));
  REQUIRE_FALSE(noCpu.ok());
  CHECK(noCpu.message() == "sandbox sbx-ok: container web: cpu is required");

  auto badPort = decodeSandboxDoc(sandboxDoc(
      "sbx-ok", "Pending",
      R"({"ports":[{"container_port":80,"protocol":"sctp"}],)"
      R"("containers":[{"name":"web","image":"nginx","resource":{"cpu":"1","memory":"1Gi"}}]})"));
  REQUIRE_FALSE(badPort.ok());
  CHECK(badPort.message().find("unsupported protocol: sctp") != std::string::npos);

  CHECK_FALSE(decodeSandboxDoc("not json").ok());
  CHECK_FALSE(decodeSandboxDoc(R"({"id":"sbx-ok","phase":"Pending"})").ok());  // no spec
}

TEST_CASE("OrchModel: a node document round-trips every field") {
  OrchNode n;
  n.name = "node-a";
  n.ip = "192.168.0.3";
  n.port = 8081;
  n.source = "config";
  n.configExternal = "203.0.113.10";
  n.state = NodeState::NotReady;
  n.lastError = "connect 192.168.0.3:8081: Connection refused";
  n.successStreak = 0;
  n.failureStreak = 3;
  n.createdAtMs = 1778819400000;
  n.updatedAtMs = 1778819490000;
  n.lastHeartbeatMs = 1778819491000;
  n.resourcesAsOfMs = 1778819490500;  // not stored
  n.resources.known = true;
  n.resources.capacityCpuMilli = 4000;
  n.resources.capacityMemoryBytes = 16709799936;
  n.resources.allocatableCpuMilli = 3600;
  n.resources.allocatableMemoryBytes = 15038819942;
  n.resources.usedCpuMilli = 100;
  n.resources.usedMemoryBytes = 134217728;
  n.resources.availableCpuMilli = 3500;
  n.resources.availableMemoryBytes = 14904602214;
  n.resources.maxAllocPercent = 90;
  n.resources.updatedAt = "2026-05-15T04:31:30Z";
  n.resources.external = "198.51.100.1";

  auto back = decodeNodeDoc(encodeNodeDoc(n));
  REQUIRE_MESSAGE(back.ok(), why(back));
  CHECK(back->name == "node-a");
  CHECK(back->ip == "192.168.0.3");
  CHECK(back->port == 8081);
  CHECK(back->source == "config");
  CHECK(back->configExternal == "203.0.113.10");
  CHECK(back->state == NodeState::NotReady);
  CHECK(back->lastError == n.lastError);
  CHECK(back->successStreak == 0);
  CHECK(back->failureStreak == 3);
  CHECK(back->createdAtMs == n.createdAtMs);
  CHECK(back->updatedAtMs == n.updatedAtMs);
  CHECK(back->lastHeartbeatMs == n.lastHeartbeatMs);
  CHECK(back->resourcesAsOfMs == 0);
  const NodeResources& r = back->resources;
  CHECK(r.known);
  CHECK(r.capacityCpuMilli == 4000);
  CHECK(r.capacityMemoryBytes == 16709799936);
  CHECK(r.allocatableCpuMilli == 3600);
  CHECK(r.allocatableMemoryBytes == 15038819942);
  CHECK(r.usedCpuMilli == 100);
  CHECK(r.usedMemoryBytes == 134217728);
  CHECK(r.availableCpuMilli == 3500);
  CHECK(r.availableMemoryBytes == 14904602214);
  CHECK(r.maxAllocPercent == 90);
  CHECK(r.updatedAt == "2026-05-15T04:31:30Z");
  CHECK(r.external == "198.51.100.1");
  CHECK(back->external() == "203.0.113.10");  // the config's wins
  CHECK(back->baseUrl() == "http://192.168.0.3:8081");
  CHECK(encodeNodeDoc(*back) == encodeNodeDoc(n));

  SUBCASE("no resources yet, Ready and Unknown states") {
    OrchNode m;
    m.name = "node-b";
    m.ip = "::1";
    m.port = 8080;
    for (NodeState st : {NodeState::Unknown, NodeState::Ready}) {
      m.state = st;
      auto b = decodeNodeDoc(encodeNodeDoc(m));
      REQUIRE_MESSAGE(b.ok(), why(b));
      CHECK(b->state == st);
      CHECK_FALSE(b->resources.known);
      CHECK(b->source == "api");
      CHECK(b->baseUrl() == "http://[::1]:8080");
      CHECK(b->external() == "::1");
    }
  }

  SUBCASE("refused: no name, no ip, a port out of range, resources missing a field") {
    CHECK_FALSE(decodeNodeDoc(R"({"ip":"1.2.3.4","port":8080})").ok());
    CHECK_FALSE(decodeNodeDoc(R"({"name":"n","port":8080})").ok());
    CHECK_FALSE(decodeNodeDoc(R"({"name":"n","ip":"1.2.3.4","port":0})").ok());
    CHECK_FALSE(decodeNodeDoc(R"({"name":"n","ip":"1.2.3.4","port":65536})").ok());
    auto missing = decodeNodeDoc(
        R"({"name":"n","ip":"1.2.3.4","port":8080,"resources":{"capacity_cpu_milli":1,)"
        R"("capacity_memory_bytes":1,"allocatable_cpu_milli":1,"allocatable_memory_bytes":1,)"
        R"("used_cpu_milli":0,"used_memory_bytes":0,"available_memory_bytes":1}})");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.message().find("available_cpu_milli: missing") != std::string::npos);
  }
}

TEST_CASE("OrchModel: writeSandboxJson has seed 001's shape") {
  const OrchSandbox s = runningSandbox();
  json::JsonWriter w;
  writeSandboxJson(w, s);
  const std::string text = w.take();
  json::JsonReader reader;
  auto root = reader.parse(text);
  REQUIRE(root.ok());
  const json::JsonCursor& o = *root;
  CHECK(str(o.field({"id"})) == "sbx-demo-1");
  CHECK(str(o.field({"created_at"})) == "2026-05-15T04:31:30Z");
  CHECK(str(o.field({"updated_at"})) == "2026-05-15T04:31:34Z");

  // spec, in snake_case
  json::JsonCursor spec = o.field({"spec"});
  bool egress = false;
  CHECK(spec.field({"egress"}).get(egress));
  CHECK(egress);
  CHECK(num(spec.field({"ttl_seconds"})) == 3600);
  REQUIRE(spec.field({"ports"}).size() == 2);
  int i = 0;
  spec.field({"ports"}).forEach([&](const json::JsonCursor& p) {
    CHECK(num(p.field({"container_port"})) == (i == 0 ? 80 : 53));
    CHECK(str(p.field({"protocol"})) == (i == 0 ? "tcp" : "udp"));
    CHECK_FALSE(p.field({"containerPort"}).present());
    CHECK_FALSE(p.field({"host_port"}).present());  // assigned ones are in status
    ++i;
  });
  json::JsonCursor probe = spec.field({"readiness_probe"});
  CHECK(str(probe.field({"path"})) == "/ready");
  CHECK(num(probe.field({"initial_delay_seconds"})) == 1);
  CHECK(num(probe.field({"period_seconds"})) == 2);
  CHECK(num(probe.field({"timeout_seconds"})) == 3);
  CHECK(num(probe.field({"success_threshold"})) == 4);
  CHECK(num(probe.field({"failure_threshold"})) == 5);
  CHECK_FALSE(spec.field({"readinessProbe"}).present());
  REQUIRE(spec.field({"containers"}).size() == 2);
  spec.field({"containers"}).forEach([&](const json::JsonCursor& c) {
    if (str(c.field({"name"})) != "web") return;
    CHECK(str(c.field({"image"})) == "nginx:latest");
    CHECK(c.field({"args"}).size() == 3);
    CHECK(c.field({"env"}).size() == 2);
    CHECK(str(c.field({"work_dir"})) == "/srv");
    CHECK_FALSE(c.field({"workDir"}).present());
    json::JsonCursor res = c.field({"resource"});
    CHECK(str(res.field({"cpu"})) == "200m");
    CHECK(str(res.field({"memory"})) == "256Mi");
    CHECK(str(res.field({"ephemeral_storage"})) == "96Mi");
    CHECK_FALSE(res.field({"ephemeralStorage"}).present());
  });

  // status
  json::JsonCursor st = o.field({"status"});
  CHECK(str(st.field({"phase"})) == "Running");
  CHECK(str(st.field({"node_name"})) == "node-a");
  CHECK(str(st.field({"external"})) == "203.0.113.10");
  CHECK(str(st.field({"ip"})) == "10.89.0.7");
  CHECK(str(st.field({"expire_at"})) == "2026-05-15T05:31:30Z");
  CHECK(str(st.field({"message"})) == s.message);
  REQUIRE(st.field({"assigned_ports"}).size() == 2);
  i = 0;
  st.field({"assigned_ports"}).forEach([&](const json::JsonCursor& p) {
    CHECK(num(p.field({"host_port"})) == (i == 0 ? 10000 : 10001));
    CHECK(num(p.field({"container_port"})) == (i == 0 ? 80 : 53));
    CHECK(str(p.field({"protocol"})) == (i == 0 ? "tcp" : "udp"));
    ++i;
  });
  // Store-only fields stay out of the API object.
  CHECK_FALSE(o.field({"refused_by"}).present());
  CHECK_FALSE(o.field({"phase"}).present());
  CHECK_FALSE(o.field({"expire_at_ms"}).present());
  CHECK(reader.ok());

  SUBCASE("a Pending sandbox: no node, no ip, no expiry, no message") {
    OrchSandbox p;
    p.id = "sbx-new";
    p.spec = decodeSpec(p.id, kMinimalSpec);
    p.createdAtMs = p.updatedAtMs = 1778819490000;
    json::JsonWriter pw;
    writeSandboxJson(pw, p);
    const std::string pt = pw.take();
    json::JsonReader pr;
    auto proot = pr.parse(pt);
    REQUIRE(proot.ok());
    json::JsonCursor pst = proot->field({"status"});
    CHECK(str(pst.field({"phase"})) == "Pending");
    for (const char* absent : {"node_name", "external", "ip", "expire_at", "message"}) {
      CHECK_MESSAGE(!pst.field({absent}).present(), absent);
    }
    CHECK_FALSE(proot->field({"spec"}).field({"ttl_seconds"}).present());
    CHECK_FALSE(proot->field({"spec"}).field({"readiness_probe"}).present());
  }
}

TEST_CASE("OrchModel: nodeCreateBody is sbxlet's camelCase request with the assigned host ports") {
  const OrchSandbox s = runningSandbox();
  const std::string body = nodeCreateBody(s);
  json::JsonReader reader;
  auto root = reader.parse(body);
  REQUIRE(root.ok());
  CHECK(str(root->field({"id"})) == "sbx-demo-1");
  int i = 0;
  root->field({"ports"}).forEach([&](const json::JsonCursor& p) {
    CHECK(num(p.field({"hostPort"})) == (i == 0 ? 10000 : 10001));
    CHECK(num(p.field({"containerPort"})) == (i == 0 ? 80 : 53));
    CHECK(str(p.field({"protocol"})) == (i == 0 ? "tcp" : "udp"));
    CHECK_FALSE(p.field({"host_port"}).present());
    ++i;
  });
  CHECK(i == 2);
  CHECK(root->field({"readinessProbe"}).present());
  CHECK_FALSE(root->field({"readiness_probe"}).present());
  CHECK_FALSE(root->field({"ttl_seconds"}).present());  // the control plane's business

  // sbxlet's own decoder (host ports required) takes it as it is.
  auto spec = node::decodeSandboxSpec(*root, reader);
  REQUIRE_MESSAGE(spec.ok(), why(spec));
  CHECK(spec->id == "sbx-demo-1");
  REQUIRE(spec->ports.size() == 2);
  CHECK(spec->ports[0] == node::PortMapping{10000, 80, "tcp"});
  CHECK(spec->ports[1] == node::PortMapping{10001, 53, "udp"});
  node::SandboxSpec expected = s.spec;
  expected.ports = spec->ports;
  CHECK(*spec == expected);
  // The record's own spec is untouched (host ports stay "to be assigned").
  CHECK(s.spec.ports[0].hostPort == 0);
}
