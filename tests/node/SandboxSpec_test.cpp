#include "node/SandboxSpec.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "json/JsonReader.h"

namespace sbx::node {
namespace {

using json::JsonCursor;
using json::JsonReader;

// The create request of seed 000 (the node API), verbatim.
constexpr std::string_view kSeedRequest = R"({
  "id": "sbx-http-demo",
  "egress": true,
  "ports": [
    {"hostPort": 30080, "containerPort": 8080, "protocol": "tcp"}
  ],
  "readinessProbe": {
    "protocol": "http",
    "port": 8080,
    "path": "/healthz",
    "initialDelaySeconds": 1,
    "periodSeconds": 1,
    "timeoutSeconds": 1,
    "successThreshold": 2,
    "failureThreshold": 3
  },
  "containers": [
    {
      "name": "web",
      "image": "python:3.12-alpine",
      "args": [
        "sh",
        "-c",
        "mkdir -p /tmp/www && echo sandbox-http > /tmp/www/index.html && cd /tmp/www && python -m http.server 8080"
      ],
      "env": [],
      "workDir": "",
      "resource": {"cpu": "250m", "memory": "256Mi", "ephemeralStorage": "96Mi"}
    },
    {
      "name": "worker",
      "image": "alpine:3.20",
      "args": ["sh", "-c", "while true; do sleep 60; done"],
      "env": [],
      "workDir": "",
      "resource": {"cpu": "100m", "memory": "128Mi", "ephemeralStorage": "96Mi"}
    }
  ]
})";

// The same request as the control plane's pass-through examples spell it.
constexpr std::string_view kSeedRequestSnake = R"({
  "id": "sbx-http-demo",
  "egress": true,
  "ports": [
    {"host_port": 30080, "container_port": 8080, "protocol": "tcp"}
  ],
  "readiness_probe": {
    "protocol": "http",
    "port": 8080,
    "path": "/healthz",
    "initial_delay_seconds": 1,
    "period_seconds": 1,
    "timeout_seconds": 1,
    "success_threshold": 2,
    "failure_threshold": 3
  },
  "containers": [
    {
      "name": "web",
      "image": "python:3.12-alpine",
      "args": [
        "sh",
        "-c",
        "mkdir -p /tmp/www && echo sandbox-http > /tmp/www/index.html && cd /tmp/www && python -m http.server 8080"
      ],
      "env": [],
      "work_dir": "",
      "resource": {"cpu": "250m", "memory": "256Mi", "ephemeral_storage": "96Mi"}
    },
    {
      "name": "worker",
      "image": "alpine:3.20",
      "args": ["sh", "-c", "while true; do sleep 60; done"],
      "env": [],
      "work_dir": "",
      "resource": {"cpu": "100m", "memory": "128Mi", "ephemeral_storage": "96Mi"}
    }
  ]
})";

constexpr std::string_view kNameRule =
    "characters of letters, digits, '_', '.', '-', starting with a letter or digit";

Result<SandboxSpec> decode(std::string_view body, const SandboxSpecOptions& options = {}) {
  JsonReader reader;
  auto root = reader.parse(body);
  if (!root) return Error(root.message());
  return decodeSandboxSpec(*root, reader, options);
}

// The decode error for `body`, or "<ok>".
std::string decodeError(std::string_view body, const SandboxSpecOptions& options = {}) {
  auto spec = decode(body, options);
  return spec ? std::string("<ok>") : spec.message();
}

std::string validateError(const SandboxSpec& spec, const SandboxSpecOptions& options = {}) {
  Status st = validateSandboxSpec(spec, options);
  return st ? std::string("<ok>") : st.message();
}

// {"containers":[<containers>]} with `rest` (other members) in front.
std::string request(std::string_view containers, std::string_view rest = "") {
  std::string s = "{";
  s += rest;
  if (!rest.empty()) s += ",";
  s += "\"containers\":[";
  s += containers;
  s += "]}";
  return s;
}

// A valid container named `name`, with `extra` members before "resource".
std::string container(std::string_view name = "web", std::string_view extra = "") {
  std::string s = R"({"name":")";
  s += name;
  s += R"(","image":"alpine:3.20",)";
  s += extra;
  if (!extra.empty()) s += ",";
  s += R"("resource":{"cpu":"250m","memory":"256Mi"}})";
  return s;
}

// A container named "web" with the given resource object.
std::string withResource(std::string_view resource) {
  return request(R"({"name":"web","image":"alpine:3.20","resource":)" + std::string(resource) +
                 "}");
}

// A valid request with the given "ports" array contents.
std::string withPorts(std::string_view ports) {
  return request(container(), "\"ports\":[" + std::string(ports) + "]");
}

// A valid request with the given probe object.
std::string withProbe(std::string_view probe) {
  return request(container(), "\"readinessProbe\":" + std::string(probe));
}

// A JSON array of `n` copies of the JSON string `item`.
std::string stringArray(size_t n, std::string_view item) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += ",";
    s += "\"";
    s += item;
    s += "\"";
  }
  return s + "]";
}

const std::string kSha256(64, 'a');
const std::string kSha512(128, '0');

ReadinessProbe seedProbe() {
  ReadinessProbe p;
  p.protocol = "http";
  p.port = 8080;
  p.path = "/healthz";
  p.initialDelaySeconds = 1;
  p.periodSeconds = 1;
  p.timeoutSeconds = 1;
  p.successThreshold = 2;
  p.failureThreshold = 3;
  return p;
}

// ---------------------------------------------------------------------------

TEST_CASE("SandboxSpec: the seed request decodes to the expected structs") {
  auto spec = decode(kSeedRequest);
  REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
  CHECK(spec->id == "sbx-http-demo");
  CHECK(spec->egress);
  REQUIRE(spec->ports.size() == 1);
  CHECK(spec->ports[0] == PortMapping{30080, 8080, "tcp"});
  REQUIRE(spec->readinessProbe.has_value());
  CHECK(*spec->readinessProbe == seedProbe());

  REQUIRE(spec->containers.size() == 2);
  const ContainerSpec& web = spec->containers[0];
  CHECK(web.name == "web");
  CHECK(web.image == "python:3.12-alpine");  // as sent; normalised when pulled
  CHECK(web.args == std::vector<std::string>{"sh", "-c",
                                             "mkdir -p /tmp/www && echo sandbox-http > "
                                             "/tmp/www/index.html && cd /tmp/www && python -m "
                                             "http.server 8080"});
  CHECK(web.env.empty());
  CHECK(web.workDir.empty());
  CHECK(web.resource.cpu == "250m");
  CHECK(web.resource.memory == "256Mi");
  CHECK(web.resource.ephemeralStorage == "96Mi");
  CHECK(web.resource.cpuMillis == 250);
  CHECK(web.resource.memoryBytes == 256LL << 20);
  CHECK(web.resource.ephemeralStorageBytes == 96LL << 20);

  const ContainerSpec& worker = spec->containers[1];
  CHECK(worker.name == "worker");
  CHECK(worker.image == "alpine:3.20");
  CHECK(worker.args == std::vector<std::string>{"sh", "-c", "while true; do sleep 60; done"});
  CHECK(worker.resource ==
        ContainerResources{"100m", "128Mi", "96Mi", 100, 128LL << 20, 96LL << 20});

  CHECK(spec->totalCpuMillis() == 350);
  CHECK(spec->totalMemoryBytes() == 384LL << 20);
  CHECK(validateError(*spec) == "<ok>");
}

