// badinput: a table-driven bad-input test for every endpoint of sbxlet
// (SPEC §1, /v1/...) and sandboxd-o (SPEC §2, /api/v1/...).
//
//   badinput --api sbxlet|orch --target HOST:PORT (--secret S | --secret-file F)
//            [--node NAME] [--existing-id ID] [--list] [--verbose] [--only TEXT]
//
// Every case is one request on a fresh blocking TCP connection (no HTTP
// library: many cases are bytes no library would send). A case passes when
// the daemon answers 4xx with a JSON body {"error": "<non-empty>"}; never
// 2xx, 5xx, a hang or a dropped connection. The HTTP layer may close the
// connection after its own 400/408/413/417/431; anywhere else the
// connection must stay usable, which a GET /healthz on it afterwards checks.
// Whether a case changed anything is checked from outside
// (tests/integration/badinput_test.sh snapshots the node and the control
// plane before and after).
//
// The table is built in code: the endpoints of the chosen API × generic
// mutations (JSON syntax, types, nulls, sizes, encodings, ids in paths,
// query strings, methods, auth, HTTP framing), plus endpoint-specific
// values (ports, quantities, image references, ...). A few cases are not
// bad input by SPEC (limit=abc gives the default page; DELETE of an unknown
// but well-formed id is 200): they are marked "spec-allows-2xx" and pass on
// a 2xx JSON answer, and the ones SPEC leaves open pass on 2xx or 4xx.
//
// Each request body starts from a valid one and breaks one thing, with a
// fresh id per case, so a case that is wrongly accepted creates something
// visible and cannot hide the next one behind "already exists".
//
// Output: one line per failing case (name | request | status | body |
// why), a count per family, and "badinput: N passed, M failed" last.
// Exit status: 0 all passed, 1 some failed, 2 bad flags or target down.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "http/UrlCodec.h"
#include "json/JsonReader.h"
#include "node/SandboxSpec.h"

namespace {

using Clock = std::chrono::steady_clock;
using sbx::json::JsonCursor;
using sbx::json::JsonKind;
using sbx::json::JsonReader;

enum class Api { Sbxlet, Orch };

struct Options {
  Api api = Api::Sbxlet;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string secret;
  std::string node;
  std::string existingId;
  bool list = false;
  bool verbose = false;
  bool slow = true;
  std::string only;
  std::chrono::milliseconds timeout{10000};
};

// ---------------------------------------------------------------------------
// Request bodies: a small ordered JSON tree. Unlike JsonWriter it keeps raw
// text (invalid UTF-8, duplicate keys, numbers a parser refuses), so a case
// can break one spot of an otherwise valid body.

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object, Raw };
  Kind kind = Kind::Null;
  std::string text;  // Bool/Number/Raw: the literal; String: the bytes (escaped on output)
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
};

Json jnull() { return Json{}; }
Json jbool(bool b) { return Json{Json::Kind::Bool, b ? "true" : "false", {}, {}}; }
Json jnum(std::string literal) { return Json{Json::Kind::Number, std::move(literal), {}, {}}; }
Json jstr(std::string s) { return Json{Json::Kind::String, std::move(s), {}, {}}; }
Json jraw(std::string text) { return Json{Json::Kind::Raw, std::move(text), {}, {}}; }
Json jarr(std::vector<Json> items) { return Json{Json::Kind::Array, "", std::move(items), {}}; }
Json jobj(std::vector<std::pair<std::string, Json>> members) {
  return Json{Json::Kind::Object, "", {}, std::move(members)};
}

// Escapes quotes, backslashes and control bytes; bytes >= 0x80 pass through
// as they are (so invalid UTF-8 reaches the wire).
void appendQuoted(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

void serialize(const Json& j, std::string& out) {
  switch (j.kind) {
    case Json::Kind::Null:
      out += "null";
      return;
    case Json::Kind::Bool:
    case Json::Kind::Number:
    case Json::Kind::Raw:
      out += j.text;
      return;
    case Json::Kind::String:
      appendQuoted(out, j.text);
      return;
    case Json::Kind::Array:
      out.push_back('[');
      for (size_t i = 0; i < j.items.size(); ++i) {
        if (i) out.push_back(',');
        serialize(j.items[i], out);
      }
      out.push_back(']');
      return;
    case Json::Kind::Object:
      out.push_back('{');
      for (size_t i = 0; i < j.members.size(); ++i) {
        if (i) out.push_back(',');
        appendQuoted(out, j.members[i].first);
        out.push_back(':');
        serialize(j.members[i].second, out);
      }
      out.push_back('}');
      return;
  }
}

std::string dump(const Json& j) {
  std::string out;
  serialize(j, out);
  return out;
}

// Paths: "containers[0].resource.cpu". Keys hold no '.' or '['.
struct Step {
  std::string key;  // "" for an index step
  size_t index = 0;
};

std::vector<Step> parsePath(std::string_view path) {
  std::vector<Step> steps;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      ++i;
      continue;
    }
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      steps.push_back(Step{"", static_cast<size_t>(std::atoi(
                                   std::string(path.substr(i + 1, close - i - 1)).c_str()))});
      i = close + 1;
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    if (end == std::string_view::npos) end = path.size();
    steps.push_back(Step{std::string(path.substr(i, end - i)), 0});
    i = end;
  }
  return steps;
}

// The value at `path`, or null when absent. With `create`, a missing last
// key is appended to its object.
Json* locate(Json& root, std::string_view path, bool create) {
  Json* cur = &root;
  const auto steps = parsePath(path);
  for (size_t s = 0; s < steps.size(); ++s) {
    const Step& st = steps[s];
    if (st.key.empty()) {
      if (cur->kind != Json::Kind::Array || st.index >= cur->items.size()) return nullptr;
      cur = &cur->items[st.index];
      continue;
    }
    if (cur->kind != Json::Kind::Object) return nullptr;
    Json* next = nullptr;
    for (auto& [k, v] : cur->members) {
      if (k == st.key) {
        next = &v;
        break;
      }
    }
    if (!next) {
      if (!create || s + 1 != steps.size()) return nullptr;
      cur->members.emplace_back(st.key, jnull());
      next = &cur->members.back().second;
    }
    cur = next;
  }
  return cur;
}

Json with(Json base, std::string_view path, Json value) {
  if (Json* at = locate(base, path, true)) *at = std::move(value);
  return base;
}

Json without(Json base, std::string_view path) {
  const auto steps = parsePath(path);
  if (steps.empty() || steps.back().key.empty()) return base;
  std::string parentPath(path.substr(0, path.size() - steps.back().key.size()));
  while (!parentPath.empty() && parentPath.back() == '.') parentPath.pop_back();
  Json* parent = parentPath.empty() ? &base : locate(base, parentPath, false);
  if (!parent || parent->kind != Json::Kind::Object) return base;
  auto& m = parent->members;
  m.erase(std::remove_if(m.begin(), m.end(),
                         [&](const auto& kv) { return kv.first == steps.back().key; }),
          m.end());
  return base;
}

// The object holding `path`'s last key ("" = the root), for inserting keys.
std::string parentOf(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string() : std::string(path.substr(0, dot));
}

// The name a server puts in its type error for `path`: the last key with its
// indexes ("containers[0]", "cpu").
std::string leafName(std::string_view path) {
  size_t dot = path.rfind('.');
  return std::string(dot == std::string_view::npos ? path : path.substr(dot + 1));
}

// ---------------------------------------------------------------------------
// Cases

// What a case must get back.
enum class Want {
  Reject,         // 4xx, JSON {"error": non-empty}
  SpecAllows2xx,  // SPEC says this is served (e.g. limit=abc → default page): 2xx JSON
  Either,         // SPEC is silent (unknown query parameters): 2xx or 4xx JSON, never 5xx
};

struct Expect {
  Want want = Want::Reject;
  std::vector<int> statuses;  // Reject: the acceptable statuses; empty = any 4xx
  bool httpLayer = false;     // the HTTP layer answers and may close the connection
  std::string messageHas;     // Reject: the error message contains this
  std::string exactBody;      // Reject: the whole body
};

Expect reject(std::vector<int> statuses = {}, bool httpLayer = false) {
  Expect e;
  e.statuses = std::move(statuses);
  e.httpLayer = httpLayer;
  return e;
}
Expect rejectWith(std::string messageHas, std::vector<int> statuses = {}) {
  Expect e = reject(std::move(statuses));
  e.messageHas = std::move(messageHas);
  return e;
}
Expect wanting(Want w) {
  Expect e;
  e.want = w;
  return e;
}
Expect unauthorized() {
  Expect e = reject({401});
  e.exactBody = "{\"error\":\"unauthorized\"}";
  return e;
}

enum class AuthMode { Valid, None, Custom };

struct Request {
  std::string method;
  std::string target;
  AuthMode auth = AuthMode::Valid;
  std::string authValue;  // AuthMode::Custom
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;         // sent with Content-Length
  std::optional<std::string> contentType;  // default with a body: application/json; "" = none
  bool chunked = false;                    // body sent chunked instead
  std::string raw;                         // non-empty: these exact bytes instead
  bool followUp = true;                    // check the connection afterwards
};

struct Case {
  std::string family;
  std::string name;
  Request req;
  Expect expect;
};

// Families, in report order.
const std::vector<std::string> kFamilies = {
    "json-syntax",       "json-types", "json-missing-null", "json-dup-keys", "json-size",
    "json-encoding",     "ids-names",  "numbers",           "quantities",    "query",
    "methods",           "paths",      "content-type",      "auth",          "http",
    "endpoint-specific",
};

// ---- the body shapes ----------------------------------------------------------------

enum Accept : unsigned { kStr = 1, kInt = 2, kFrac = 4, kBool = 8, kObj = 16, kArr = 32 };

enum class Text {
  None,
  FreeForm,  // any string is fine (statuses ids: unknown ones are reported "missing")
  SandboxId,
  ContainerName,
  NodeId,
  Image,
  Arg,
  Env,
  WorkDir,
  PortProtocol,
  ProbeProtocol,
  ProbePath,
  Cpu,
  Memory,
  Ephemeral,
  Ip,
  External,
};

struct Field {
  std::string path;
  unsigned accepts = 0;
  bool required = false;  // missing or null is an error
  Text text = Text::None;
  int64_t min = 0, max = 0;  // integer fields
  size_t hugeBytes = 100 * 1024;
};

struct ArrayLimit {
  std::string path;
  Json compactItem;  // a small valid element, for 10,000 of them
};

struct Shape {
  std::string name;
  std::function<Json(int uniq)> base;
  std::vector<Field> fields;
  std::vector<ArrayLimit> arrays;
  bool emptyObjectRejected = true;    // {} is bad input
  bool nullRootRejected = true;       // null is bad input
  bool sbxletAdmission = false;       // admission runs before the answer (sbxlet, not orch)
  std::vector<std::string> keyHosts;  // objects to put a bad key in ("" = root)
};

// Ids of what a wrongly accepted case would create: unique per run (the
// pid) and per case, so one accepted case cannot turn the next one into
// "already exists".
std::string gRunTag = "0";
std::string freshId(const char* prefix, int uniq) {
  return prefix + gRunTag + "-" + std::to_string(uniq);
}
// Host ports 42000-51999, shifted per run for the same reason.
int freshPort(int uniq) {
  return 42000 + static_cast<int>((std::stoul(gRunTag) * 7919 + uniq) % 10000);
}

// sbxlet's create request (SPEC §1), or the control plane's "spec" (SPEC §2,
// snake_case, no host ports) under `prefix`.
struct SpecNames {
  bool snake;
  const char* hostPort() const { return "hostPort"; }
  const char* containerPort() const { return snake ? "container_port" : "containerPort"; }
  const char* probe() const { return snake ? "readiness_probe" : "readinessProbe"; }
  const char* workDir() const { return snake ? "work_dir" : "workDir"; }
  const char* ephemeral() const { return snake ? "ephemeral_storage" : "ephemeralStorage"; }
  std::vector<std::string> probeInts() const {
    if (snake) {
      return {"initial_delay_seconds", "period_seconds", "timeout_seconds", "success_threshold",
              "failure_threshold"};
    }
    return {"initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold",
            "failureThreshold"};
  }
};

Json containerJson(const SpecNames& n, const std::string& name) {
  return jobj({
      {"name", jstr(name)},
      {"image", jstr("busybox:latest")},
      {"args", jarr({jstr("sh"), jstr("-c"), jstr("trap 'exit 0' TERM; sleep 3600 & wait")})},
      {"env", jarr({jstr("BADINPUT=1")})},
      {n.workDir(), jstr("/")},
      {"resource",
       jobj({{"cpu", jstr("10m")}, {"memory", jstr("16Mi")}, {n.ephemeral(), jstr("64Mi")}})},
  });
}

