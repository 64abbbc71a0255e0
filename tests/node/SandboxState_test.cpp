#include "node/SandboxState.h"

#include <doctest/doctest.h>

#include "json/JsonReader.h"
#include "json/JsonWriter.h"

using namespace sbx;
using namespace sbx::node;

namespace {
SandboxSpec sampleSpec() {
  SandboxSpec spec;
  spec.id = "sbx-http-demo";
  spec.egress = true;
  spec.ports.push_back(PortMapping{30080, 8080, "tcp"});
  ReadinessProbe p;
  p.protocol = "http";
  p.port = 8080;
  p.path = "/healthz";
  p.initialDelaySeconds = 1;
  p.periodSeconds = 1;
  p.timeoutSeconds = 1;
  p.successThreshold = 2;
  p.failureThreshold = 3;
  spec.readinessProbe = p;
  ContainerSpec web;
  web.name = "web";
  web.image = "python:3.12-alpine";
  web.args = {"sh", "-c", "python -m http.server 8080"};
  web.env = {"A=1"};
  web.resource.cpu = "250m";
  web.resource.memory = "256Mi";
  web.resource.ephemeralStorage = "96Mi";
  web.resource.cpuMillis = 250;
  web.resource.memoryBytes = 256 << 20;
  web.resource.ephemeralStorageBytes = 96 << 20;
  ContainerSpec worker = web;
  worker.name = "worker";
  worker.image = "alpine:3.20";
  worker.args = {"sh", "-c", "sleep 60"};
  worker.resource.ephemeralStorage = "";
  worker.resource.ephemeralStorageBytes = 0;
  spec.containers = {web, worker};
  return spec;
}
}  // namespace

TEST_CASE("SandboxState: the API object has SPEC's shape") {
  SandboxState s = newSandboxState(sampleSpec(), "2026-05-08T11:00:00Z");
  s.subnetCidr = "10.89.0.0/16";
  s.bridgeName = "sbx-br0";
  s.cniConfPath = "/etc/cni/sandboxd.d/20-sbxnet.conflist";
  json::JsonWriter w;
  writeSandboxJson(w, s);
  CHECK(w.str().find(R"("id":"sbx-http-demo","phase":"creating","namespace":"k8s.io","ip":"")") == 1);
  CHECK(w.str().find(R"("web":{"id":"sbx-http-demo-web","name":"web","phase":"creating")") !=
        std::string::npos);
  CHECK(w.str().find(R"("taskPID":0,"runtime":"runsc")") != std::string::npos);
  CHECK(w.str().find(R"("ports":[{"hostPort":30080,"containerPort":8080,"protocol":"tcp"}])") !=
        std::string::npos);
  CHECK(w.str().find("\"error\"") == std::string::npos);
}

TEST_CASE("SandboxState: state file round trip") {
  SandboxState s = newSandboxState(sampleSpec(), "2026-05-08T11:00:00Z");
  s.phase = SandboxPhase::Running;
  s.ip = "10.89.0.7";
  s.netnsPath = "/var/run/netns/sbx-http-demo";
  s.version = 42;
  s.cniResult = R"({"cniVersion":"1.0.0","ips":[{"address":"10.89.0.7/16"}]})";
  s.hostVeth = "veth1234abcd";
  s.portsPublished = true;
  s.ready = true;
  s.runtime = "runc";
  s.containers[0].phase = ContainerPhase::Running;
  s.containers[0].taskPid = 1234;
  s.containers[0].taskStatus = "running";
  s.containers[0].image = "docker.io/library/python:3.12-alpine";
  s.containers[1].phase = ContainerPhase::Exited;
  s.containers[1].exitCode = 137;
  s.containers[1].oomKilled = true;
  s.containers[1].error = "OOM killed";
  s.error = "";
  std::string text = encodeStateFile(s);
  auto back = decodeStateFile(text);
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.message()));
  CHECK(back->spec == s.spec);
  CHECK(back->phase == SandboxPhase::Running);
  CHECK(back->ip == "10.89.0.7");
  CHECK(back->netnsPath == s.netnsPath);
  CHECK(back->version == 42);
  CHECK(back->cniResult == s.cniResult);
  CHECK(back->hostVeth == "veth1234abcd");
  CHECK(back->portsPublished);
  CHECK(back->ready);
  CHECK(back->runtime == "runc");
  CHECK(back->containers[0].taskPid == 1234);
  CHECK(back->containers[0].image == "docker.io/library/python:3.12-alpine");
  CHECK(back->containers[1].phase == ContainerPhase::Exited);
  CHECK(back->containers[1].exitCode == 137);
  CHECK(back->containers[1].oomKilled);
  CHECK(back->containers[1].error == "OOM killed");
  CHECK(encodeStateFile(*back) == text);
}

TEST_CASE("SandboxState: bad state files are errors, not crashes") {
  // A negative version would be written back as a number no read accepts (fuzzer).
  auto neg = decodeStateFile(
      R"({"format":1,"sandbox":{"phase":"running"},"spec":{"containers":[{"name":"web","image":"nginx",)"
      R"("resource":{"cpu":"100m","memory":"64Mi"}}]},"internal":{"version":-1}})");
  REQUIRE_FALSE(neg.ok());
  CHECK(neg.message() == "state file: internal.version must be >= 0");
  CHECK_FALSE(decodeStateFile("").ok());
  CHECK_FALSE(decodeStateFile("{").ok());
  CHECK_FALSE(decodeStateFile(R"({"format":2})").ok());
  CHECK_FALSE(decodeStateFile(R"({"format":1,"spec":{"containers":[]},"sandbox":{}})").ok());
  auto s = newSandboxState(sampleSpec(), "t");
  std::string text = encodeStateFile(s);
  text.replace(text.find("\"creating\""), 10, "\"flying\"");
  auto bad = decodeStateFile(text);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.message() == "state file: unknown phase \"flying\"");
}