TEST_CASE("SandboxSpec: snake_case decodes identically; camelCase wins when both are sent") {
  auto camel = decode(kSeedRequest);
  auto snake = decode(kSeedRequestSnake);
  REQUIRE(camel.ok());
  REQUIRE_MESSAGE(snake.ok(), (snake ? "" : snake.message()));
  CHECK(*camel == *snake);

  auto both = decode(request(
      R"({"name":"a","image":"alpine","workDir":"/camel","work_dir":"/snake",
          "resource":{"cpu":"1","memory":"1Gi","ephemeralStorage":"1Gi","ephemeral_storage":"2Gi"}})",
      R"("ports":[{"hostPort":2000,"host_port":3000,"containerPort":80,"container_port":81}])"));
  REQUIRE(both.ok());
  CHECK(both->ports[0] == PortMapping{2000, 80, "tcp"});
  CHECK(both->containers[0].workDir == "/camel");
  CHECK(both->containers[0].resource.ephemeralStorageBytes == 1LL << 30);
}

TEST_CASE("SandboxSpec: the seed's WordPress request decodes") {
  auto spec = decode(R"({
    "id": "sbx-wordpress-demo", "egress": true,
    "ports": [{"hostPort": 30080, "containerPort": 80, "protocol": "tcp"}],
    "containers": [
      {"name": "wordpress", "image": "wordpress:6.9.4-php8.3-apache",
       "args": ["sh", "-c", "for i in $(seq 1 90); do php -r '$s=@fsockopen(\"127.0.0.1\",3306,$e,$es,1); if($s){fclose($s); exit(0);} exit(1);' && break; sleep 2; done; exec docker-entrypoint.sh apache2-foreground"],
       "env": ["WORDPRESS_DB_HOST=127.0.0.1:3306", "WORDPRESS_DB_USER=wordpress",
               "WORDPRESS_DB_PASSWORD=wordpress-pass", "WORDPRESS_DB_NAME=wordpress"],
       "workDir": "", "resource": {"cpu": "200m", "memory": "512Mi"}},
      {"name": "mysql", "image": "mysql:8.4", "args": [],
       "env": ["MYSQL_DATABASE=wordpress", "MYSQL_USER=wordpress",
               "MYSQL_PASSWORD=wordpress-pass", "MYSQL_ROOT_PASSWORD=root-pass"],
       "workDir": "", "resource": {"cpu": "200m", "memory": "768Mi"}}
    ]})");
  REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
  CHECK(!spec->readinessProbe.has_value());
  CHECK(spec->containers[0].env[0] == "WORDPRESS_DB_HOST=127.0.0.1:3306");
  CHECK(spec->containers[0].args[2].find("fsockopen(\"127.0.0.1\"") != std::string::npos);
  CHECK(spec->containers[1].args.empty());
  CHECK(spec->containers[0].resource.ephemeralStorageBytes == 0);  // not given
  CHECK(spec->totalCpuMillis() == 400);
  CHECK(spec->totalMemoryBytes() == 1280LL << 20);
}

TEST_CASE("SandboxSpec: defaults, nulls and unknown fields") {
  SUBCASE("minimal request") {
    auto spec = decode(R"({"containers":[{"name":"a","image":"alpine",
                           "resource":{"cpu":"1","memory":"1Gi"}}]})");
    REQUIRE(spec.ok());
    CHECK(spec->id.empty());  // the caller generates one
    CHECK(!spec->egress);
    CHECK(spec->ports.empty());
    CHECK(!spec->readinessProbe.has_value());
    CHECK(spec->containers[0].args.empty());
  }
  SUBCASE("null is absent") {
    auto spec = decode(R"({"id":null,"egress":null,"ports":null,"readinessProbe":null,
        "containers":[{"name":"a","image":"alpine","args":null,"env":null,"workDir":null,
        "resource":{"cpu":"1","memory":"1Gi","ephemeralStorage":null}}]})");
    REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
    CHECK(spec->id.empty());
    CHECK(!spec->readinessProbe.has_value());
    CHECK(spec->containers[0].resource.ephemeralStorage.empty());
    CHECK(spec->containers[0].resource.ephemeralStorageBytes == 0);
  }
  SUBCASE("null protocol and missing protocol default to tcp") {
    auto spec = decode(withPorts(R"({"hostPort":2000,"containerPort":80,"protocol":null},
                                    {"hostPort":2001,"containerPort":80},
                                    {"hostPort":2002,"containerPort":80,"protocol":""},
                                    {"hostPort":2000,"containerPort":80,"protocol":"udp"})"));
    REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
    CHECK(spec->ports[0].protocol == "tcp");
    CHECK(spec->ports[1].protocol == "tcp");
    CHECK(spec->ports[2].protocol == "tcp");
    CHECK(spec->ports[3] == PortMapping{2000, 80, "udp"});
  }
  SUBCASE("a null snake_case alias yields to the camelCase one and vice versa") {
    auto spec = decode(withPorts(R"({"hostPort":null,"host_port":2000,"containerPort":80})"));
    REQUIRE(spec.ok());
    CHECK(spec->ports[0].hostPort == 2000);
  }
  SUBCASE("unknown fields are ignored") {
    auto spec = decode(request(
        R"({"name":"a","image":"alpine","extra":{"x":[1,2]},
            "resource":{"cpu":"1","memory":"1Gi","gpu":"1"}})",
        R"("labels":{"a":"b"},"ttl_seconds":60,"ports":[{"hostPort":2000,"containerPort":80,"x":1}])"));
    CHECK(spec.ok());
  }
  SUBCASE("env entries may have empty values and '=' in the value") {
    auto spec = decode(request(container("web", R"("env":["A=","B=x=y","C_1=ok"])")));
    REQUIRE(spec.ok());
    CHECK(spec->containers[0].env == std::vector<std::string>{"A=", "B=x=y", "C_1=ok"});
  }
  SUBCASE("tcp probes need no path") {
    auto spec = decode(withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,
        "periodSeconds":1,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":3600})"));
    REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
    CHECK(spec->readinessProbe->protocol == "tcp");
    CHECK(spec->readinessProbe->failureThreshold == 3600);
  }
}