Json specJson(const SpecNames& n, bool withHostPort, int uniq) {
  Json port = withHostPort ? jobj({{n.hostPort(), jnum(std::to_string(freshPort(uniq)))},
                                   {n.containerPort(), jnum("8080")},
                                   {"protocol", jstr("tcp")}})
                           : jobj({{n.containerPort(), jnum("8080")}, {"protocol", jstr("tcp")}});
  std::vector<std::pair<std::string, Json>> probe = {
      {"protocol", jstr("http")}, {"port", jnum("8080")}, {"path", jstr("/healthz")}};
  for (const auto& k : n.probeInts()) probe.emplace_back(k, jnum("1"));
  return jobj({
      {"egress", jbool(false)},
      {"ports", jarr({port})},
      {n.probe(), jobj(probe)},
      {"containers", jarr({containerJson(n, "main")})},
  });
}

void addSpecFields(std::vector<Field>& f, const std::string& p, const SpecNames& n,
                   bool withHostPort) {
  const std::string probe = p + n.probe();
  const std::string c = p + "containers[0]";
  f.push_back({p + "egress", kBool, false, Text::None});
  f.push_back({p + "ports", kArr, false, Text::None});
  f.push_back({p + "ports[0]", kObj, true, Text::None});
  if (withHostPort)
    f.push_back({p + "ports[0]." + n.hostPort(), kInt, true, Text::None, 1024, 65535});
  f.push_back({p + "ports[0]." + n.containerPort(), kInt, true, Text::None, 1, 65535});
  f.push_back({p + "ports[0].protocol", kStr, false, Text::PortProtocol});
  f.push_back({probe, kObj, false, Text::None});
  f.push_back({probe + ".protocol", kStr, true, Text::ProbeProtocol});
  f.push_back({probe + ".port", kInt, true, Text::None, 1, 65535});
  f.push_back({probe + ".path", kStr, true, Text::ProbePath});
  for (const auto& k : n.probeInts())
    f.push_back({probe + "." + k, kInt, true, Text::None, 1, 3600});
  f.push_back({p + "containers", kArr, true, Text::None});
  f.push_back({c, kObj, true, Text::None});
  f.push_back({c + ".name", kStr, true, Text::ContainerName});
  f.push_back({c + ".image", kStr, true, Text::Image});
  f.push_back({c + ".args", kArr, false, Text::None});
  f.push_back({c + ".args[0]", kStr, true, Text::Arg, 0, 0, 200 * 1024});
  f.push_back({c + ".env", kArr, false, Text::None});
  f.push_back({c + ".env[0]", kStr, true, Text::Env, 0, 0, 200 * 1024});
  f.push_back({c + "." + n.workDir(), kStr, false, Text::WorkDir});
  f.push_back({c + ".resource", kObj, true, Text::None});
  f.push_back({c + ".resource.cpu", kStr | kInt | kFrac, true, Text::Cpu});
  f.push_back({c + ".resource.memory", kStr | kInt | kFrac, true, Text::Memory});
  f.push_back({c + ".resource." + n.ephemeral(), kStr | kInt | kFrac, false, Text::Ephemeral});
}

void addSpecArrays(std::vector<ArrayLimit>& a, const std::string& p, const SpecNames& n,
                   bool withHostPort) {
  a.push_back({p + "containers",
               jobj({{"name", jstr("c")},
                     {"image", jstr("busybox")},
                     {"resource", jobj({{"cpu", jstr("1m")}, {"memory", jstr("1Mi")}})}})});
  a.push_back({p + "ports",
               withHostPort ? jobj({{n.hostPort(), jnum("42999")}, {n.containerPort(), jnum("1")}})
                            : jobj({{n.containerPort(), jnum("1")}})});
  a.push_back({p + "containers[0].args", jstr("x")});
  a.push_back({p + "containers[0].env", jstr("A=B")});
}

Shape sbxletCreateShape() {
  SpecNames n{false};
  Shape s;
  s.name = "sandbox";
  s.base = [n](int uniq) {
    Json b = specJson(n, true, uniq);
    b.members.insert(b.members.begin(), {"id", jstr(freshId("badinput-", uniq))});
    return b;
  };
  s.fields.push_back({"id", kStr, false, Text::SandboxId});
  addSpecFields(s.fields, "", n, true);
  addSpecArrays(s.arrays, "", n, true);
  s.sbxletAdmission = true;
  s.keyHosts = {"", "containers[0]"};
  return s;
}

Shape statusesShape() {
  Shape s;
  s.name = "statuses";
  s.base = [](int uniq) {
    return jobj({{"ids", jarr({jstr(freshId("badinput-", uniq)), jstr("ghost")})}});
  };
  s.fields.push_back({"ids", kArr, false, Text::None});
  s.fields.push_back({"ids[0]", kStr, true, Text::FreeForm});
  s.arrays.push_back({"ids", jstr("ghost")});
  s.emptyObjectRejected = false;  // SPEC: no field is required
  s.keyHosts = {""};
  return s;
}

Shape nodeShape() {
  Shape s;
  s.name = "node";
  // Port 1: if a case is wrongly accepted, the node never becomes Ready and
  // nothing is scheduled on it.
  s.base = [](int uniq) {
    return jobj({{"id", jstr(freshId("badinput-node-", uniq))},
                 {"spec", jobj({{"ip", jstr("127.0.0.1")},
                                {"port", jnum("1")},
                                {"external", jstr("198.51.100.99")}})}});
  };
  s.fields = {
      {"id", kStr, true, Text::NodeId},
      {"spec", kObj, true, Text::None},
      {"spec.ip", kStr, true, Text::Ip},
      {"spec.port", kInt, false, Text::None, 1, 65535},
      {"spec.external", kStr, false, Text::External},
  };
  s.keyHosts = {"", "spec"};
  return s;
}

Shape orchCreateShape() {
  SpecNames n{true};
  Shape s;
  s.name = "orch-sandbox";
  s.base = [n](int uniq) {
    Json spec = specJson(n, false, uniq);
    spec.members.insert(spec.members.begin() + 1, {"ttl_seconds", jnum("600")});
    return jobj({{"id", jstr(freshId("badinput-", uniq))}, {"spec", spec}});
  };
  s.fields.push_back({"id", kStr, false, Text::SandboxId});
  s.fields.push_back({"spec", kObj, true, Text::None});
  s.fields.push_back({"spec.ttl_seconds", kInt, false, Text::None, 0, 365LL * 24 * 3600});
  addSpecFields(s.fields, "spec.", n, false);
  addSpecArrays(s.arrays, "spec.", n, false);
  s.keyHosts = {"", "spec", "spec.containers[0]"};
  return s;
}

// ---- endpoints --------------------------------------------------------------------

enum class Param { SandboxId, ContainerName, NodeName };

struct Endpoint {
  std::string method;
  std::string pattern;  // "/v1/sandboxes/{id}"
  const Shape* shape = nullptr;
  bool open = false;  // no auth (GET /healthz)
  bool list = false;  // ?cursor=&limit=
  bool logs = false;
  bool proxy = false;  // the control plane's node proxy
};

struct Target {
  Options opt;
  std::string existingId;  // a sandbox that exists (or a placeholder)
  bool haveExisting = false;
  std::string containerName = "main";
  int existingHostPort = 0;
};

Param paramKind(Api api, const std::string& name) {
  if (name == "id") return Param::SandboxId;
  if (name == "container") return Param::ContainerName;
  if (name == "name") return api == Api::Orch ? Param::NodeName : Param::ContainerName;
  return Param::SandboxId;
}

std::string paramValue(const Target& t, Param p) {
  switch (p) {
    case Param::SandboxId:
      return t.existingId;
    case Param::ContainerName:
      return t.containerName;
    case Param::NodeName:
      return t.opt.node;
  }
  return "";
}

std::vector<std::string> paramsOf(const std::string& pattern) {
  std::vector<std::string> out;
  for (size_t i = pattern.find('{'); i != std::string::npos; i = pattern.find('{', i + 1)) {
    out.push_back(pattern.substr(i + 1, pattern.find('}', i) - i - 1));
  }
  return out;
}

// `pattern` with every {param} filled; `override` replaces one of them by
// raw (already encoded) text.
std::string fill(const Target& t, const std::string& pattern, const std::string& overrideParam = "",
                 const std::string& overrideRaw = "") {
  std::string out;
  size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] != '{') {
      out.push_back(pattern[i++]);
      continue;
    }
    size_t close = pattern.find('}', i);
    std::string name = pattern.substr(i + 1, close - i - 1);
    out += name == overrideParam ? overrideRaw : paramValue(t, paramKind(t.opt.api, name));
    i = close + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The wire: one blocking-with-deadline TCP connection.

struct Response {
  bool complete = false;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool serverClosed = false;
  std::string transportError;

  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        return &v;
      }
    }
    return nullptr;
  }
  bool closes() const {
    const std::string* c = header("Connection");
    return c && (*c == "close" || *c == "Close");
  }
};

// Parses one response from the front of `buf`. Returns the bytes it took
// when complete, 0 when more are needed (or, at EOF, takes the rest as a
// close-delimited body). 1xx interim responses are skipped.
size_t parseResponse(const std::string& buf, bool eof, Response& out) {
  size_t start = 0;
  for (;;) {
    size_t end = buf.find("\r\n\r\n", start);
    if (end == std::string::npos) return 0;
    Response r;
    size_t lineEnd = buf.find("\r\n", start);
    std::string statusLine = buf.substr(start, lineEnd - start);
    if (statusLine.compare(0, 5, "HTTP/") != 0 || statusLine.size() < 12) {
      out.transportError = "not an HTTP response: " + statusLine.substr(0, 40);
      return 0;
    }
    r.status = std::atoi(statusLine.c_str() + 9);
    size_t pos = lineEnd + 2;
    while (pos < end) {
      size_t e = buf.find("\r\n", pos);
      std::string line = buf.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        r.headers.emplace_back(line.substr(0, colon), v);
      }
      pos = e + 2;
    }
    size_t bodyStart = end + 4;
    if (r.status >= 100 && r.status < 200) {
      start = bodyStart;
      continue;
    }
    const std::string* te = r.header("Transfer-Encoding");
    const std::string* cl = r.header("Content-Length");
    if (te && te->find("chunked") != std::string::npos) {
      size_t p = bodyStart;
      for (;;) {
        size_t e = buf.find("\r\n", p);
        if (e == std::string::npos) return 0;
        size_t n = std::strtoul(buf.substr(p, e - p).c_str(), nullptr, 16);
        if (n == 0) {
          size_t fin = buf.find("\r\n", e + 2);
          if (fin == std::string::npos) return 0;
          r.complete = true;
          out = std::move(r);
          return fin + 2;
        }
        if (buf.size() < e + 2 + n + 2) return 0;
        r.body.append(buf, e + 2, n);
        p = e + 2 + n + 2;
      }
    }
    if (cl) {
      size_t n = std::strtoul(cl->c_str(), nullptr, 10);
      if (buf.size() < bodyStart + n) return 0;
      r.body = buf.substr(bodyStart, n);
      r.complete = true;
      out = std::move(r);
      return bodyStart + n;
    }
    if (!eof) return 0;
    r.body = buf.substr(bodyStart);
    r.complete = true;
    out = std::move(r);
    return buf.size();
  }
}

class Conn {
 public:
  Conn() = default;
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool open(const Options& o, std::string& err) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      err = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(o.port);
    if (::inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1) {
      err = "bad host " + o.host;
      return false;
    }
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      err = std::string("connect: ") + std::strerror(errno);
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
  }

  // Sends `data` (all of it unless the server stops reading and closes) and
  // reads until one response is complete, the server closes, or `deadline`.
  Response exchange(std::string_view data, Clock::time_point deadline) {
    Response r;
    size_t sent = 0;
    bool sendDone = data.empty();
    for (;;) {
      if (!in_.empty()) {
        size_t used = parseResponse(in_, eof_, r);
        if (!r.transportError.empty()) return r;
        if (used > 0) {
          in_.erase(0, used);
          r.serverClosed = eof_;
          return r;
        }
      }
      if (eof_) {
        r.serverClosed = true;
        r.transportError = in_.empty() ? "connection closed without a response"
                                       : "connection closed in the middle of a response";
        return r;
      }
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        r.transportError = "no response within the timeout (hang)";
        return r;
      }
      pollfd p{fd_, static_cast<short>(POLLIN | (sendDone ? 0 : POLLOUT)), 0};
      int n = ::poll(&p, 1, static_cast<int>(std::min<long>(left, 1000)));
      if (n < 0 && errno != EINTR) {
        r.transportError = std::string("poll: ") + std::strerror(errno);
        return r;
      }
      if (n <= 0) continue;
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
        if (got > 0) {
          in_.append(buf, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          eof_ = true;  // EOF or a reset: what arrived before still counts
        }
      }
      if (!sendDone && (p.revents & POLLOUT)) {
        size_t chunk = std::min<size_t>(data.size() - sent, 256 * 1024);
        ssize_t w = ::send(fd_, data.data() + sent, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          sent += static_cast<size_t>(w);
          sendDone = sent == data.size();
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          sendDone = true;  // the server stopped reading (e.g. after a 413): read its answer
        }
      }
    }
  }

  // Sends `data` now (small writes only: the half request of the slow case).
  bool sendNow(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

 private:
  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
};

// ---------------------------------------------------------------------------
// Building requests and judging answers

std::string authHeaderValue(const Options& o) { return "Bearer " + o.secret; }

std::string wireBytes(const Request& r, const Options& o) {
  if (!r.raw.empty()) return r.raw;
  std::string out = r.method + " " + r.target + " HTTP/1.1\r\nHost: " + o.host + ":" +
                    std::to_string(o.port) + "\r\n";
  if (r.auth == AuthMode::Valid) out += "Authorization: " + authHeaderValue(o) + "\r\n";
  if (r.auth == AuthMode::Custom) out += "Authorization: " + r.authValue + "\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  if (r.body) {
    std::string ct = r.contentType.value_or("application/json");
    if (!ct.empty()) out += "Content-Type: " + ct + "\r\n";
    if (r.chunked) {
      out += "Transfer-Encoding: chunked\r\n\r\n";
      static const char kHex[] = "0123456789abcdef";
      for (size_t i = 0; i < r.body->size(); i += 65536) {
        size_t n = std::min<size_t>(65536, r.body->size() - i);
        std::string hex;
        for (size_t v = n; v; v >>= 4) hex.insert(hex.begin(), kHex[v & 15]);
        out += hex + "\r\n";
        out.append(*r.body, i, n);
        out += "\r\n";
      }
      out += "0\r\n\r\n";
    } else {
      out += "Content-Length: " + std::to_string(r.body->size()) + "\r\n\r\n";
      out += *r.body;
    }
  } else {
    out += "\r\n";
  }
  return out;
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  if (out.size() >= max) out += "...";
  return out;
}

std::string summary(const Request& r) {
  if (!r.raw.empty()) {
    return "raw " + std::to_string(r.raw.size()) + " bytes: " + printable(r.raw, 80);
  }
  std::string s = r.method + " " + printable(r.target, 100);
  if (r.auth == AuthMode::None) s += " (no auth)";
  if (r.auth == AuthMode::Custom) s += " (Authorization: " + printable(r.authValue, 30) + ")";
  if (r.body) {
    s += " body[" + std::to_string(r.body->size()) + "]=" + printable(*r.body, 60);
  }
  return s;
}

// "" when `resp` meets `e`, else why not.
std::string judge(const Expect& e, const Response& resp) {
  if (!resp.complete) return resp.transportError.empty() ? "no response" : resp.transportError;
  const int st = resp.status;
  if (st >= 500) return "server error " + std::to_string(st);
  switch (e.want) {
    case Want::Reject:
      if (st < 400 || st > 499) return "expected 4xx, got " + std::to_string(st);
      if (!e.statuses.empty() &&
          std::find(e.statuses.begin(), e.statuses.end(), st) == e.statuses.end()) {
        std::string want;
        for (int s : e.statuses) want += (want.empty() ? "" : "/") + std::to_string(s);
        return "expected " + want + ", got " + std::to_string(st);
      }
      break;
    case Want::SpecAllows2xx:
      if (st < 200 || st > 299) return "SPEC serves this: expected 2xx, got " + std::to_string(st);
      break;
    case Want::Either:
      if ((st < 200 || st > 299) && (st < 400 || st > 499)) {
        return "expected 2xx or 4xx, got " + std::to_string(st);
      }
      break;
  }
  const std::string* ct = resp.header("Content-Type");
  if (!ct || ct->find("application/json") == std::string::npos)
    return "Content-Type is not application/json";
  JsonReader reader;
  auto root = reader.parse(resp.body);
  if (!root.ok()) return "body is not JSON: " + root.message();
  if (root->kind() != JsonKind::Object) return "body is not a JSON object";
  if (st >= 400) {
    std::string msg;
    if (!root->field({"error"}).get(msg) || msg.empty()) return "no non-empty \"error\" string";
    if (!e.messageHas.empty() && msg.find(e.messageHas) == std::string::npos) {
      return "error message lacks \"" + printable(e.messageHas, 40) + "\"";
    }
    if (!e.exactBody.empty() && resp.body != e.exactBody) return "body is not " + e.exactBody;
    if (st == 405 && !resp.header("Allow")) return "405 without an Allow header";
  }
  if (!e.httpLayer && resp.closes()) return "the server closed the connection after its answer";
  return "";
}

// ---------------------------------------------------------------------------
// The table

class Table {
 public:
  Table(const Target& t) : t_(t) {}

  std::vector<Case> build();

 private:
  void add(std::string family, std::string name, Request req, Expect e = {}) {
    if (!names_.insert(name).second) {
      std::fprintf(stderr, "badinput: duplicate case name: %s\n", name.c_str());
      std::exit(2);
    }
    cases_.push_back(Case{std::move(family), std::move(name), std::move(req), std::move(e)});
  }

  std::string epName(const Endpoint& ep) const { return ep.method + " " + ep.pattern; }
  std::string target(const Endpoint& ep) const { return fill(t_, ep.pattern); }
  Request bodyRequest(const Endpoint& ep, std::string body) const {
    Request r;
    r.method = ep.method;
    r.target = target(ep);
    r.body = std::move(body);
    return r;
  }
  // A valid body for `ep` (a fresh id): what auth and method cases send.
  std::optional<std::string> validBody(const Endpoint& ep) {
    if (!ep.shape) return std::nullopt;
    return dump(ep.shape->base(++uniq_));
  }
  std::string authLine() const { return "Authorization: " + authHeaderValue(t_.opt) + "\r\n"; }
  std::string hostLine() const { return "Host: " + t_.opt.host + "\r\n"; }

  void bodyCases(const Endpoint& ep);
  void typeCases(const Endpoint& ep, const Shape& s);
  void sizeCases(const Endpoint& ep, const Shape& s);
  void encodingCases(const Endpoint& ep, const Shape& s);
  void textCases(const Endpoint& ep, const Shape& s);
  void numberCases(const Endpoint& ep, const Shape& s);
  void specificCases(const Endpoint& ep, const Shape& s);
  void pathCases(const Endpoint& ep);
  void queryCases(const Endpoint& ep);
  void methodCases(const std::vector<Endpoint>& eps);
  void unknownPathCases();
  void contentTypeCases(const Endpoint& ep);
  void authCases(const Endpoint& ep);
  void framingCases(const Endpoint& ep);
  void parserCases();

  const Target& t_;
  std::vector<Case> cases_;
  std::set<std::string> names_;
  int uniq_ = 0;
  Shape create_ = sbxletCreateShape();
  Shape statuses_ = statusesShape();
  Shape node_ = nodeShape();
  Shape orchCreate_ = orchCreateShape();
};

std::vector<Endpoint> endpoints(Api api, const Shape& create, const Shape& statuses,
                                const Shape& node, const Shape& orchCreate) {
  if (api == Api::Sbxlet) {
    return {
        {"GET", "/healthz", nullptr, true},
        {"GET", "/v1/node/status"},
        {"GET", "/v1/node/loop"},
        {"POST", "/v1/sandboxes", &create},
        {"GET", "/v1/sandboxes", nullptr, false, true},
        {"GET", "/v1/sandboxes/{id}"},
        {"DELETE", "/v1/sandboxes/{id}"},
        {"POST", "/v1/sandboxes/statuses", &statuses},
        {"POST", "/v1/reconcile"},
        {"GET", "/v1/sandboxes/{id}/logs", nullptr, false, false, true},
        {"GET", "/v1/sandboxes/{id}/containers/{name}/logs", nullptr, false, false, true},
    };
  }
  return {
      {"GET", "/healthz", nullptr, true},
      {"GET", "/api/v1/loop"},
      {"GET", "/api/v1/nodes"},
      {"POST", "/api/v1/nodes", &node},
      {"GET", "/api/v1/nodes/{name}"},
      {"DELETE", "/api/v1/nodes/{name}"},
      {"POST", "/api/v1/nodes/{name}/heartbeat"},
      {"POST", "/api/v1/sandboxes", &orchCreate},
      {"GET", "/api/v1/sandboxes", nullptr, false, true},
      {"GET", "/api/v1/sandboxes/{id}"},
      {"DELETE", "/api/v1/sandboxes/{id}"},
      {"GET", "/api/v1/nodes/{name}/sandboxes", nullptr, false, true, false, true},
      {"POST", "/api/v1/nodes/{name}/sandboxes", &create, false, false, false, true},
      {"GET", "/api/v1/nodes/{name}/sandboxes/{id}", nullptr, false, false, false, true},
      {"DELETE", "/api/v1/nodes/{name}/sandboxes/{id}", nullptr, false, false, false, true},
      {"GET", "/api/v1/nodes/{name}/sandboxes/{id}/logs", nullptr, false, false, true, true},
      {"GET", "/api/v1/nodes/{name}/sandboxes/{id}/containers/{container}/logs", nullptr, false,
       false, true, true},
      {"POST", "/api/v1/nodes/{name}/reconcile", nullptr, false, false, false, true},
  };
}

// ---- JSON syntax, top-level types, duplicate keys --------------------------------------