TEST_CASE("SandboxSpec: cpu and memory may be JSON numbers") {
  struct Case {
    std::string_view cpuJson;
    std::string_view wantText;
    int64_t wantMillis;
  };
  const Case cases[] = {
      {"0.5", "0.5", 500},  {"1", "1", 1000},      {"2", "2", 2000},         {"0.25", "0.25", 250},
      {"1.5", "1.5", 1500}, {"0.001", "0.001", 1}, {"1e3", "1000", 1000000}, {"2.0", "2", 2000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.cpuJson);
    auto spec =
        decode(withResource(R"({"cpu":)" + std::string(c.cpuJson) + R"(,"memory":1073741824})"));
    REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
    CHECK(spec->containers[0].resource.cpu == c.wantText);
    CHECK(spec->containers[0].resource.cpuMillis == c.wantMillis);
    CHECK(spec->containers[0].resource.memory == "1073741824");
    CHECK(spec->containers[0].resource.memoryBytes == 1073741824);
  }
  CHECK(decodeError(withResource(R"({"cpu":0.0001,"memory":"1Gi"})")) ==
        "container web: invalid cpu quantity \"0.0001\": finer than 1m or too large");
  CHECK(decodeError(withResource(R"({"cpu":0,"memory":"1Gi"})")) ==
        "container web: invalid cpu quantity \"0\": must be positive");
  CHECK(decodeError(withResource(R"({"cpu":-1,"memory":"1Gi"})")) ==
        "container web: invalid cpu quantity \"-1\": expected e.g. 250m, 0.5 or 2");
  CHECK(decodeError(withResource(R"({"cpu":1,"memory":1.5})")) ==
        "container web: invalid memory quantity \"1.5\": not whole bytes or too large");
  // Fixed notation, never an exponent; the quote stops at 64 bytes.
  CHECK(decodeError(withResource(R"({"cpu":1e300,"memory":"1Gi"})")) ==
        "container web: invalid cpu quantity "
        "\"1000000000000000052504760255204420248704468581108159154915854115\": "
        "expected e.g. 250m, 0.5 or 2");
}