void Table::bodyCases(const Endpoint& ep) {
  const Shape& s = *ep.shape;
  const std::string n = epName(ep) + " body=";
  const std::string base = dump(s.base(++uniq_));
  auto insertFront = [&](const std::string& member) { return "{" + member + "," + base.substr(1); };

  const std::vector<std::pair<std::string, std::string>> malformed = {
      {"truncated-half", base.substr(0, base.size() / 2)},
      {"truncated-last-brace", base.substr(0, base.size() - 1)},
      {"trailing-garbage", base + "x"},
      {"trailing-comma-after-doc", base + ","},
      {"two-documents", base + base},
      {"single-quotes",
       [&] {
         std::string q = base;
         std::replace(q.begin(), q.end(), '"', '\'');
         return q;
       }()},
      {"bare-words", "{id: badinput, containers: [], ids: []}"},
      {"unquoted-value", insertFront("\"badinput\": hello")},
      {"trailing-comma-object", base.substr(0, base.size() - 1) + ",}"},
      {"trailing-comma-array",
       [&] {
         // Shapes without an array get one (an unknown field would be fine).
         std::string q =
             base.find(']') == std::string::npos ? insertFront("\"badinput\":[1]") : base;
         q.insert(q.find(']'), ",");
         return q;
       }()},
      {"leading-comma", "{," + base.substr(1)},
      {"comment", "/* badinput */" + base},
      {"line-comment", "// badinput\n" + base},
      {"nan", insertFront("\"badinput\":NaN")},
      {"infinity", insertFront("\"badinput\":Infinity")},
      {"undefined", insertFront("\"badinput\":undefined")},
      {"hex-number", insertFront("\"badinput\":0x10")},
      {"leading-zero", insertFront("\"badinput\":0123")},
      {"plus-number", insertFront("\"badinput\":+1")},
      {"leading-dot-number", insertFront("\"badinput\":.5")},
      {"unterminated-string", "{\"id\":\"badinput"},
      {"raw-control-in-string", insertFront("\"badinput\":\"a\tb\"")},
      {"raw-newline-in-string", insertFront("\"badinput\":\"a\nb\"")},
      {"invalid-escape", insertFront("\"badinput\":\"\\x41\"")},
      {"short-unicode-escape", insertFront("\"badinput\":\"\\u12\"")},
      {"missing-colon", "{\"id\" \"badinput\"}"},
      {"missing-comma", "{\"id\":\"badinput\" \"ids\":[]}"},
      {"missing-value", "{\"id\":}"},
      {"only-open-brace", "{"},
      {"only-close-brace", "}"},
      {"only-open-bracket", "["},
      {"unbalanced-close", base + "}"},
      {"key-not-string", "{1:\"badinput\"}"},
      {"python-literals", insertFront("\"badinput\":None")},
      {"true-uppercase", insertFront("\"badinput\":True")},
  };
  for (const auto& [tag, body] : malformed) {
    add("json-syntax", n + "malformed:" + tag, bodyRequest(ep, body));
  }
  for (const auto& [tag, body] : std::vector<std::pair<std::string, std::string>>{
           {"empty", ""}, {"spaces", "   "}, {"crlf", "\r\n"}, {"tab", "\t"}}) {
    add("json-syntax", n + "empty:" + tag, bodyRequest(ep, body));
  }
  Request noBody;
  noBody.method = ep.method;
  noBody.target = target(ep);
  add("json-syntax", n + "empty:no-content-length", noBody);

  std::vector<std::pair<std::string, std::string>> topLevel = {
      {"array", "[]"},
      {"array-of-body", "[" + base + "]"},
      {"string", "\"badinput\""},
      {"number", "42"},
      {"zero", "0"},
      {"true", "true"},
      {"false", "false"},
      {"nested-string-body", "\"" +
                                 [&] {
                                   std::string q;
                                   appendQuoted(q, base);
                                   return q.substr(1, q.size() - 2);
                                 }() +
                                 "\""},
  };
  for (const auto& [tag, body] : topLevel)
    add("json-types", n + "top-level:" + tag, bodyRequest(ep, body));
  add("json-types", n + "top-level:null", bodyRequest(ep, "null"),
      s.nullRootRejected ? Expect{} : wanting(Want::Either));
  add("json-missing-null", n + "empty-object", bodyRequest(ep, "{}"),
      s.emptyObjectRejected ? Expect{} : wanting(Want::Either));

  // Duplicate keys: a key given twice, the copy before or after the valid
  // one. A parser that keeps either silently takes a request the client did
  // not unambiguously send; whichever it keeps, one of the two orders puts a
  // valid value there.
  auto dup = [&](const std::string& tag, const std::string& path, Json copy, bool copyFirst) {
    Json d = s.base(++uniq_);
    // No ports and no probe: a duplicate wrongly accepted books nothing
    // the later cases would trip over.
    for (const char* drop : {"ports", "readinessProbe", "spec.ports", "spec.readiness_probe"})
      d = without(d, drop);
    const std::string parent = parentOf(path);
    Json* host = parent.empty() ? &d : locate(d, parent, false);
    if (!host || host->kind != Json::Kind::Object) return;
    const std::string key = leafName(path);
    auto it = std::find_if(host->members.begin(), host->members.end(),
                           [&](const auto& kv) { return kv.first == key; });
    if (it == host->members.end()) return;
    if (copy.kind == Json::Kind::Raw && copy.text.empty())
      copy = it->second;  // the same value again
    host->members.insert(copyFirst ? it : it + 1, {key, std::move(copy)});
    add("json-dup-keys", n + "dup-key:" + path + "-" + tag, bodyRequest(ep, dump(d)));
  };
  const Json same = jraw("");
  for (const Field& f : s.fields) {
    if (f.path.find('[') != std::string::npos && f.text != Text::Cpu &&
        f.text != Text::ContainerName)
      continue;
    if (f.text == Text::SandboxId || f.text == Text::NodeId) {
      dup("same-value", f.path, same, false);
      dup("other-valid-value-after", f.path, jstr(freshId("badinput-dup-", uniq_)), false);
      dup("invalid-before", f.path, jstr("../x"), true);
      dup("invalid-after", f.path, jstr("../x"), false);
    } else if (f.text == Text::Cpu || f.text == Text::Ip || f.text == Text::ContainerName) {
      dup("invalid-before", f.path, jstr(f.text == Text::Ip ? "not-an-ip" : "-1"), true);
      dup("invalid-after", f.path, jstr(f.text == Text::Ip ? "not-an-ip" : "-1"), false);
    } else if (f.required && f.accepts == kObj) {
      dup("empty-after", f.path, jobj({}), false);
      dup("empty-before", f.path, jobj({}), true);
    } else if (f.accepts == kArr) {
      dup("empty-after", f.path, jarr({}), false);
      dup("wrong-type-before", f.path, jstr("badinput"), true);
    }
  }
}

// ---- wrong types, missing fields, nulls -------------------------------------------------

void Table::typeCases(const Endpoint& ep, const Shape& s) {
  const std::string n = epName(ep) + " body=";
  struct Swap {
    unsigned kind;
    const char* tag;
    Json value;
  };
  const std::vector<Swap> swaps = {
      {kStr, "string", jstr("badinput")}, {kInt, "integer", jnum("7")},
      {kFrac, "fraction", jnum("1.5")},   {kBool, "bool", jbool(true)},
      {kObj, "object", jobj({})},         {kArr, "array", jarr({})},
  };
  for (const Field& f : s.fields) {
    for (const Swap& w : swaps) {
      if (f.accepts & w.kind) continue;
      Json v = w.value;
      if (f.accepts == kBool && w.kind == kStr) v = jstr("true");  // the closest wrong spelling
      if (w.kind == kObj && f.accepts == kArr) v = jobj({{"0", jstr("x")}});
      Expect e;
      e.messageHas = leafName(f.path);
      add("json-types", n + "wrong-type:" + f.path + "=" + w.tag,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, v))), e);
    }
    if (f.accepts == kArr) {
      // An array of the wrong element type.
      Json v = jarr({jnum("1"), jbool(false)});
      add("json-types", n + "wrong-type:" + f.path + "=array-of-mixed",
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, v))),
          rejectWith(leafName(f.path) + "[0]"));
    }
    if (!f.required) continue;
    if (f.path.back() != ']') {
      add("json-missing-null", n + "missing:" + f.path,
          bodyRequest(ep, dump(without(s.base(++uniq_), f.path))));
    }
    add("json-missing-null", n + "null:" + f.path,
        bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jnull()))));
  }
  // Empty values of required strings and arrays.
  for (const Field& f : s.fields) {
    if (!f.required) continue;
    if (f.accepts & kStr) {
      add("json-missing-null", n + "empty-string:" + f.path,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jstr("")))),
          f.text == Text::FreeForm ? wanting(Want::Either) : Expect{});
    }
    if (f.accepts == kArr) {
      add("json-missing-null", n + "empty-array:" + f.path,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jarr({})))));
    }
    if (f.accepts == kObj && f.path.back() != ']') {
      add("json-missing-null", n + "empty-object:" + f.path,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jobj({})))));
    }
  }
}

// ---- sizes: huge strings, huge arrays, deep nesting, huge bodies ------------------------

std::string nested(size_t depth, bool balanced, char open = '[', char close = ']') {
  std::string s(depth, open);
  if (balanced) s.append(depth, close);
  return s;
}

void Table::sizeCases(const Endpoint& ep, const Shape& s) {
  const std::string n = epName(ep) + " body=";
  for (const Field& f : s.fields) {
    if (!(f.accepts & kStr) || f.text == Text::FreeForm) continue;
    std::string big(f.hugeBytes, 'a');
    if (f.text == Text::Env) big = "A=" + big;
    if (f.text == Text::WorkDir || f.text == Text::ProbePath) big = "/" + big;
    add("json-size", n + "huge-string:" + f.path + "=" + std::to_string(f.hugeBytes / 1024) + "KiB",
        bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jstr(big)))));
  }
  for (const ArrayLimit& a : s.arrays) {
    for (size_t count : {size_t{10000}, size_t{10001}}) {
      Json arr = jarr(std::vector<Json>(count, a.compactItem));
      add("json-size", n + "huge-array:" + a.path + "=" + std::to_string(count),
          bodyRequest(ep, dump(with(s.base(++uniq_), a.path, arr))));
    }
  }
  const std::string base = dump(s.base(++uniq_));
  const std::string firstKey = s.base(0).members.front().first;
  add("json-size", n + "deep-nesting:root-10000-open-brackets",
      bodyRequest(ep, nested(10000, false)));
  add("json-size", n + "deep-nesting:root-10000-balanced-brackets",
      bodyRequest(ep, nested(10000, true)));
  {
    std::string objs;
    for (int i = 0; i < 10000; ++i) objs += "{\"a\":";
    objs += "1";
    objs.append(10000, '}');
    add("json-size", n + "deep-nesting:root-10000-objects", bodyRequest(ep, objs));
  }
  add("json-size", n + "deep-nesting:" + firstKey + "-10000-brackets",
      bodyRequest(ep, "{\"" + firstKey + "\":" + nested(10000, true) + "," + base.substr(1)));
  add("json-size", n + "deep-nesting:unknown-field-65-brackets",
      bodyRequest(ep, "{\"badinput\":" + nested(65, true, '[', ']') + "," + base.substr(1)));
  {
    std::string pad =
        "{\"badinput\":\"" + std::string(2 * 1024 * 1024, 'a') + "\"," + base.substr(1);
    Expect e = reject({413}, true);
    add("json-size", n + "2MiB-body", bodyRequest(ep, pad), e);
  }
}

// ---- encodings: invalid UTF-8, NUL escapes, lone surrogates ----------------------------

void Table::encodingCases(const Endpoint& ep, const Shape& s) {
  const std::string n = epName(ep) + " body=";
  const std::vector<std::pair<std::string, std::string>> badBytes = {
      {"C3-28", "\xC3\x28"},
      {"FF", "\xFF"},
      {"overlong-C0-AF", "\xC0\xAF"},
      {"overlong-E0-80-AF", "\xE0\x80\xAF"},
      {"surrogate-ED-A0-80", "\xED\xA0\x80"},
      {"truncated-E2-82", "\xE2\x82"},
      {"five-byte-F8", "\xF8\x88\x80\x80\x80"},
      {"above-10FFFF-F4-90", "\xF4\x90\x80\x80"},
      {"lone-continuation-80", "\x80"},
  };
  for (const Field& f : s.fields) {
    if (!(f.accepts & kStr)) continue;
    for (const auto& [tag, bytes] : badBytes) {
      add("json-encoding", n + "invalid-utf8:" + f.path + "=" + tag,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jstr("bad" + bytes + "input")))));
    }
    for (const auto& [tag, esc] :
         std::vector<std::pair<std::string, std::string>>{{"ud800", "\\ud800"},
                                                          {"udfff", "\\udfff"},
                                                          {"ud800-then-A", "\\ud800\\u0041"},
                                                          {"low-then-high", "\\udc00\\ud800"}}) {
      add("json-encoding", n + "lone-surrogate:" + f.path + "=" + tag,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jraw("\"bad" + esc + "input\"")))));
    }
    if (f.text != Text::FreeForm) {
      std::string v = "bad";
      v.push_back('\0');
      v += "input";
      if (f.text == Text::WorkDir || f.text == Text::ProbePath) v = "/" + v;
      if (f.text == Text::Env) v = "A=" + v;
      add("json-encoding", n + "nul-escape:" + f.path,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jstr(v)))));
    }
  }
  for (const std::string& host : s.keyHosts) {
    const std::string where = host.empty() ? "root" : host;
    for (const auto& [tag, bytes] : badBytes) {
      Json b = s.base(++uniq_);
      Json* h = host.empty() ? &b : locate(b, host, false);
      if (!h) continue;
      h->members.insert(h->members.begin(), {"bad" + bytes + "key", jnum("1")});
      add("json-encoding", n + "invalid-utf8-key:" + where + "=" + tag, bodyRequest(ep, dump(b)));
    }
    Json b = s.base(++uniq_);
    Json* h = host.empty() ? &b : locate(b, host, false);
    if (!h) continue;
    std::string d = dump(b);
    // The key as a raw escape (the tree would escape the backslash).
    h->members.insert(h->members.begin(), {"@@KEY@@", jnum("1")});
    d = dump(b);
    d.replace(d.find("\"@@KEY@@\""), 9, "\"bad\\ud800key\"");
    add("json-encoding", n + "lone-surrogate-key:" + where, bodyRequest(ep, d));
  }
}

// ---- ids, names, images, env, probes, addresses -----------------------------------------

std::vector<std::pair<std::string, std::string>> badNames(size_t maxLen) {
  std::string nul = "a";
  nul.push_back('\0');
  nul += "b";
  return {
      {"dotdot", ".."},
      {"dot", "."},
      {"dotdot-slash", "../x"},
      {"dotdot-slash-etc", "../../etc/passwd"},
      {"slash", "a/b"},
      {"leading-slash", "/etc"},
      {"backslash", "a\\b"},
      {"dotdot-backslash", "..\\x"},
      {"space", "a b"},
      {"leading-space", " a"},
      {"trailing-space", "a "},
      {"leading-dash", "-a"},
      {"leading-dot", ".a"},
      {"leading-underscore", "_a"},
      {"unicode", "\xC3\xA9t\xC3\xA9"},
      {"emoji", "\xF0\x9F\x98\x80"},
      {"percent-encoded-slash", "a%2fb"},
      {"percent-encoded-dots", "%2e%2e"},
      {"nul", nul},
      {"newline", "a\nb"},
      {"colon", "a:b"},
      {"at", "a@b"},
      {"star", "*"},
      {"dollar", "$HOME"},
      {"semicolon", "a;b"},
      {"quote", "a\"b"},
      {"too-long-" + std::to_string(maxLen + 1), std::string(maxLen + 1, 'a')},
      {"10000-chars", std::string(10000, 'a')},
  };
}

void Table::textCases(const Endpoint& ep, const Shape& s) {
  const std::string n = epName(ep) + " body=";
  for (const Field& f : s.fields) {
    std::vector<std::pair<std::string, std::string>> values;
    std::string family = "ids-names";
    switch (f.text) {
      case Text::SandboxId:
        values = badNames(128);
        values.emplace_back("escaped-dots", "..");  // sent as \u002e\u002e below
        break;
      case Text::ContainerName:
        values = badNames(64);
        break;
      case Text::NodeId:
        values = badNames(63);
        break;
      case Text::Image:
        values = {{"uppercase-repo", "BusyBox:latest"},
                  {"empty-tag", "busybox:"},
                  {"only-tag", ":latest"},
                  {"bad-digest", "busybox@sha256:xyz"},
                  {"sha1-digest", "busybox@sha1:0123456789abcdef0123456789abcdef01234567"},
                  {"space", "busy box"},
                  {"url", "http://127.0.0.1/busybox"},
                  {"leading-slash", "/busybox"},
                  {"double-slash", "library//busybox"},
                  {"leading-dash", "-busybox"},
                  {"tag-too-long", "busybox:" + std::string(200, 'a')},
                  {"too-long", std::string(600, 'a')},
                  {"bad-registry-port", "localhost:99x/busybox"},
                  {"trailing-colon-registry", "registry.:5000/busybox"}};
        break;
      case Text::Env:
        values = {{"no-equals", "NOEQUALS"}, {"empty-key", "=value"}, {"empty", ""}};
        break;
      case Text::WorkDir:
        values = {{"relative", "relative/dir"}, {"dot", "."}};
        break;
      case Text::PortProtocol:
        values = {
            {"sctp", "sctp"}, {"uppercase", "TCP"}, {"trailing-space", "udp "}, {"any", "any"}};
        break;
      case Text::ProbeProtocol:
        values = {{"udp", "udp"}, {"uppercase", "HTTP"}, {"grpc", "grpc"}, {"https", "https"}};
        break;
      case Text::ProbePath:
        values = {{"no-slash", "healthz"},
                  {"space", "/a b"},
                  {"crlf-injection", "/a\r\nX-Injected: 1"},
                  {"tab", "/a\tb"},
                  {"too-long", "/" + std::string(3000, 'a')},
                  {"absolute-url", "http://169.254.169.254/"}};
        break;
      case Text::Ip:
        values = {{"not-an-ip", "not-an-ip"},
                  {"hostname", "localhost"},
                  {"link-local", "169.254.169.254"},
                  {"unspecified", "0.0.0.0"},
                  {"zero-net", "0.1.2.3"},
                  {"broadcast", "255.255.255.255"},
                  {"multicast", "224.0.0.1"},
                  {"with-port", "127.0.0.1:8080"},
                  {"short", "1.2.3"},
                  {"octet-256", "256.1.1.1"},
                  {"leading-space", " 127.0.0.1"},
                  {"nul-suffix", std::string("127.0.0.1\0junk", 14)},
                  {"v6-unspecified", "::"},
                  {"v6-link-local", "fe80::1"},
                  {"v6-multicast", "ff02::1"},
                  {"v6-brackets", "[::1]"},
                  {"v4-mapped-link-local", "::ffff:169.254.169.254"},
                  {"url", "http://127.0.0.1"},
                  {"too-long", std::string(300, '1')}};
        break;
      case Text::External:
        values = {{"too-long-254", std::string(254, 'a')}, {"crlf", "a\r\nb"}};
        break;
      default:
        continue;
    }
    for (const auto& [tag, v] : values) {
      Json b = with(s.base(++uniq_), f.path, jstr(v));
      std::string body = dump(b);
      if (tag == "escaped-dots") {
        size_t at = body.find("\"..\"");
        body.replace(at, 4, "\"\\u002e\\u002e\"");
      }
      add(family, n + "bad-" + leafName(f.path) + ":" + f.path + "=" + tag, bodyRequest(ep, body));
    }
  }
}

// ---- numbers and quantities --------------------------------------------------------------

struct NumberLiteral {
  std::string tag;
  std::string text;
  bool integer;  // JSON integer syntax that fits int64
  long double value;
};

const std::vector<NumberLiteral>& numberLiterals() {
  static const std::vector<NumberLiteral> v = {
      {"-1", "-1", true, -1},
      {"0", "0", true, 0},
      {"minus-0", "-0", true, 0},
      {"1023", "1023", true, 1023},
      {"3601", "3601", true, 3601},
      {"65536", "65536", true, 65536},
      {"70000", "70000", true, 70000},
      {"31536001", "31536001", true, 31536001},
      {"2147483648", "2147483648", true, 2147483648.0L},
      {"-2147483649", "-2147483649", true, -2147483649.0L},
      {"int64-max", "9223372036854775807", true, 9223372036854775807.0L},
      {"int64-max+1", "9223372036854775808", false, 0},
      {"int64-min", "-9223372036854775808", true, -9223372036854775807.0L},
      {"int64-min-1", "-9223372036854775809", false, 0},
      {"uint64-max+1", "18446744073709551616", false, 0},
      {"1e309", "1e309", false, 0},
      {"-1e309", "-1e309", false, 0},
      {"fraction", "1.5", false, 0},
      {"integral-float", "8080.0", false, 0},
      {"exponent", "1e3", false, 0},
      {"exponent-upper", "1E2", false, 0},
      {"tiny", "1e-300", false, 0},
  };
  return v;
}

void Table::numberCases(const Endpoint& ep, const Shape& s) {
  const std::string n = epName(ep) + " body=";
  for (const Field& f : s.fields) {
    if (f.accepts != kInt) continue;
    for (const NumberLiteral& lit : numberLiterals()) {
      if (lit.integer && lit.value >= f.min && lit.value <= f.max) continue;  // a valid value
      add("numbers", n + "number:" + f.path + "=" + lit.tag,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, jnum(lit.text)))));
    }
  }
  // Quantities (SPEC §1: cpu "250m"/"0.5"/"2", memory "128Mi"/"1G").
  const std::vector<std::pair<std::string, Json>> common = {
      {"1.5.5", jstr("1.5.5")},
      {"-1", jstr("-1")},
      {"1Zi", jstr("1Zi")},
      {"leading-space", jstr(" 1")},
      {"trailing-space", jstr("1 ")},
      {"NaN", jstr("NaN")},
      {"Infinity", jstr("Infinity")},
      {"hex", jstr("0x10")},
      {"plus", jstr("+1")},
      {"exponent", jstr("1e3")},
      {"zero", jstr("0")},
      {"minus-zero", jstr("-0")},
      {"comma", jstr("1,5")},
      {"word", jstr("lots")},
      {"20-digits", jstr("99999999999999999999")},
      {"400-digits", jstr("1" + std::string(400, '0'))},
      {"number-minus-1", jnum("-1")},
      {"number-zero", jnum("0")},
      {"number-1e308", jnum("1e308")},
      {"number-1e-9", jnum("1e-9")},
      {"number-1e309", jnum("1e309")},
  };
  for (const Field& f : s.fields) {
    if (f.text != Text::Cpu && f.text != Text::Memory && f.text != Text::Ephemeral) continue;
    std::vector<std::pair<std::string, Json>> values = common;
    if (f.text == Text::Cpu) {
      values.insert(values.end(), {{"finer-than-1m", jstr("0.0001")},
                                   {"zero-milli", jstr("0m")},
                                   {"memory-suffix", jstr("1Ki")},
                                   {"double-m", jstr("1mm")},
                                   {"only-m", jstr("m")},
                                   {"number-fraction-finer", jnum("0.0001")}});
      if (f.required) values.emplace_back("empty", jstr(""));
      if (s.sbxletAdmission) {
        values.insert(values.end(), {{"admission-100000-cores", jstr("100000")},
                                     {"admission-number-100000", jnum("100000")},
                                     {"admission-int64-max-milli", jstr("9223372036854775807m")}});
      }
    } else {
      values.insert(values.end(), {{"lowercase-suffix", jstr("128mi")},
                                   {"half-byte", jstr("1.5")},
                                   {"only-suffix", jstr("Mi")},
                                   {"bytes-suffix", jstr("1MiB")},
                                   {"suffix-then-digits", jstr("1Ki1")},
                                   {"overflow-Ei", jstr("9Ei")},
                                   {"number-half", jnum("0.5")}});
      if (f.required) values.emplace_back("empty", jstr(""));
      if (s.sbxletAdmission && f.text == Text::Memory)
        values.emplace_back("admission-1Ei", jstr("1Ei"));
    }
    for (const auto& [tag, v] : values) {
      add("quantities", n + "quantity:" + f.path + "=" + tag,
          bodyRequest(ep, dump(with(s.base(++uniq_), f.path, v))));
    }
  }
}

// ---- endpoint-specific -------------------------------------------------------------------

void Table::specificCases(const Endpoint& ep, const Shape& s) {
  const std::string n = epName(ep) + " body=";
  const std::string fam = "endpoint-specific";
  auto base = [&] { return s.base(++uniq_); };
  if (&s == &create_ || &s == &orchCreate_) {
    const std::string p = &s == &orchCreate_ ? "spec." : "";
    const bool orch = &s == &orchCreate_;
    const SpecNames names{orch};
    // Just over each limit.
    Json c17 = jarr({});
    for (int i = 0; i < 17; ++i) c17.items.push_back(containerJson(names, "c" + std::to_string(i)));
    add(fam, n + "too-many-containers-17",
        bodyRequest(ep, dump(with(base(), p + "containers", c17))),
        rejectWith("too many containers"));
    Json p65 = jarr({});
    for (int i = 0; i < 65; ++i) {
      p65.items.push_back(orch ? jobj({{names.containerPort(), jnum(std::to_string(1000 + i))}})
                               : jobj({{"hostPort", jnum(std::to_string(43000 + i))},
                                       {"containerPort", jnum(std::to_string(1000 + i))}}));
    }
    add(fam, n + "too-many-ports-65", bodyRequest(ep, dump(with(base(), p + "ports", p65))),
        rejectWith("too many ports"));
    add(fam, n + "too-many-args-1025",
        bodyRequest(ep, dump(with(base(), p + "containers[0].args",
                                  jarr(std::vector<Json>(1025, jstr("x")))))),
        rejectWith("too many args"));
    add(fam, n + "too-many-env-1025",
        bodyRequest(ep, dump(with(base(), p + "containers[0].env",
                                  jarr(std::vector<Json>(1025, jstr("A=B")))))),
        rejectWith("too many env"));
    Json two = jarr({containerJson(names, "twin"), containerJson(names, "twin")});
    add(fam, n + "duplicate-container-names",
        bodyRequest(ep, dump(with(base(), p + "containers", two))),
        rejectWith("duplicate container name"));
    if (!orch) {
      Json ports = jarr({jobj({{"hostPort", jnum("43100")}, {"containerPort", jnum("80")}}),
                         jobj({{"hostPort", jnum("43100")}, {"containerPort", jnum("81")}})});
      add(fam, n + "duplicate-host-ports", bodyRequest(ep, dump(with(base(), "ports", ports))),
          rejectWith("duplicate host port"));
      Json same = jarr({jobj({{"hostPort", jnum("43101")},
                              {"containerPort", jnum("80")},
                              {"protocol", jstr("udp")}}),
                        jobj({{"hostPort", jnum("43101")},
                              {"containerPort", jnum("81")},
                              {"protocol", jstr("udp")}})});
      add(fam, n + "duplicate-host-ports-udp", bodyRequest(ep, dump(with(base(), "ports", same))),
          rejectWith("duplicate host port"));
      if (t_.existingHostPort > 0) {
        add(fam, n + "host-port-in-use",
            bodyRequest(ep, dump(with(base(), "ports[0].hostPort",
                                      jnum(std::to_string(t_.existingHostPort))))),
            rejectWith("host port already in use"));
      }
      add(fam, n + "sum-of-cpu-overflows",
          bodyRequest(
              ep, dump(with(with(with(base(), "containers",
                                      jarr({containerJson(names, "a"), containerJson(names, "b")})),
                                 "containers[0].resource.cpu", jstr("9223372036854775m")),
                            "containers[1].resource.cpu", jstr("9223372036854775m")))));
      if (t_.haveExisting) {
        add(fam, n + "existing-id", bodyRequest(ep, dump(with(base(), "id", jstr(t_.existingId)))),
            rejectWith("already exists", {400, 409}));
      }
    } else {
      for (const auto& [tag, v] : std::vector<std::pair<std::string, std::string>>{
               {"12345", "12345"}, {"-1", "-1"}, {"1023", "1023"}, {"65536", "65536"}}) {
        add(fam, n + "host-port-set-by-client:" + tag,
            bodyRequest(ep, dump(with(base(), "spec.ports[0].host_port", jnum(v)))));
      }
      add(fam, n + "host-port-camel-set-by-client",
          bodyRequest(ep, dump(with(base(), "spec.ports[0].hostPort", jnum("12345")))));
      if (t_.haveExisting) {
        add(fam, n + "existing-id", bodyRequest(ep, dump(with(base(), "id", jstr(t_.existingId)))),
            reject({409}));
      }
    }
  }
  if (&s == &statuses_) {
    Json ids201 = jarr({});
    for (int i = 0; i < 201; ++i) ids201.items.push_back(jstr("ghost-" + std::to_string(i)));
    add(fam, n + "too-many-ids-201", bodyRequest(ep, dump(with(base(), "ids", ids201))),
        rejectWith("too many ids"));
    add(fam, n + "ids-under-alias-sandbox_ids-wrong-type",
        bodyRequest(ep, dump(jobj({{"sandbox_ids", jstr("badinput")}}))));
    add(fam, n + "ids-null-element-among-valid",
        bodyRequest(ep, dump(jobj({{"ids", jarr({jstr("ghost"), jnull()})}}))));
    // Unknown or ill-formed ids are reported missing: SPEC serves them.
    add(fam, n + "ids-ill-formed-reported-missing",
        bodyRequest(
            ep,
            dump(jobj({{"ids", jarr({jstr("../../etc"), jstr(std::string(1, '\0')), jstr("")})}}))),
        wanting(Want::Either));
  }
  if (&s == &node_) {
    add(fam, n + "id-via-name-alias-invalid",
        bodyRequest(ep, dump(with(without(base(), "id"), "name", jstr("../x")))));
  }
}