TEST_CASE("SandboxSpec: validation errors, exact messages") {
  const std::string longId(129, 'a');
  const std::string longName(65, 'n');
  const std::string badCharId = "sbx:" + std::string(100, 'x');
  struct Case {
    std::string body;
    std::string want;
  };
  const Case cases[] = {
      // id
      {request(container(), R"("id":"-bad")"),
       "invalid sandbox id \"-bad\": must be 1-128 " + std::string(kNameRule)},
      {request(container(), R"("id":"a b")"),
       "invalid sandbox id \"a b\": must be 1-128 " + std::string(kNameRule)},
      {request(container(), R"("id":"x/../../etc")"),
       "invalid sandbox id \"x/../../etc\": must be 1-128 " + std::string(kNameRule)},
      {request(container(), "\"id\":\"" + longId + "\""),
       "invalid sandbox id \"" + std::string(64, 'a') + "\": must be 1-128 " +
           std::string(kNameRule)},
      {request(container(), "\"id\":\"" + badCharId + "\""),
       "invalid sandbox id \"" + badCharId.substr(0, 64) + "\": must be 1-128 " +
           std::string(kNameRule)},
      // A cut never splits a UTF-8 sequence: 63 bytes + 2-byte "é" → 63 bytes quoted.
      {request(container(), "\"id\":\"" + std::string(63, 'a') + "\xC3\xA9zz\""),
       "invalid sandbox id \"" + std::string(63, 'a') + "\": must be 1-128 " +
           std::string(kNameRule)},
      // containers
      {"{}", "at least one container is required"},
      {R"({"containers":[]})", "at least one container is required"},
      {R"({"containers":null})", "at least one container is required"},
      {request(R"({"image":"alpine","resource":{"cpu":"1","memory":"1Gi"}})"),
       "invalid container name \"\": must be 1-64 " + std::string(kNameRule)},
      {request(container("_web")),
       "invalid container name \"_web\": must be 1-64 " + std::string(kNameRule)},
      {request(container("a/b")),
       "invalid container name \"a/b\": must be 1-64 " + std::string(kNameRule)},
      {request(container(longName)), "invalid container name \"" + std::string(64, 'n') +
                                         "\": must be 1-64 " + std::string(kNameRule)},
      {request(container("web") + "," + container("db") + "," + container("web")),
       "duplicate container name: web"},
      {request(R"({"name":"web","resource":{"cpu":"1","memory":"1Gi"}})"),
       "container web: image is required"},
      {request(R"({"name":"web","image":"","resource":{"cpu":"1","memory":"1Gi"}})"),
       "container web: image is required"},
      {request(R"({"name":"web","image":")" + std::string(513, 'a') +
               R"(","resource":{"cpu":"1","memory":"1Gi"}})"),
       "container web: image reference too long (max 512)"},
      {request(R"({"name":"web","image":"Alpine:3.20","resource":{"cpu":"1","memory":"1Gi"}})"),
       "container web: invalid image reference \"Alpine:3.20\": repository name must be lowercase"},
      {request(R"({"name":"web","image":"alpine:","resource":{"cpu":"1","memory":"1Gi"}})"),
       "container web: invalid image reference \"alpine:\": invalid tag (expected "
       "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"},
      // resources
      {request(R"({"name":"web","image":"alpine"})"), "container web: cpu is required"},
      {withResource(R"({"memory":"1Gi"})"), "container web: cpu is required"},
      {withResource(R"({"cpu":"","memory":"1Gi"})"), "container web: cpu is required"},
      {withResource(R"({"cpu":null,"memory":"1Gi"})"), "container web: cpu is required"},
      {withResource(R"({"cpu":"250m"})"), "container web: memory is required"},
      {withResource(R"({"cpu":"250m","memory":""})"), "container web: memory is required"},
      {withResource(R"({"cpu":"abc","memory":"1Gi"})"),
       "container web: invalid cpu quantity \"abc\": expected e.g. 250m, 0.5 or 2"},
      {withResource(R"({"cpu":"250m","memory":"lots"})"),
       "container web: invalid memory quantity \"lots\": expected e.g. 128Mi, 1Gi, 128M or 1G"},
      {withResource(R"({"cpu":"250m","memory":"1Gi","ephemeralStorage":"x"})"),
       "container web: invalid memory quantity \"x\": expected e.g. 128Mi, 1Gi, 128M or 1G"},
      {withResource(R"({"cpu":"250m","memory":"1Gi","ephemeral_storage":"0"})"),
       "container web: invalid memory quantity \"0\": must be positive"},
      // args and env
      {request(container("web", R"("env":["A=1","B=2","noequals"])")),
       "container web: env[2] must be KEY=VALUE"},
      {request(container("web", R"("env":["=value"])")), "container web: env[0] must be KEY=VALUE"},
      {request(container("web", R"("env":[""])")), "container web: env[0] must be KEY=VALUE"},
      {request(container("web", "\"args\":" + stringArray(1025, "x"))),
       "container web: too many args (max 1024)"},
      {request(container("web", "\"env\":" + stringArray(1025, "A=1"))),
       "container web: too many env entries (max 1024)"},
      {request(container("web", R"("args":["a","b","c",")" + std::string(131073, 'x') + "\"]")),
       "container web: args[3] too long (max 131072 bytes)"},
      {request(container("web", R"("env":["A=)" + std::string(131071, 'x') + "\"]")),
       "container web: env[0] too long (max 131072 bytes)"},
      {request(container("web", R"("args":["a\u0000b"])")),
       "container web: args[0] must not contain NUL bytes"},
      {request(container("web", R"("env":["A=1","B=\u0000"])")),
       "container web: env[1] must not contain NUL bytes"},
      {request(container("web", R"("workDir":"app")")),
       "container web: workDir must be an absolute path"},
      {request(container("web", R"("workDir":"/)" + std::string(4096, 'w') + "\"")),
       "container web: workDir too long (max 4096 bytes)"},
      {request(container("web", R"("args":["","x"])")), "container web: args[0] must not be empty"},
      // the second container is named in its messages
      {request(container("web") +
               R"(,{"name":"db","image":"mysql:8.4","resource":{"memory":"1Gi"}})"),
       "container db: cpu is required"},
      // ports
      {withPorts(R"({"hostPort":80,"containerPort":80})"),
       "privileged host ports are not allowed: 80"},
      {withPorts(R"({"hostPort":1,"containerPort":80})"),
       "privileged host ports are not allowed: 1"},
      {withPorts(R"({"hostPort":1023,"containerPort":80})"),
       "privileged host ports are not allowed: 1023"},
      {withPorts(R"({"hostPort":80,"containerPort":0})"),
       "privileged host ports are not allowed: 80"},
      {withPorts(R"({"hostPort":0,"containerPort":8080})"), "invalid port mapping: 0:8080"},
      {withPorts(R"({"containerPort":8080})"), "invalid port mapping: 0:8080"},
      {withPorts(R"({"hostPort":-5,"containerPort":8080})"), "invalid port mapping: -5:8080"},
      {withPorts(R"({"hostPort":65536,"containerPort":80})"), "invalid port mapping: 65536:80"},
      {withPorts(R"({"hostPort":30080,"containerPort":0})"), "invalid port mapping: 30080:0"},
      {withPorts(R"({"hostPort":30080})"), "invalid port mapping: 30080:0"},
      {withPorts(R"({"hostPort":30080,"containerPort":65536})"),
       "invalid port mapping: 30080:65536"},
      {withPorts(R"({"hostPort":30080,"containerPort":80,"protocol":"sctp"})"),
       "unsupported protocol: sctp"},
      {withPorts(R"({"hostPort":30080,"containerPort":80,"protocol":"TCP"})"),
       "unsupported protocol: TCP"},
      {withPorts(R"({"hostPort":30080,"containerPort":80,"protocol":")" + std::string(100, 'p') +
                 "\"}"),
       "unsupported protocol: " + std::string(64, 'p')},
      {withPorts(R"({"hostPort":30080,"containerPort":80},{"hostPort":30081,"containerPort":81},
                    {"hostPort":30080,"containerPort":82,"protocol":"tcp"})"),
       "duplicate host port: 30080/tcp"},
      {withPorts(R"({"hostPort":30080,"containerPort":80,"protocol":"udp"},
                    {"host_port":30080,"container_port":81,"protocol":"udp"})"),
       "duplicate host port: 30080/udp"},
      // readinessProbe
      {withProbe("{}"), "readinessProbe.protocol is required"},
      {withProbe(R"({"protocol":""})"), "readinessProbe.protocol is required"},
      {withProbe(R"({"protocol":"grpc","port":80})"),
       "readinessProbe.protocol must be tcp or http"},
      {withProbe(R"({"protocol":"HTTP","port":80})"),
       "readinessProbe.protocol must be tcp or http"},
      {withProbe(R"({"protocol":"tcp"})"), "readinessProbe.port is required"},
      {withProbe(R"({"protocol":"tcp","port":0})"),
       "readinessProbe.port must be between 1 and 65535"},
      {withProbe(R"({"protocol":"tcp","port":65536})"),
       "readinessProbe.port must be between 1 and 65535"},
      {withProbe(R"({"protocol":"tcp","port":99999999999})"),
       "readinessProbe.port must be between 1 and 65535"},
      {withProbe(R"({"protocol":"http","port":80})"),
       "readinessProbe.path is required for http probes and must start with /"},
      {withProbe(R"({"protocol":"http","port":80,"path":"healthz"})"),
       "readinessProbe.path is required for http probes and must start with /"},
      {withProbe(R"({"protocol":"http","port":80,"path":"/a b"})"),
       "readinessProbe.path must not contain spaces or control characters"},
      {withProbe(R"({"protocol":"http","port":80,"path":"/a\r\nHost: x"})"),
       "readinessProbe.path must not contain spaces or control characters"},
      {withProbe(R"({"protocol":"tcp","port":80})"),
       "readinessProbe.initialDelaySeconds is required"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1})"),
       "readinessProbe.periodSeconds is required"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":0})"),
       "readinessProbe.periodSeconds must be >= 1"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":3601})"),
       "readinessProbe.periodSeconds must be <= 3600"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":0})"),
       "readinessProbe.initialDelaySeconds must be >= 1"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1})"),
       "readinessProbe.timeoutSeconds is required"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1,
                     "timeoutSeconds":-1})"),
       "readinessProbe.timeoutSeconds must be >= 1"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1,
                     "timeoutSeconds":1})"),
       "readinessProbe.successThreshold is required"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1,
                     "timeoutSeconds":1,"successThreshold":99999999999})"),
       "readinessProbe.successThreshold must be <= 3600"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1,
                     "timeoutSeconds":1,"successThreshold":1})"),
       "readinessProbe.failureThreshold is required"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1,
                     "timeoutSeconds":1,"successThreshold":1,"failureThreshold":null})"),
       "readinessProbe.failureThreshold is required"},
      {withProbe(R"({"protocol":"tcp","port":80,"initialDelaySeconds":1,"periodSeconds":1,
                     "timeoutSeconds":1,"successThreshold":1,"failureThreshold":0})"),
       "readinessProbe.failureThreshold must be >= 1"},
      // snake_case probes are named in camelCase
      {request(container(), R"("readiness_probe":{"protocol":"tcp","port":80,
                                 "initial_delay_seconds":1,"period_seconds":1})"),
       "readinessProbe.timeoutSeconds is required"},
      {request(container(), R"("readiness_probe":{"protocol":"tcp","port":80,
                                 "initial_delay_seconds":1,"period_seconds":0})"),
       "readinessProbe.periodSeconds must be >= 1"},
      // order: id, containers, ports, probe
      {request(container("bad name"), R"("id":"bad id","ports":[{"hostPort":1}])"),
       "invalid sandbox id \"bad id\": must be 1-128 " + std::string(kNameRule)},
      {request(container("bad name"), R"("ports":[{"hostPort":1}])"),
       "invalid container name \"bad name\": must be 1-64 " + std::string(kNameRule)},
      {request(container(), R"("ports":[{"hostPort":1}],"readinessProbe":{})"),
       "privileged host ports are not allowed: 1"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body.substr(0, 300));
    CHECK(decodeError(c.body) == c.want);
  }
}