// ---- paths: ids and names in the URL -----------------------------------------------------

struct PathVariant {
  std::string tag;
  std::string raw;  // as it goes on the wire
  bool httpLayer;   // the parser refuses it (and closes)
  int status;       // httpLayer: its status
};

std::vector<PathVariant> pathVariants(size_t maxLen) {
  std::string rawNul = "a";
  rawNul.push_back('\0');
  rawNul += "b";
  return {
      {"dotdot", "..", false, 0},
      {"dot", ".", false, 0},
      {"encoded-dotdot", "%2e%2e", false, 0},
      {"encoded-dotdot-upper", "%2E%2E", false, 0},
      {"dotdot-encoded-slash-etc", "..%2f..%2fetc", false, 0},
      {"dotdot-encoded-slash-passwd", "..%2F..%2F..%2Fetc%2Fpasswd", false, 0},
      {"encoded-slash", "%2f", false, 0},
      {"encoded-slash-upper", "a%2Fb", false, 0},
      {"encoded-nul", "%00", false, 0},
      {"encoded-nul-inside", "a%00b", false, 0},
      {"backslash", "a\\b", false, 0},
      {"encoded-backslash", "a%5cb", false, 0},
      {"encoded-dotdot-backslash", "..%5c..%5cetc", false, 0},
      {"encoded-space", "a%20b", false, 0},
      {"plus", "a+b", false, 0},
      {"encoded-crlf", "a%0d%0ab", false, 0},
      {"unicode-encoded", "%C3%A9t%C3%A9", false, 0},
      {"unicode-raw", "\xC3\xA9t\xC3\xA9", false, 0},
      {"invalid-utf8-encoded", "%C3%28", false, 0},
      {"encoded-FF", "%FF", false, 0},
      {"uppercase", "BADINPUT-UPPER", false, 0},
      {"leading-dash", "-a", false, 0},
      {"leading-dot", ".a", false, 0},
      {"leading-underscore", "_a", false, 0},
      {"colon", "a:b", false, 0},
      {"star", "*", false, 0},
      {"semicolon", "a;b", false, 0},
      {"tilde", "~a", false, 0},
      {"too-long-" + std::to_string(maxLen + 1), std::string(maxLen + 1, 'a'), false, 0},
      {"10000-chars", std::string(10000, 'a'), false, 0},
      {"bad-escape-percent", "%", false, 0},
      {"bad-escape-zz", "%zz", false, 0},
      {"bad-escape-short", "a%2", false, 0},
      {"raw-nul", rawNul, true, 400},
      {"raw-space", "a b", true, 400},
      {"raw-del", "a\x7f", true, 400},
      {"20000-chars", std::string(20000, 'a'), true, 431},
  };
}

void Table::pathCases(const Endpoint& ep) {
  for (const std::string& p : paramsOf(ep.pattern)) {
    const Param kind = paramKind(t_.opt.api, p);
    const size_t maxLen = kind == Param::SandboxId ? 128 : kind == Param::NodeName ? 63 : 64;
    const std::string valid = paramValue(t_, kind);
    auto request = [&](const std::string& target) {
      Request r;
      r.method = ep.method;
      r.target = target;
      if (ep.shape) r.body = validBody(ep);
      return r;
    };
    // SPEC §1: a node's delete is idempotent, 200 for an unknown id (also
    // through the proxy). For an id that cannot be one (the id grammar) we
    // want 400, as the proxy answers; a well-formed unknown id may be 200.
    const bool idempotentDelete = ep.method == "DELETE" && kind == Param::SandboxId &&
                                  (t_.opt.api == Api::Sbxlet || ep.proxy);
    auto expectFor = [&](const std::string& raw) {
      Expect e;
      auto decoded = sbx::http::percentDecode(raw);
      if (idempotentDelete && decoded && sbx::node::validateSandboxId(*decoded).ok()) {
        e.want = Want::SpecAllows2xx;
      }
      return e;
    };
    for (const PathVariant& v : pathVariants(maxLen)) {
      Request r = request(fill(t_, ep.pattern, p, v.raw));
      Expect e = expectFor(v.raw);
      if (v.httpLayer) {
        e = reject({v.status}, true);
        r.followUp = false;
      }
      add("paths", epName(ep) + " " + p + "=" + v.tag, r, e);
    }
    // Structure: empty segment, dot segments around a valid value, doubled
    // and trailing slashes. None of these may reach the valid object.
    const std::vector<std::pair<std::string, std::string>> structural = {
        {"empty-segment", ""},
        {"dot-segment-before", "x/../" + valid},
        {"dot-segment-after", valid + "/.."},
        {"self-segment-before", "./" + valid},
        {"encoded-dot-segment-before", "x%2f..%2f" + valid},
        {"trailing-slash", valid + "/"},
        {"leading-double-slash", "/" + valid},
        {"valid-with-encoded-nul-suffix", valid + "%00"},
        {"valid-with-encoded-slash-suffix", valid + "%2f"},
        {"valid-with-trailing-dot", valid + "."},
        {"valid-with-query-like-semicolon", valid + ";x=1"},
    };
    for (const auto& [tag, raw] : structural) {
      Request r = request(fill(t_, ep.pattern, p, raw));
      Expect e = raw.find('/') == std::string::npos ? expectFor(raw) : Expect{};
      add("paths", epName(ep) + " " + p + "=" + tag, r, e);
    }
  }
}

// ---- query strings -------------------------------------------------------------------------

void Table::queryCases(const Endpoint& ep) {
  const std::string base = target(ep);
  auto req = [&](const std::string& q) {
    Request r;
    r.method = ep.method;
    r.target = base + "?" + q;
    if (ep.shape) r.body = validBody(ep);
    return r;
  };
  // Malformed escapes: refused before routing, on every endpoint (a DELETE
  // among them must delete nothing).
  for (const auto& [tag, q] :
       std::vector<std::pair<std::string, std::string>>{{"bad-escape-key", "%zz=1"},
                                                        {"bad-escape-value", "cursor=%"},
                                                        {"bad-escape-short", "limit=%2"}}) {
    add("query", epName(ep) + " query=" + tag, req(q), rejectWith("query", {400}));
  }
  if (ep.method != "GET") return;
  add("query", epName(ep) + " query=unknown-parameter", req("badinput=1"), wanting(Want::Either));
  add("query", epName(ep) + " query=only-ampersands", req("&&&"), wanting(Want::Either));
  add("query", epName(ep) + " query=empty-key", req("=x"), wanting(Want::Either));
  if (ep.list) {
    // SPEC §1: limit non-numeric or < 1 gives the default; clamped to the
    // maximum; cursor is any id. All served.
    const std::vector<std::pair<std::string, std::string>> lenient = {
        {"limit=-1", "limit=-1"},
        {"limit=0", "limit=0"},
        {"limit=1e9", "limit=1e9"},
        {"limit=1000000000", "limit=1000000000"},
        {"limit=abc", "limit=abc"},
        {"limit=empty", "limit="},
        {"limit=no-value", "limit"},
        {"limit=1.5", "limit=1.5"},
        {"limit=20-digits", "limit=99999999999999999999"},
        {"limit=int64-min-1", "limit=-9223372036854775809"},
        {"limit=encoded-nul", "limit=%00"},
        {"limit=plus-sign", "limit=+5"},
        {"limit=leading-space", "limit=%205"},
        {"limit=repeated", "limit=1&limit=abc"},
        {"cursor=encoded-nul", "cursor=%00"},
        {"cursor=dotdot-slash", "cursor=..%2F..%2Fetc"},
        {"cursor=10000-chars", "cursor=" + std::string(10000, 'z')},
        {"cursor=encoded-FF", "cursor=%FF"},
        {"cursor=empty", "cursor="},
        {"cursor=repeated", "cursor=a&cursor=b"},
        {"cursor=past-the-end", "cursor=~~~~"},
    };
    for (const auto& [tag, q] : lenient)
      add("query", epName(ep) + " query=" + tag, req(q), wanting(Want::SpecAllows2xx));
  }
  if (ep.logs) {
    // SPEC names no query parameter for logs: whatever is sent, no 5xx.
    for (const auto& [tag, q] :
         std::vector<std::pair<std::string, std::string>>{{"tail=-1", "tail=-1"},
                                                          {"tail=abc", "tail=abc"},
                                                          {"since=garbage", "since=yesterday-ish"},
                                                          {"since=-1", "since=-1"},
                                                          {"follow=maybe", "follow=maybe"},
                                                          {"limitBytes=-1", "limitBytes=-1"},
                                                          {"timestamps=2", "timestamps=2"}}) {
      add("query", epName(ep) + " query=" + tag, req(q), wanting(Want::Either));
    }
  }
}

// ---- methods and unknown paths -------------------------------------------------------------

// Whether a concrete path of `literal` (a pattern without parameters where
// they differ) also matches `pattern`: a {param} matches any segment.
bool patternsOverlap(const std::string& pattern, const std::string& literal) {
  auto split = [](const std::string& p) {
    std::vector<std::string> out;
    size_t i = 1;
    for (;;) {
      size_t slash = p.find('/', i);
      out.push_back(p.substr(i, slash == std::string::npos ? std::string::npos : slash - i));
      if (slash == std::string::npos) return out;
      i = slash + 1;
    }
  };
  auto a = split(pattern), b = split(literal);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i] || (!a[i].empty() && a[i].front() == '{')) continue;
    return false;
  }
  return true;
}

void Table::methodCases(const std::vector<Endpoint>& eps) {
  std::map<std::string, std::vector<const Endpoint*>> byPattern;
  std::vector<std::string> order;
  for (const Endpoint& ep : eps) {
    if (!byPattern.count(ep.pattern)) order.push_back(ep.pattern);
    byPattern[ep.pattern].push_back(&ep);
  }
  for (const std::string& pattern : order) {
    std::set<std::string> defined;
    const Shape* shape = nullptr;
    for (const Endpoint* ep : byPattern[pattern]) {
      defined.insert(ep->method);
      if (ep->shape) shape = ep->shape;
    }
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}) {
      if (defined.count(m)) continue;
      // "/v1/sandboxes/statuses" is also "/v1/sandboxes/{id}" with id
      // "statuses": GET and DELETE there are that route's, not a 405.
      bool otherRoute = false;
      for (const Endpoint& ep : eps)
        otherRoute = otherRoute || (ep.method == m && ep.pattern != pattern &&
                                    patternsOverlap(ep.pattern, pattern));
      if (otherRoute) continue;
      Request r;
      r.method = m;
      r.target = fill(t_, pattern);
      if (std::string_view(m) == "POST" || std::string_view(m) == "PUT" ||
          std::string_view(m) == "PATCH") {
        r.body = shape ? dump(shape->base(++uniq_)) : "{}";
      }
      add("methods", std::string(m) + " " + pattern + " method-not-allowed", r, reject({405}));
    }
  }
}