TEST_CASE("SandboxSpec: limits") {
  SUBCASE("16 containers are fine, 17 are too many") {
    std::string cs;
    for (int i = 0; i < 17; ++i) {
      if (i > 0) cs += ",";
      cs += container("c" + std::to_string(i));
    }
    CHECK(decodeError(request(cs)) == "too many containers (max 16)");
    cs.resize(cs.rfind(",{"));
    auto spec = decode(request(cs));
    REQUIRE(spec.ok());
    CHECK(spec->containers.size() == 16);
    CHECK(spec->totalCpuMillis() == 16 * 250);
  }
  SUBCASE("64 ports are fine, 65 are too many") {
    std::string ps;
    for (int i = 0; i < 65; ++i) {
      if (i > 0) ps += ",";
      ps += R"({"hostPort":)" + std::to_string(30000 + i) + R"(,"containerPort":80})";
    }
    CHECK(decodeError(withPorts(ps)) == "too many ports (max 64)");
    ps.resize(ps.rfind(",{"));
    auto spec = decode(withPorts(ps));
    REQUIRE(spec.ok());
    CHECK(spec->ports.size() == 64);
  }
  SUBCASE("1024 args and env entries, a 128 KiB arg") {
    auto spec = decode(request(container(
        "web", "\"args\":" + stringArray(1024, "x") + ",\"env\":" + stringArray(1024, "A=1"))));
    REQUIRE(spec.ok());
    CHECK(spec->containers[0].args.size() == 1024);
    CHECK(spec->containers[0].env.size() == 1024);
    auto big = decode(request(container("web", "\"args\":[\"" + std::string(131072, 'x') + "\"]")));
    CHECK(big.ok());
  }
  SUBCASE("id of 128 and name of 64 characters") {
    const std::string id = "A" + std::string(126, '-') + "9";
    auto spec = decode(request(container(std::string(64, 'Z')), "\"id\":\"" + id + "\""));
    REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
    CHECK(spec->id == id);
  }
  SUBCASE("port bounds") {
    auto spec = decode(withPorts(R"({"hostPort":1024,"containerPort":1},
                                    {"hostPort":65535,"containerPort":65535,"protocol":"udp"})"));
    CHECK(spec.ok());
  }
  SUBCASE("the reader's array limit applies first") {
    JsonReader reader(JsonReader::Limits{64, 100});
    const std::string body = request(container("web", "\"args\":" + stringArray(101, "x")));
    auto root = reader.parse(body);
    REQUIRE(root.ok());
    auto spec = decodeSandboxSpec(*root, reader);
    REQUIRE(!spec.ok());
    CHECK(spec.message() == "containers[0].args: too many items (max 100)");
  }
}

TEST_CASE("SandboxSpec: wrong JSON types name the path") {
  struct Case {
    std::string body;
    std::string want;
  };
  const Case cases[] = {
      {"[]", "request body: expected object"},
      {"\"x\"", "request body: expected object"},
      {request(container(), R"("id":5)"), "id: expected string"},
      {request(container(), R"("egress":"true")"), "egress: expected boolean"},
      {request(container(), R"("egress":1)"), "egress: expected boolean"},
      {request(container(), R"("ports":{})"), "ports: expected array"},
      {withPorts("5"), "ports[0]: expected object"},
      {withPorts("null"), "ports[0]: expected object"},
      {withPorts(R"({"hostPort":"30080","containerPort":80})"),
       "ports[0].hostPort: expected integer"},
      {withPorts(R"({"hostPort":30080.5,"containerPort":80})"),
       "ports[0].hostPort: expected integer"},
      {withPorts(R"({"hostPort":30080,"containerPort":80},{"host_port":"x"})"),
       "ports[1].host_port: expected integer"},
      {withPorts(R"({"hostPort":30080,"container_port":true})"),
       "ports[0].container_port: expected integer"},
      {withPorts(R"({"hostPort":30080,"containerPort":80,"protocol":6})"),
       "ports[0].protocol: expected string"},
      {withPorts(R"({"hostPort":10000000000,"containerPort":80})"),
       "ports[0].hostPort: integer out of range"},
      {R"({"containers":{}})", "containers: expected array"},
      {R"({"containers":"web"})", "containers: expected array"},
      {request("[]"), "containers[0]: expected object"},
      {request("null"), "containers[0]: expected object"},
      {request(container() + ",7"), "containers[1]: expected object"},
      {request(R"({"name":5,"image":"alpine","resource":{"cpu":"1","memory":"1Gi"}})"),
       "containers[0].name: expected string"},
      {request(R"({"name":"web","image":["alpine"],"resource":{"cpu":"1","memory":"1Gi"}})"),
       "containers[0].image: expected string"},
      {withResource("\"big\""), "containers[0].resource: expected object"},
      {withResource("[]"), "containers[0].resource: expected object"},
      {withResource(R"({"cpu":true,"memory":"1Gi"})"),
       "containers[0].resource.cpu: expected string or number"},
      {withResource(R"({"cpu":"1","memory":[]})"),
       "containers[0].resource.memory: expected string or number"},
      {withResource(R"({"cpu":"1","memory":"1Gi","ephemeral_storage":{}})"),
       "containers[0].resource.ephemeral_storage: expected string or number"},
      {request(container("web", R"("args":"sh -c true")")), "containers[0].args: expected array"},
      {request(container("web", R"("args":["sh",1])")), "containers[0].args[1]: expected string"},
      {request(container("web", R"("args":[null])")), "containers[0].args[0]: expected string"},
      {request(container("web", R"("env":{"A":"1"})")), "containers[0].env: expected array"},
      {request(container("web", R"("env":[{"A":"1"}])")), "containers[0].env[0]: expected string"},
      {request(container("web", R"("work_dir":1)")), "containers[0].work_dir: expected string"},
      {request(container("web", R"("workDir":false)")), "containers[0].workDir: expected string"},
      {withProbe("\"tcp\""), "readinessProbe: expected object"},
      {withProbe("[]"), "readinessProbe: expected object"},
      {withProbe(R"({"protocol":"tcp","port":"80"})"), "readinessProbe.port: expected integer"},
      {withProbe(R"({"protocol":1})"), "readinessProbe.protocol: expected string"},
      {withProbe(R"({"protocol":"http","path":5})"), "readinessProbe.path: expected string"},
      {request(container(), R"("readiness_probe":{"period_seconds":"1"})"),
       "readiness_probe.period_seconds: expected integer"},
      {request(container(), R"("readiness_probe":{"failure_threshold":1.5})"),
       "readiness_probe.failure_threshold: expected integer"},
      // Type errors win over validation errors met earlier in the document.
      {request(container(), R"("id":"bad id","egress":"yes")"), "egress: expected boolean"},
      {request(R"({"name":"web","resource":{"cpu":"1","memory":"1Gi"}},{"name":1})"),
       "containers[1].name: expected string"},
      // The first type error wins.
      {request(container(), R"("id":1,"egress":"yes")"), "id: expected string"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    CHECK(decodeError(c.body) == c.want);
  }
}

TEST_CASE("SandboxSpec: an error already recorded on the reader is returned") {
  JsonReader reader;
  auto root = reader.parse(kSeedRequest);
  REQUIRE(root.ok());
  int64_t n = 0;
  CHECK(!root->field({"id"}).get(n));  // the caller's own read fails
  auto spec = decodeSandboxSpec(*root, reader);
  REQUIRE(!spec.ok());
  CHECK(spec.message() == "id: expected integer");
}

TEST_CASE("SandboxSpec: the control plane decodes its \"spec\" object") {
  const std::string body = R"({"id":"cp-1","spec":{
      "id":"ignored because the caller reads it", "egress":false, "ttl_seconds":600,
      "ports":[{"container_port":8080,"protocol":"tcp"},{"container_port":53,"protocol":"udp"},
               {"container_port":9090,"host_port":31000}],
      "readiness_probe":{"protocol":"tcp","port":8080,"initial_delay_seconds":2,
          "period_seconds":5,"timeout_seconds":1,"success_threshold":1,"failure_threshold":3},
      "containers":[{"name":"app","image":"ghcr.io/acme/app:1.0","args":[],"env":["A=B"],
          "work_dir":"/srv","resource":{"cpu":0.5,"memory":"512Mi","ephemeral_storage":"1Gi"}}]}})";
  SandboxSpecOptions cp;
  cp.readId = false;
  cp.allowUnassignedHostPorts = true;

  JsonReader reader;
  auto root = reader.parse(body);
  REQUIRE(root.ok());
  auto spec = decodeSandboxSpec(root->field({"spec"}), reader, cp);
  REQUIRE_MESSAGE(spec.ok(), (spec ? "" : spec.message()));
  CHECK(spec->id.empty());
  CHECK(!spec->egress);
  REQUIRE(spec->ports.size() == 3);
  CHECK(spec->ports[0] == PortMapping{0, 8080, "tcp"});
  CHECK(spec->ports[1] == PortMapping{0, 53, "udp"});
  CHECK(spec->ports[2] == PortMapping{31000, 9090, "tcp"});
  CHECK(spec->readinessProbe->periodSeconds == 5);
  CHECK(spec->containers[0].workDir == "/srv");
  CHECK(spec->containers[0].resource.cpu == "0.5");
  CHECK(spec->containers[0].resource.cpuMillis == 500);
  CHECK(spec->containers[0].resource.ephemeralStorageBytes == 1LL << 30);
  CHECK(validateError(*spec, cp) == "<ok>");
  // The node's rules refuse the unassigned ports the control plane accepts.
  CHECK(validateError(*spec) == "invalid port mapping: 0:8080");

  auto cpError = [&](std::string_view specJson) {
    JsonReader r;
    auto rt = r.parse(R"({"id":"cp-1","spec":)" + std::string(specJson) + "}");
    REQUIRE(rt.ok());
    auto s = decodeSandboxSpec(rt->field({"spec"}), r, cp);
    return s ? std::string("<ok>") : s.message();
  };
  // Paths name the "spec" object; validation messages are the node's.
  CHECK(cpError(R"({"ports":[{"container_port":"80"}]})") ==
        "spec.ports[0].container_port: expected integer");
  CHECK(cpError("[]") == "spec: expected object");
  CHECK(cpError("{}") == "at least one container is required");
  CHECK(cpError(request(R"({"name":"web","image":"alpine","resource":{"memory":"1Gi"}})")) ==
        "container web: cpu is required");
  CHECK(cpError(request(container(), R"("ports":[{"container_port":0}])")) ==
        "invalid port mapping: 0:0");
  CHECK(cpError(request(container(), R"("ports":[{"container_port":80,"host_port":80}])")) ==
        "privileged host ports are not allowed: 80");
  CHECK(cpError(request(container(), R"("ports":[{"container_port":80},{"container_port":80}])")) ==
        "<ok>");
  CHECK(cpError(request(container(), R"("readiness_probe":{"protocol":"tcp","port":80})")) ==
        "readinessProbe.initialDelaySeconds is required");
  // Absent "spec": nothing to decode.
  JsonReader r;
  auto rt = r.parse(R"({"id":"x"})");
  REQUIRE(rt.ok());
  auto none = decodeSandboxSpec(rt->field({"spec"}), r, cp);
  REQUIRE(!none.ok());
  CHECK(none.message() == "at least one container is required");
}