void Table::unknownPathCases() {
  std::vector<std::string> paths;
  const std::string id = t_.existingId;
  if (t_.opt.api == Api::Sbxlet) {
    paths = {"/",
             "/v1",
             "/v1/",
             "/v2/sandboxes",
             "/v1/sandbox",
             "/V1/sandboxes",
             "/v1/SANDBOXES",
             "/v1/sandboxes/" + id + "/bogus",
             "/v1/sandboxes/" + id + "/containers",
             "/v1/sandboxes/" + id + "/containers/" + t_.containerName,
             "/v1/sandboxes/" + id + "/containers/" + t_.containerName + "/logs/extra",
             "/v1/sandboxes/" + id + "/logs/extra",
             "/v1/node",
             "/v1/node/status/",
             "/healthz/",
             "/v1//sandboxes",
             "//v1/sandboxes",
             "/v1/sandboxes/statuses/x",
             "/v1/reconcile/",
             "/%76%31/sandboxes",
             "/v1/sandboxes%2F" + id,
             "/v1/sandboxes/./" + id,
             "/v1/./sandboxes",
             "/v1/../v1/sandboxes",
             "*",
             "/api/v1/nodes",
             "/healthz%00",
             "/healthz;x"};
  } else {
    const std::string node = t_.opt.node;
    paths = {"/",
             "/api",
             "/api/v1",
             "/api/v2/nodes",
             "/api/v1/node",
             "/API/v1/nodes",
             "/api/v1/NODES",
             "/api/v1/nodes/" + node + "/bogus",
             "/api/v1/nodes/" + node + "/heartbeat/x",
             "/api/v1/nodes/" + node + "/sandboxes/" + id + "/bogus",
             "/api/v1/nodes/" + node + "/sandboxes/" + id + "/containers",
             "/api/v1/sandboxes/" + id + "/logs",
             "/api/v1/sandboxes/" + id + "/containers",
             "/v1/sandboxes",
             "/v1/node/status",
             "/api/v1/loop/",
             "/%61pi/v1/nodes",
             "/api/v1//nodes",
             "/api/v1/nodes%2F" + node,
             "/api/v1/./nodes",
             "/api/v1/../v1/nodes",
             "*",
             "/healthz/",
             "/api/v1/nodes/" + node + "/sandboxes/" + id + "/logs/extra"};
  }
  for (const std::string& p : paths) {
    for (const char* m : {"GET", "POST"}) {
      Request r;
      r.method = m;
      r.target = p;
      if (std::string_view(m) == "POST") r.body = "{}";
      add("paths", std::string(m) + " " + printable(p, 60) + " unknown-path", r,
          reject({404, 400}));
    }
  }
}

// ---- content types -------------------------------------------------------------------------

void Table::contentTypeCases(const Endpoint& ep) {
  // The daemons do not look at Content-Type (any is taken as JSON); these
  // send bodies that are not JSON under other types, which must still be
  // refused as bad JSON, never parsed as a form.
  const std::string n = epName(ep) + " content-type=";
  struct V {
    std::string tag, type, body;
  };
  const std::vector<V> vs = {
      {"text/plain", "text/plain", "not json at all"},
      {"form-urlencoded", "application/x-www-form-urlencoded", "id=badinput&containers=1&ids=x"},
      {"multipart", "multipart/form-data; boundary=b",
       "--b\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\nbadinput\r\n--b--\r\n"},
      {"latin1-charset", "application/json; charset=iso-8859-1", "{\"id\":\"caf\xE9\"}"},
      {"utf16", "application/json; charset=utf-16",
       std::string("{\0\"\0i\0d\0\"\0:\0\"\0x\0\"\0}\0", 20)},
      {"xml", "application/xml", "<sandbox id=\"badinput\"/>"},
      {"none", "", "{'id': 1}"},
      {"json-with-bad-body", "application/json", "{'id': 1}"},
      {"octet-stream", "application/octet-stream", std::string("\x00\x01\x02\xFF", 4)},
  };
  for (const V& v : vs) {
    Request r = bodyRequest(ep, v.body);
    r.contentType = v.type;
    add("content-type", n + v.tag, r);
  }
}

// ---- auth ----------------------------------------------------------------------------------

void Table::authCases(const Endpoint& ep) {
  const std::string& s = t_.opt.secret;
  std::string upper = s;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](char c) { return static_cast<char>(std::toupper(c)); });
  std::vector<std::pair<std::string, std::optional<std::string>>> variants = {
      {"missing", std::nullopt},
      {"wrong-token", "Bearer badinput-wrong-token-0123456789"},
      {"empty-bearer", "Bearer "},
      {"bearer-only", "Bearer"},
      {"basic-scheme", "Basic " + s},
      {"no-scheme", s},
      {"secret-plus-char", "Bearer " + s + "x"},
      {"secret-minus-char", "Bearer " + s.substr(0, s.empty() ? 0 : s.size() - 1)},
      {"secret-prefix-only", "Bearer " + s.substr(0, s.size() / 2)},
      {"scheme-is-token", "Token " + s},
      {"empty-value", ""},
  };
  if (upper != s) variants.emplace_back("secret-uppercased", "Bearer " + upper);
  for (const auto& [tag, value] : variants) {
    Request r;
    r.method = ep.method;
    r.target = fill(t_, ep.pattern);
    if (ep.shape) r.body = validBody(ep);
    if (value) {
      r.auth = AuthMode::Custom;
      r.authValue = *value;
    } else {
      r.auth = AuthMode::None;
    }
    add("auth", epName(ep) + " auth=" + tag, r, unauthorized());
  }
  Request q;
  q.method = ep.method;
  q.target = fill(t_, ep.pattern) + "?access_token=" + s + "&token=" + s;
  q.auth = AuthMode::None;
  if (ep.shape) q.body = validBody(ep);
  add("auth", epName(ep) + " auth=token-in-query", q, unauthorized());
}

// ---- HTTP framing, per endpoint ---------------------------------------------------------------

void Table::framingCases(const Endpoint& ep) {
  const std::string n = epName(ep) + " http=";
  const std::string line = ep.method + " " + fill(t_, ep.pattern) + " HTTP/1.1\r\n";
  const std::string head = line + hostLine() + authLine();
  auto raw = [&](const std::string& tag, std::string bytes, int status) {
    Request r;
    r.raw = std::move(bytes);
    r.followUp = false;
    add("http", n + tag, r, reject({status}, true));
  };
  raw("header-too-large", head + "X-Pad: " + std::string(20000, 'a') + "\r\n\r\n", 431);
  {
    std::string many = head;
    for (int i = 0; i < 101; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    raw("too-many-headers", many + "\r\n", 431);
  }
  raw("target-too-large",
      ep.method + " " + fill(t_, ep.pattern) + "?pad=" + std::string(20000, 'a') + " HTTP/1.1\r\n" +
          hostLine() + authLine() + "\r\n",
      431);
  raw("content-length-not-a-number", head + "Content-Length: abc\r\n\r\n", 400);
  raw("content-length-negative", head + "Content-Length: -1\r\n\r\n", 400);
  raw("content-length-overflow", head + "Content-Length: 99999999999999999999999\r\n\r\n", 400);
  raw("content-length-hex", head + "Content-Length: 0x10\r\n\r\n{}", 400);
  raw("content-length-list", head + "Content-Length: 2, 2\r\n\r\n{}", 400);
  raw("content-length-duplicate-differing",
      head + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n{}", 400);
  raw("content-length-space-before-colon", head + "Content-Length : 2\r\n\r\n{}", 400);
  raw("content-length-and-chunked",
      head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
  raw("transfer-encoding-unknown", head + "Transfer-Encoding: gzip\r\n\r\n", 400);
  raw("transfer-encoding-chunked-not-last",
      head + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400);
  raw("chunk-size-garbage", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400);
  {
    Request r;
    r.method = ep.method;
    r.target = fill(t_, ep.pattern);
    r.body = std::string(2 * 1024 * 1024, ' ');
    r.followUp = false;
    add("http", n + "body-2MiB-content-length", r, reject({413}, true));
    r.chunked = true;
    add("http", n + "body-2MiB-chunked", r, reject({413}, true));
  }
}

// ---- HTTP parser cases, once per daemon --------------------------------------------------------

void Table::parserCases() {
  const std::string path = t_.opt.api == Api::Sbxlet ? "/v1/sandboxes" : "/api/v1/sandboxes";
  const std::string tail = hostLine() + authLine() + "\r\n";
  auto raw = [&](const std::string& tag, std::string bytes, std::vector<int> statuses) {
    Request r;
    r.raw = std::move(bytes);
    r.followUp = false;
    add("http", "GET " + path + " http=" + tag, r, reject(std::move(statuses), true));
  };
  raw("request-line-garbage", "GARBAGE\r\n\r\n", {400});
  raw("request-line-binary", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11),
      {400});
  raw("unknown-method-token", "FOO " + path + " HTTP/1.1\r\n" + tail, {400});
  raw("lowercase-method", "get " + path + " HTTP/1.1\r\n" + tail, {400});
  raw("method-with-slash", "G/ET " + path + " HTTP/1.1\r\n" + tail, {400});
  raw("http-version-9.9", "GET " + path + " HTTP/9.9\r\n" + tail, {400, 505});
  raw("http-version-garbage", "GET " + path + " HTTQ/1.1\r\n" + tail, {400});
  raw("extra-token-after-version", "GET " + path + " HTTP/1.1 extra\r\n" + tail, {400});
  raw("http2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505});
  raw("header-without-colon",
      "GET " + path + " HTTP/1.1\r\n" + hostLine() + "NoColon\r\n" + authLine() + "\r\n", {400});
  raw("header-name-with-space",
      "GET " + path + " HTTP/1.1\r\n" + hostLine() + "Bad Header: x\r\n" + authLine() + "\r\n",
      {400});
  raw("header-name-empty",
      "GET " + path + " HTTP/1.1\r\n" + hostLine() + ": empty\r\n" + authLine() + "\r\n", {400});
  raw("header-value-with-nul",
      "GET " + path + " HTTP/1.1\r\n" + hostLine() + std::string("X-Nul: a\0b\r\n", 12) +
          authLine() + "\r\n",
      {400});
  {
    // RFC 9112 §5.2: obs-fold is refused with 400 or replaced by spaces;
    // either is fine.
    Request r;
    r.raw =
        "GET " + path + " HTTP/1.1\r\n" + hostLine() + "X-Fold: a\r\n b\r\n" + authLine() + "\r\n";
    r.followUp = false;
    Expect e = wanting(Want::Either);
    e.httpLayer = true;
    add("http", "GET " + path + " http=header-obs-fold", r, e);
  }
  raw("header-value-bare-cr",
      "GET " + path + " HTTP/1.1\r\n" + hostLine() + "X-Cr: a\rb\r\n" + authLine() + "\r\n", {400});
  raw("expect-unsupported",
      "POST " + path + " HTTP/1.1\r\n" + hostLine() + authLine() +
          "Expect: teapot\r\nContent-Length: 2\r\n\r\n{}",
      {417});
  raw("raw-nul-in-target", "GET " + path + std::string("\0x", 2) + " HTTP/1.1\r\n" + tail, {400});
  raw("raw-space-in-target", "GET " + path + "/a b HTTP/1.1\r\n" + tail, {400});
  raw("raw-control-in-target", "GET " + path + "/a\x01" + "b HTTP/1.1\r\n" + tail, {400});
  raw("fragment-with-space", "GET " + path + "#a b HTTP/1.1\r\n" + tail, {400});
  {
    // 100-continue with a bad body: the interim 100, then the 400.
    Request r;
    r.method = "POST";
    r.target = path;
    r.headers = {{"Expect", "100-continue"}};
    r.body = "{\"id\":";
    add("http", "POST " + path + " http=expect-100-continue-bad-body", r);
  }
  {
    // Content-Length smaller than the body: the first request is cut
    // short (bad JSON); the rest is garbage to the parser.
    Request r;
    r.raw = "POST " + path + " HTTP/1.1\r\n" + hostLine() + authLine() +
            "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"id\":\"badinput\"}";
    r.followUp = false;
    add("http", "POST " + path + " http=content-length-shorter-than-body", r, reject({400}, true));
  }
}

std::vector<Case> Table::build() {
  const auto eps = endpoints(t_.opt.api, create_, statuses_, node_, orchCreate_);
  for (const Endpoint& ep : eps) {
    if (ep.shape) {
      bodyCases(ep);
      typeCases(ep, *ep.shape);
      sizeCases(ep, *ep.shape);
      encodingCases(ep, *ep.shape);
      textCases(ep, *ep.shape);
      numberCases(ep, *ep.shape);
      specificCases(ep, *ep.shape);
      contentTypeCases(ep);
    }
    pathCases(ep);
    queryCases(ep);
    if (!ep.open) authCases(ep);
    framingCases(ep);
  }
  methodCases(eps);
  unknownPathCases();
  parserCases();
  return std::move(cases_);
}

// ---------------------------------------------------------------------------
// Running

struct Outcome {
  bool pass = false;
  std::string why;
  Response resp;
};

Outcome runCase(const Options& o, const Case& c) {
  Outcome out;
  const std::string bytes = wireBytes(c.req, o);
  for (int attempt = 0;; ++attempt) {
    Conn conn;
    std::string err;
    if (!conn.open(o, err)) {
      out.why = err;
      return out;
    }
    out.resp = conn.exchange(bytes, Clock::now() + o.timeout);
    if (out.resp.complete && out.resp.status == 429 && attempt < 5) {
      // The control plane's create rate limit: not what this case tests.
      const std::string* ra = out.resp.header("Retry-After");
      int secs = ra ? std::max(1, std::atoi(ra->c_str())) : 1;
      std::this_thread::sleep_for(std::chrono::seconds(std::min(secs, 5)));
      continue;
    }
    out.why = judge(c.expect, out.resp);
    if (out.why.empty() && c.req.followUp && !out.resp.closes()) {
      const std::string probe = "GET /healthz HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n";
      Response again = conn.exchange(probe, Clock::now() + o.timeout);
      if (!again.complete || again.status != 200) {
        out.why = "the connection was unusable after the answer (GET /healthz on it: " +
                  (again.complete ? std::to_string(again.status) : again.transportError) + ")";
      }
    }
    out.pass = out.why.empty();
    return out;
  }
}

bool alive(const Options& o) {
  Conn conn;
  std::string err;
  if (!conn.open(o, err)) return false;
  Response r = conn.exchange("GET /healthz HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n",
                             Clock::now() + o.timeout);
  return r.complete && r.status == 200;
}

// GET with the secret; the body when 200.
std::optional<std::string> getJson(const Options& o, const std::string& target) {
  Conn conn;
  std::string err;
  if (!conn.open(o, err)) return std::nullopt;
  Response r = conn.exchange("GET " + target + " HTTP/1.1\r\nHost: " + o.host +
                                 "\r\nAuthorization: " + authHeaderValue(o) + "\r\n\r\n",
                             Clock::now() + o.timeout);
  if (!r.complete || r.status != 200) return std::nullopt;
  return r.body;
}

// The existing sandbox's first container name and host port (for the logs
// path and the "host port in use" case).
void discover(Target& t) {
  const Options& o = t.opt;
  if (o.existingId.empty()) return;
  std::string path = o.api == Api::Sbxlet
                         ? "/v1/sandboxes/" + o.existingId
                         : "/api/v1/nodes/" + o.node + "/sandboxes/" + o.existingId;
  auto body = getJson(o, path);
  if (!body) {
    std::fprintf(
        stderr,
        "badinput: --existing-id %s: GET %s did not answer 200; cases that need it are skipped\n",
        o.existingId.c_str(), path.c_str());
    return;
  }
  if (o.api == Api::Orch && !getJson(o, "/api/v1/sandboxes/" + o.existingId)) {
    std::fprintf(stderr, "badinput: --existing-id %s is on the node but not in the control plane\n",
                 o.existingId.c_str());
  }
  t.haveExisting = true;
  t.existingId = o.existingId;
  JsonReader reader;
  auto root = reader.parse(*body);
  if (!root.ok()) return;
  JsonCursor sbx = root->field({"sandbox"});
  bool named = false;
  sbx.field({"containers"}).forEachMember([&](std::string_view name, const JsonCursor&) {
    if (!named) t.containerName = std::string(name);
    named = true;
  });
  bool first = true;
  sbx.field({"ports"}).forEach([&](const JsonCursor& p) {
    int64_t hp = 0;
    if (first && p.field({"hostPort", "host_port"}).get(hp))
      t.existingHostPort = static_cast<int>(hp);
    first = false;
  });
}

// ---------------------------------------------------------------------------
// main

void usage() {
  std::printf(
      "badinput: a bad-input test for every endpoint of sbxlet or sandboxd-o\n\n"
      "usage: badinput --api sbxlet|orch --target HOST:PORT (--secret S | --secret-file F)\n"
      "                [--node NAME] [--existing-id ID] [--list] [--verbose] [--only TEXT]\n\n"
      "  --api sbxlet|orch     which daemon (sbxlet: /v1/..., sandboxd-o: /api/v1/...)\n"
      "  --target HOST:PORT    its address (an IPv4 literal or localhost)\n"
      "  --secret S            the shared secret; --secret-file F reads it from F\n"
      "  --node NAME           orch: a registered node, for /api/v1/nodes/{name}/...\n"
      "  --existing-id ID      a sandbox that exists (orch: created through it, so also on\n"
      "                        the node); without it, paths use a placeholder id\n"
      "  --list                print the cases (family, name, request) and exit\n"
      "  --verbose             print every case, not only the failing ones\n"
      "  --only TEXT           run only the cases whose name contains TEXT\n"
      "  --timeout MS          per-request limit before a case counts as a hang (10000)\n"
      "  --no-slow             skip the slow-headers case (it waits for the 10 s timeout)\n");
}

bool parseFlags(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "badinput: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if (a == "--api") {
      std::string v = value();
      if (v == "sbxlet") {
        o.api = Api::Sbxlet;
      } else if (v == "orch") {
        o.api = Api::Orch;
      } else {
        std::fprintf(stderr, "badinput: --api: sbxlet or orch, got %s\n", v.c_str());
        return false;
      }
    } else if (a == "--target") {
      std::string v = value();
      size_t colon = v.rfind(':');
      if (colon == std::string::npos) {
        std::fprintf(stderr, "badinput: --target: expected HOST:PORT\n");
        return false;
      }
      o.host = v.substr(0, colon);
      if (o.host == "localhost" || o.host.empty()) o.host = "127.0.0.1";
      int port = std::atoi(v.c_str() + colon + 1);
      if (port < 1 || port > 65535) {
        std::fprintf(stderr, "badinput: --target: bad port\n");
        return false;
      }
      o.port = static_cast<uint16_t>(port);
    } else if (a == "--secret") {
      o.secret = value();
    } else if (a == "--secret-file") {
      std::ifstream f(value());
      std::getline(f, o.secret);
      while (!o.secret.empty() && (o.secret.back() == '\r' || o.secret.back() == ' '))
        o.secret.pop_back();
      if (o.secret.empty()) {
        std::fprintf(stderr, "badinput: --secret-file: empty or unreadable\n");
        return false;
      }
    } else if (a == "--node") {
      o.node = value();
    } else if (a == "--existing-id") {
      o.existingId = value();
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--only") {
      o.only = value();
    } else if (a == "--timeout") {
      o.timeout = std::chrono::milliseconds(std::max(100, std::atoi(value().c_str())));
    } else if (a == "--no-slow") {
      o.slow = false;
    } else {
      std::fprintf(stderr, "badinput: unknown flag %s (see --help)\n", a.c_str());
      return false;
    }
  }
  if (o.port == 0 || o.secret.empty()) {
    std::fprintf(stderr, "badinput: --target and --secret (or --secret-file) are required\n");
    return false;
  }
  if (o.api == Api::Orch && o.node.empty()) {
    std::fprintf(stderr, "badinput: --api orch needs --node\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parseFlags(argc, argv, o)) return 2;
  gRunTag = std::to_string(::getpid() % 100000);
  Target t;
  t.opt = o;
  t.existingId = "badinput-absent";
  if (!o.list) {
    if (!alive(o)) {
      std::fprintf(stderr, "badinput: %s:%u does not answer GET /healthz\n", o.host.c_str(),
                   o.port);
      return 2;
    }
    if (o.api == Api::Orch && !getJson(o, "/api/v1/nodes/" + o.node)) {
      std::fprintf(stderr, "badinput: node %s is not registered\n", o.node.c_str());
      return 2;
    }
    discover(t);
  } else if (!o.existingId.empty()) {
    t.existingId = o.existingId;
    t.haveExisting = true;
  }

  Table table(t);
  std::vector<Case> cases = table.build();
  if (!o.only.empty()) {
    cases.erase(
        std::remove_if(cases.begin(), cases.end(),
                       [&](const Case& c) { return c.name.find(o.only) == std::string::npos; }),
        cases.end());
  }
  if (o.list) {
    for (const Case& c : cases) {
      std::printf("%s\t%s\t%s\n", c.family.c_str(), printable(c.name, 200).c_str(),
                  summary(c.req).c_str());
    }
    std::printf("badinput: %zu cases\n", cases.size());
    return 0;
  }

  // The slow-headers case runs beside the others: its connection is opened
  // now, half a request sent, and its 408 collected at the end.
  std::optional<Conn> slow;
  Clock::time_point slowStarted;
  const std::string slowName = "GET /healthz http=slow-headers-408";
  const bool runSlow = o.slow && (o.only.empty() || slowName.find(o.only) != std::string::npos);
  if (runSlow) {
    slow.emplace();
    std::string err;
    if (slow->open(o, err)) {
      slowStarted = Clock::now();
      slow->sendNow("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
  }

  std::map<std::string, std::pair<int, int>> perFamily;  // passed, total
  int passed = 0, failed = 0;
  auto record = [&](const std::string& family, const std::string& name, const std::string& req,
                    const Outcome& out) {
    auto& pf = perFamily[family];
    ++pf.second;
    if (out.pass) {
      ++passed;
      ++pf.first;
      if (o.verbose) std::printf("ok   %s | %d\n", printable(name, 200).c_str(), out.resp.status);
      return;
    }
    ++failed;
    std::string status = out.resp.complete ? std::to_string(out.resp.status) : "-";
    std::printf("FAIL %s | %s | %s | %s | %s\n", printable(name, 200).c_str(), req.c_str(),
                status.c_str(), printable(out.resp.body, 160).c_str(), out.why.c_str());
    std::fflush(stdout);
  };

  const auto started = Clock::now();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Outcome out = runCase(o, c);
    record(c.family, c.name, summary(c.req), out);
    if (!out.pass && !out.resp.complete && !alive(o)) {
      std::printf("badinput: the daemon stopped answering after case \"%s\"; %zu cases not run\n",
                  printable(c.name, 200).c_str(), cases.size() - i - 1);
      failed += static_cast<int>(cases.size() - i - 1);
      break;
    }
  }

  if (runSlow && slow) {
    Outcome out;
    // The header timeout is 10 s from the first byte; allow 5 more.
    out.resp = slow->exchange("", slowStarted + std::chrono::seconds(15));
    out.why = judge(reject({408}, true), out.resp);
    out.pass = out.why.empty();
    record("http", slowName, "GET /healthz with headers never finished", out);
  }
  {
    Outcome out;
    out.pass = alive(o);
    if (!out.pass) out.why = "GET /healthz does not answer 200 after the run";
    record("http", "GET /healthz still-alive-after-all-cases", "GET /healthz", out);
  }

  const double secs = std::chrono::duration<double>(Clock::now() - started).count();
  const char* daemon = o.api == Api::Sbxlet ? "sbxlet" : "sandboxd-o";
  for (const std::string& f : kFamilies) {
    auto it = perFamily.find(f);
    if (it == perFamily.end()) continue;
    std::printf("badinput: %s family %-18s %4d cases, %4d passed\n", daemon, f.c_str(),
                it->second.second, it->second.first);
  }
  int refused = 0, served = 0, open = 0;
  for (const Case& c : cases) {
    (c.expect.want == Want::Reject          ? refused
     : c.expect.want == Want::SpecAllows2xx ? served
                                            : open)++;
  }
  std::printf(
      "badinput: %s: %d cases must be refused (4xx), %d are served by SPEC (2xx), %d are left "
      "open by SPEC (2xx or 4xx); %.1fs\n",
      daemon, refused, served, open, secs);
  std::printf("badinput: %d passed, %d failed\n", passed, failed);
  return failed > 0 ? 1 : 0;
}