TEST_CASE("SandboxSpec: validateSandboxSpec checks structs built in code") {
  auto decoded = decode(kSeedRequest);
  REQUIRE(decoded.ok());
  const SandboxSpec base = *decoded;
  CHECK(validateError(base) == "<ok>");

  struct Case {
    const char* name;
    void (*mutate)(SandboxSpec&);
    std::string want;
  };
  const Case cases[] = {
      {"empty id is fine", [](SandboxSpec& s) { s.id.clear(); }, "<ok>"},
      {"bad id", [](SandboxSpec& s) { s.id = ".x"; },
       "invalid sandbox id \".x\": must be 1-128 " + std::string(kNameRule)},
      {"no containers", [](SandboxSpec& s) { s.containers.clear(); },
       "at least one container is required"},
      {"17 containers", [](SandboxSpec& s) { s.containers.resize(17, s.containers[0]); },
       "too many containers (max 16)"},
      {"duplicate", [](SandboxSpec& s) { s.containers[1].name = "web"; },
       "duplicate container name: web"},
      {"no image", [](SandboxSpec& s) { s.containers[1].image.clear(); },
       "container worker: image is required"},
      {"no cpu", [](SandboxSpec& s) { s.containers[0].resource.cpu.clear(); },
       "container web: cpu is required"},
      {"bad cpu", [](SandboxSpec& s) { s.containers[0].resource.cpu = "abc"; },
       "container web: invalid cpu quantity \"abc\": expected e.g. 250m, 0.5 or 2"},
      {"bad env",
       [](SandboxSpec& s) {
         s.containers[0].env = {"A=1", "B=2", "C"};
       },
       "container web: env[2] must be KEY=VALUE"},
      {"too many args", [](SandboxSpec& s) { s.containers[0].args.resize(1025); },
       "container web: too many args (max 1024)"},
      {"privileged", [](SandboxSpec& s) { s.ports[0].hostPort = 443; },
       "privileged host ports are not allowed: 443"},
      {"empty protocol", [](SandboxSpec& s) { s.ports[0].protocol.clear(); },
       "unsupported protocol: "},
      {"65 ports", [](SandboxSpec& s) { s.ports.resize(65); }, "too many ports (max 64)"},
      {"zero probe field reads as a value",
       [](SandboxSpec& s) { s.readinessProbe->timeoutSeconds = 0; },
       "readinessProbe.timeoutSeconds must be >= 1"},
      {"zero probe port", [](SandboxSpec& s) { s.readinessProbe->port = 0; },
       "readinessProbe.port must be between 1 and 65535"},
      {"probe without protocol", [](SandboxSpec& s) { s.readinessProbe->protocol.clear(); },
       "readinessProbe.protocol is required"},
      {"http probe without path", [](SandboxSpec& s) { s.readinessProbe->path.clear(); },
       "readinessProbe.path is required for http probes and must start with /"},
      {"no probe", [](SandboxSpec& s) { s.readinessProbe.reset(); }, "<ok>"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    SandboxSpec s = base;
    c.mutate(s);
    CHECK(validateError(s) == c.want);
  }
}

TEST_CASE("SandboxSpec: totals saturate") {
  SandboxSpec s;
  s.containers.resize(3);
  for (ContainerSpec& c : s.containers) {
    c.resource.cpuMillis = std::numeric_limits<int64_t>::max() / 2;
    c.resource.memoryBytes = 7LL << 60;
  }
  CHECK(s.totalCpuMillis() == std::numeric_limits<int64_t>::max());
  CHECK(s.totalMemoryBytes() == std::numeric_limits<int64_t>::max());
  CHECK(SandboxSpec{}.totalCpuMillis() == 0);
}

TEST_CASE("SandboxSpec: sandbox id and container name rules") {
  for (std::string_view ok : {"a", "Z", "0", "sbx-http-demo", "a.b_c-d", "9lives", "A.."}) {
    CAPTURE(ok);
    CHECK(validateSandboxId(ok).ok());
    CHECK(validateContainerName(ok).ok());
  }
  for (std::string_view bad : {"", "-a", ".a", "_a", "a b", "a/b", "a:b", "a\n", "\xC3\xA9"}) {
    CAPTURE(bad);
    CHECK(!validateSandboxId(bad).ok());
    CHECK(!validateContainerName(bad).ok());
  }
  CHECK(validateSandboxId(std::string(128, 'a')).ok());
  CHECK(!validateSandboxId(std::string(129, 'a')).ok());
  CHECK(validateContainerName(std::string(64, 'a')).ok());
  CHECK(!validateContainerName(std::string(65, 'a')).ok());
  CHECK(validateSandboxId("a\"b").message() ==
        "invalid sandbox id \"a\"b\": must be 1-128 " + std::string(kNameRule));
}

TEST_CASE("generateSandboxId") {
  using namespace std::chrono;
  const sys_days day = 2026y / May / 8;
  const system_clock::time_point t = day + 11h + 0min + 0s;
  CHECK(generateSandboxId(t, 0) == "sbx-20260508-110000-000000");
  CHECK(generateSandboxId(t, 35) == "sbx-20260508-110000-00000z");
  CHECK(generateSandboxId(t, 36) == "sbx-20260508-110000-000010");
  CHECK(generateSandboxId(t, 2176782335ULL) == "sbx-20260508-110000-zzzzzz");
  CHECK(generateSandboxId(t, 2176782336ULL) == "sbx-20260508-110000-000000");  // wraps
  CHECK(generateSandboxId(day + 23h + 59min + 59s + 999ms, 1) == "sbx-20260508-235959-000001");
  CHECK(generateSandboxId(sys_days{2000y / January / 1} + 1h + 2min + 3s, 46656) ==
        "sbx-20000101-010203-001000");
  // Before the epoch, floor keeps the date right.
  CHECK(generateSandboxId(sys_days{1970y / January / 1} - 500ms, 0) ==
        "sbx-19691231-235959-000000");
  // Every suffix gives a valid, fixed-length id.
  for (uint64_t suffix : {uint64_t{0}, uint64_t{1}, uint64_t{123456789},
                          std::numeric_limits<uint64_t>::max(), uint64_t{0xdeadbeefcafe}}) {
    const std::string id = generateSandboxId(system_clock::now(), suffix);
    CAPTURE(id);
    CHECK(id.size() == 26);
    CHECK(validateSandboxId(id).ok());
    CHECK(id.starts_with("sbx-"));
  }
}

TEST_CASE("normalizeImageReference and parseImageReference") {
  struct Case {
    std::string ref;
    std::string normalized;  // "" = invalid
    std::string why;         // for invalid references
  };
  // 255, the limit, once normalized: "docker.io/" + 245.
  const std::string longName = "a/" + std::string(243, 'b');
  const Case cases[] = {
      // Docker Hub shorthand
      {"alpine", "docker.io/library/alpine:latest", ""},
      {"alpine:3.20", "docker.io/library/alpine:3.20", ""},
      {"python:3.12-alpine", "docker.io/library/python:3.12-alpine", ""},
      {"wordpress:6.9.4-php8.3-apache", "docker.io/library/wordpress:6.9.4-php8.3-apache", ""},
      {"user/app:1", "docker.io/user/app:1", ""},
      {"user/app", "docker.io/user/app:latest", ""},
      {"docker.io/alpine", "docker.io/library/alpine:latest", ""},
      {"docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20", ""},
      {"index.docker.io/library/alpine", "docker.io/library/alpine:latest", ""},
      {"index.docker.io/nginx:1", "docker.io/library/nginx:1", ""},
      // other registries
      {"ghcr.io/a/b:2", "ghcr.io/a/b:2", ""},
      {"ghcr.io/a/b", "ghcr.io/a/b:latest", ""},
      {"ghcr.io/app", "ghcr.io/app:latest", ""},  // no library/ outside Docker Hub
      {"localhost:5000/x", "localhost:5000/x:latest", ""},
      {"localhost/x:1", "localhost/x:1", ""},
      {"127.0.0.1:5000/team/app:v1.2.3", "127.0.0.1:5000/team/app:v1.2.3", ""},
      {"registry.example.com:443/a/b/c:tag", "registry.example.com:443/a/b/c:tag", ""},
      {"[::1]:5000/app:1", "[::1]:5000/app:1", ""},
      {"Registry.Example.com/app", "Registry.Example.com/app:latest", ""},
      {"Foo/bar", "Foo/bar:latest", ""},  // an upper-case first component is a host
      {"my-registry/app", "docker.io/my-registry/app:latest", ""},
      // path components and tags
      {"team/a.b_c__d-e--f", "docker.io/team/a.b_c__d-e--f:latest", ""},
      {"alpine:Latest_1.0-rc", "docker.io/library/alpine:Latest_1.0-rc", ""},
      {"a/b:_x", "docker.io/a/b:_x", ""},
      {"alpine:" + std::string(128, 't'), "docker.io/library/alpine:" + std::string(128, 't'), ""},
      // digests
      {"alpine@sha256:" + kSha256, "docker.io/library/alpine@sha256:" + kSha256, ""},
      {"alpine:3.20@sha256:" + kSha256, "docker.io/library/alpine:3.20@sha256:" + kSha256, ""},
      {"ghcr.io/a/b@sha512:" + kSha512, "ghcr.io/a/b@sha512:" + kSha512, ""},
      {"localhost:5000/x@sha256:" + kSha256, "localhost:5000/x@sha256:" + kSha256, ""},
      {longName, "docker.io/" + longName + ":latest", ""},
      // invalid
      {"", "", "empty reference"},
      {"Alpine", "", "repository name must be lowercase"},
      {"library/Alpine:1", "", "repository name must be lowercase"},
      {"alpine:", "", "invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"},
      {"alpine:-x", "", "invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"},
      {"alpine:a b", "", "invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"},
      {"alpine:" + std::string(129, 't'), "",
       "invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"},
      {"alpine@", "", "invalid digest: expected algorithm:hex"},
      {"alpine@" + kSha256, "", "invalid digest: expected algorithm:hex"},
      {"alpine@sha256:abc", "", "invalid digest: wrong length"},
      {"alpine@sha256:" + std::string(64, 'A'), "", "invalid digest: expected lowercase hex"},
      {"alpine@sha256:" + std::string(64, 'g'), "", "invalid digest: expected lowercase hex"},
      {"alpine@md5:" + std::string(32, 'a'), "", "unsupported digest algorithm (sha256 or sha512)"},
      {":3.20", "", "missing repository name"},
      {"@sha256:" + kSha256, "", "missing repository name"},
      {"ghcr.io/", "", "missing repository name"},
      {"a..b/c", "", "invalid registry host"},
      {"-foo.com/a", "", "invalid registry host"},
      {"foo-.com/a", "", "invalid registry host"},
      {"localhost:99999x/a", "", "invalid registry host"},
      {"host:/a", "", "invalid registry host"},
      {"[zz]:5000/a", "", "invalid registry host"},
      {"my_registry.io/a", "", "invalid registry host"},
      {"a/" + std::string(254, 'b') + "c", "", "repository name too long (max 255)"},
      // Within 255 as written, over it once docker.io/library/ is added (fuzzer).
      {std::string(251, 'a'), "", "repository name too long (max 255)"},
      {"ghcr.io/a//b", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {"a/-b", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {"a/b-", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {"a/b___c", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {"a/b._c", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {" alpine", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {"alpine:3.20:x", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
      {"a/b/", "",
       "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.ref);
    auto parsed = parseImageReference(c.ref);
    if (c.normalized.empty()) {
      REQUIRE(!parsed.ok());
      CHECK(parsed.message() == "invalid image reference \"" + c.ref + "\": " + c.why);
      CHECK(normalizeImageReference(c.ref) == c.ref);  // invalid: unchanged
    } else {
      REQUIRE_MESSAGE(parsed.ok(), (parsed ? "" : parsed.message()));
      CHECK(parsed->normalized() == c.normalized);
      CHECK(normalizeImageReference(c.ref) == c.normalized);
      // Normalising is idempotent.
      CHECK(normalizeImageReference(c.normalized) == c.normalized);
    }
  }
}

TEST_CASE("parseImageReference: parts") {
  struct Case {
    std::string_view ref;
    ImageReference want;
  };
  const std::string digest = "sha256:" + kSha256;
  const Case cases[] = {
      {"alpine:3.20", {"docker.io", "library/alpine", "3.20", ""}},
      {"alpine", {"docker.io", "library/alpine", "latest", ""}},
      {"user/app:1", {"docker.io", "user/app", "1", ""}},
      {"ghcr.io/a/b:2", {"ghcr.io", "a/b", "2", ""}},
      {"localhost:5000/x", {"localhost:5000", "x", "latest", ""}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.ref);
    auto parsed = parseImageReference(c.ref);
    REQUIRE(parsed.ok());
    CHECK(*parsed == c.want);
  }
  auto withDigest = parseImageReference("alpine@" + digest);
  REQUIRE(withDigest.ok());
  CHECK(*withDigest == ImageReference{"docker.io", "library/alpine", "", digest});
  auto both = parseImageReference("alpine:3.20@" + digest);
  REQUIRE(both.ok());
  CHECK(*both == ImageReference{"docker.io", "library/alpine", "3.20", digest});
  // A long invalid reference is quoted up to 512 bytes.
  const std::string huge(2000, 'A');
  auto bad = parseImageReference(huge);
  REQUIRE(!bad.ok());
  CHECK(bad.message() == "invalid image reference \"" + huge.substr(0, 512) +
                             "\": repository name too long (max 255)");
}

}  // namespace
}  // namespace sbx::node
