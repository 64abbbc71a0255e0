#include "orch/OrchApi.h"

#include <chrono>

#include "app/LoopStats.h"
#include "app/SharedSecret.h"
#include "http/HttpServer.h"
#include "http/Paging.h"
#include "http/UrlCodec.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/SandboxSpec.h"
#include "orch/NodeAddress.h"
#include "orch/NodeClient.h"
#include "orch/NodeRegistry.h"
#include "orch/OrchConfig.h"
#include "orch/SandboxController.h"
#include "reactor/EventLoop.h"

namespace sbx::orch {

namespace {

constexpr int64_t kMaxTtlSeconds = 365LL * 24 * 3600;

int statusOf(const Error& e, int fallback) {
  return e.code >= 400 && e.code < 600 ? e.code : fallback;
}

std::string nodeBody(const OrchNode& n) {
  json::JsonWriter w(1024);
  w.beginObject().key("node");
  writeNodeJson(w, n);
  w.endObject();
  return w.take();
}

std::string sandboxBody(const OrchSandbox& s) {
  json::JsonWriter w(1024);
  w.beginObject().key("sandbox");
  writeSandboxJson(w, s);
  w.endObject();
  return w.take();
}

// `"external": ...` added at the top level of a JSON object (SPEC §2
// proxy), unless the node already put one there.
std::string withExternal(const std::string& body, const json::JsonCursor& root,
                         const std::string& external) {
  if (root.kind() != json::JsonKind::Object || root.field({"external"}).present()) return body;
  size_t close = body.find_last_of('}');
  if (close == std::string::npos) return body;
  size_t open = body.find('{');
  bool empty = body.find_first_not_of(" \t\r\n", open + 1) == close;
  std::string out = body.substr(0, close);
  json::JsonWriter v;
  v.value(external);
  out += empty ? "\"external\":" : ",\"external\":";
  out += v.str();
  out += body.substr(close);
  return out;
}

}  // namespace

OrchApi::OrchApi(EventLoop& loop, NodeRegistry& nodes, SandboxController& sandboxes,
                 NodeClient& client, OrchApiOptions options)
    : loop_(loop),
      nodes_(nodes),
      sandboxes_(sandboxes),
      client_(client),
      options_(std::move(options)),
      createLimiter_(options_.createRps, options_.createBurst) {}

http::Handler OrchApi::guarded(http::Handler h) {
  return [this, h = std::move(h)](const http::ExchangePtr& ex) {
    if (!app::bearerMatches(ex->request().headers.find("Authorization"), options_.sharedSecret)) {
      ex->respondError(401, "unauthorized");
      return;
    }
    h(ex);
  };
}

void OrchApi::registerRoutes(http::Router& r) {
  auto on = [&](const char* method, const char* path, void (OrchApi::*fn)(const http::ExchangePtr&)) {
    r.add(method, path, guarded([this, fn](const http::ExchangePtr& ex) { (this->*fn)(ex); }));
  };
  on("GET", "/api/v1/nodes", &OrchApi::listNodes);
  on("POST", "/api/v1/nodes", &OrchApi::putNode);
  on("GET", "/api/v1/nodes/{name}", &OrchApi::getNode);
  on("DELETE", "/api/v1/nodes/{name}", &OrchApi::deleteNode);
  on("POST", "/api/v1/nodes/{name}/heartbeat", &OrchApi::heartbeat);
  on("POST", "/api/v1/sandboxes", &OrchApi::createSandbox);
  on("GET", "/api/v1/sandboxes", &OrchApi::listSandboxes);
  on("GET", "/api/v1/sandboxes/{id}", &OrchApi::getSandbox);
  on("DELETE", "/api/v1/sandboxes/{id}", &OrchApi::deleteSandbox);
  // The loop's health (app/LoopStats.h), for benchmarks and operators.
  r.add("GET", "/api/v1/loop",
        guarded([this](const http::ExchangePtr& ex) { app::serveLoopStats(ex, loop_); }));

  // The node proxy. Ids and names are checked before they go into a path
  // on the node (no "../" or "%2f" reaches it).
  auto checkedId = [](const http::ExchangePtr& ex) -> bool {
    if (Status st = node::validateSandboxId(ex->request().param("id")); !st.ok()) {
      ex->respondError(400, st.message());
      return false;
    }
    return true;
  };
  r.add("GET", "/api/v1/nodes/{name}/sandboxes", guarded([this](const http::ExchangePtr& ex) {
          std::string target = "/v1/sandboxes";
          char sep = '?';
          for (const char* key : {"cursor", "limit"}) {
            if (auto v = ex->request().queryValue(key)) {
              target += sep;
              target += key;
              target += '=';
              target += http::percentEncode(*v);
              sep = '&';
            }
          }
          proxy(ex, "GET", std::move(target), "");
        }));
  r.add("POST", "/api/v1/nodes/{name}/sandboxes", guarded([this](const http::ExchangePtr& ex) {
          proxy(ex, "POST", "/v1/sandboxes", ex->request().body);
        }));
  r.add("GET", "/api/v1/nodes/{name}/sandboxes/{id}",
        guarded([this, checkedId](const http::ExchangePtr& ex) {
          if (!checkedId(ex)) return;
          proxy(ex, "GET", "/v1/sandboxes/" + ex->request().param("id"), "");
        }));
  r.add("DELETE", "/api/v1/nodes/{name}/sandboxes/{id}",
        guarded([this, checkedId](const http::ExchangePtr& ex) {
          if (!checkedId(ex)) return;
          proxy(ex, "DELETE", "/v1/sandboxes/" + ex->request().param("id"), "");
        }));
  r.add("GET", "/api/v1/nodes/{name}/sandboxes/{id}/logs",
        guarded([this, checkedId](const http::ExchangePtr& ex) {
          if (!checkedId(ex)) return;
          proxy(ex, "GET", "/v1/sandboxes/" + ex->request().param("id") + "/logs", "");
        }));
  r.add("GET", "/api/v1/nodes/{name}/sandboxes/{id}/containers/{container}/logs",
        guarded([this, checkedId](const http::ExchangePtr& ex) {
          if (!checkedId(ex)) return;
          const std::string& c = ex->request().param("container");
          if (Status st = node::validateContainerName(c); !st.ok()) {
            ex->respondError(400, st.message());
            return;
          }
          proxy(ex, "GET",
                "/v1/sandboxes/" + ex->request().param("id") + "/containers/" + c + "/logs", "");
        }));
  r.add("POST", "/api/v1/nodes/{name}/reconcile", guarded([this](const http::ExchangePtr& ex) {
          proxy(ex, "POST", "/v1/reconcile", "");
        }));
}

// ---- nodes ----

void OrchApi::listNodes(const http::ExchangePtr& ex) {
  json::JsonWriter w(4096);
  w.beginObject().key("items").beginArray();
  for (const auto& [name, n] : nodes_.nodes()) writeNodeJson(w, n);
  w.endArray().endObject();
  ex->respond(200, w.str());
}

Result<NodeRegistration> decodeNodeRegistration(std::string_view body) {
  json::JsonReader reader;
  auto root = reader.parse(body);
  if (!root.ok()) return root.error();
  NodeRegistration out;
  int64_t port = 8080;
  root->field({"id", "name"}).get(out.id);
  json::JsonCursor spec = root->field({"spec"});
  spec.field({"ip"}).get(out.ip);
  spec.field({"port"}).get(port);
  spec.field({"external"}).get(out.external);
  if (!reader.ok()) return Error(reader.error());
  if (out.id.empty()) return Error("id is required");
  if (Status st = validateNodeId(out.id); !st.ok()) return st.error();
  if (out.ip.empty()) return Error("spec.ip is required");
  if (Status st = validateNodeAddress(out.ip); !st.ok()) return Error("spec.ip: " + st.message());
  if (port < 1 || port > 65535) return Error("spec.port must be between 1 and 65535");
  if (out.external.size() > 253) return Error("spec.external is too long (max 253)");
  // A host name or address for clients: printable ASCII, no spaces (it is
  // echoed into every sandbox object and URL built from it).
  for (unsigned char ch : out.external) {
    if (ch <= 0x20 || ch >= 0x7f) return Error("spec.external: must be printable ASCII without spaces");
  }
  out.port = static_cast<int>(port);
  return out;
}

void OrchApi::putNode(const http::ExchangePtr& ex) {
  auto decoded = decodeNodeRegistration(ex->request().body);
  if (!decoded.ok()) {
    ex->respondError(400, decoded.message());
    return;
  }
  const std::string& id = decoded->id;
  if (const OrchNode* n = nodes_.find(id); n && n->source == "config") {
    ex->respondError(409, "node " + id + " comes from the configuration file; change it there");
    return;
  }
  nodes_.upsert(id, decoded->ip, decoded->port, "api", decoded->external,
                [ex](Result<const OrchNode*> r) {
                  if (!r.ok()) {
                    ex->respondError(statusOf(r.error(), 500), r.message());
                    return;
                  }
                  ex->respond(200, nodeBody(**r));
                });
}

void OrchApi::getNode(const http::ExchangePtr& ex) {
  const std::string& name = ex->request().param("name");
  const OrchNode* n = nodes_.find(name);
  if (!n) {
    ex->respondError(404, "node not found: " + name);
    return;
  }
  ex->respond(200, nodeBody(*n));
}

void OrchApi::deleteNode(const http::ExchangePtr& ex) {
  const std::string name = ex->request().param("name");
  if (!nodes_.find(name)) {
    ex->respondError(404, "node not found: " + name);
    return;
  }
  auto forceText = ex->request().queryValue("force");
  const bool force = forceText && (*forceText == "true" || *forceText == "1");
  auto removeNode = [this, ex, name] {
    nodes_.remove(name, [ex, name](Status st) {
      if (!st.ok()) {
        ex->respondError(statusOf(st.error(), 500), st.message());
        return;
      }
      json::JsonWriter w(64);
      w.beginObject().kv("deleted", name).endObject();
      ex->respond(200, w.str());
    });
  };
  if (force) {
    sandboxes_.failAllOnNode(name, "node removed");
    removeNode();
    return;
  }
  sandboxes_.deleteAllOnNode(name, [this, ex, name, removeNode](Status st) {
    if (!st.ok()) {
      ex->respondError(statusOf(st.error(), 502), st.message());
      return;
    }
    if (!nodes_.find(name)) {
      ex->respondError(404, "node not found: " + name);
      return;
    }
    removeNode();
  });
}

void OrchApi::heartbeat(const http::ExchangePtr& ex) {
  const std::string name = ex->request().param("name");
  if (!nodes_.find(name)) {
    ex->respondError(404, "node not found: " + name);
    return;
  }
  nodes_.heartbeat(name, [this, ex, name](const HeartbeatOutcome& out) {
    const OrchNode* n = nodes_.find(name);
    if (!n) {
      ex->respondError(404, "node not found: " + name);
      return;
    }
    json::JsonWriter w(1024);
    w.beginObject().key("node");
    writeNodeJson(w, *n);
    w.kv("heartbeat", out.ok ? "ok" : "failed").key("resources");
    writeNodeResourcesJson(w, *n);
    w.kv("heartbeat_error", out.heartbeatError).kv("status_error", out.statusError).endObject();
    ex->respond(200, w.str());
  });
}

// ---- sandboxes ----

Result<SandboxCreateRequest> decodeSandboxCreateRequest(std::string_view body) {
  json::JsonReader reader;
  auto root = reader.parse(body);
  if (!root.ok()) return root.error();
  if (root->kind() != json::JsonKind::Object) return Error("request body must be a JSON object");
  SandboxCreateRequest out;
  root->field({"id"}).get(out.id);
  json::JsonCursor spec = root->field({"spec"});
  if (!reader.ok()) return Error(reader.error());
  if (!spec.present()) return Error("spec is required");
  if (!out.id.empty()) {
    if (Status st = node::validateSandboxId(out.id); !st.ok()) return st.error();
  }
  node::SandboxSpecOptions opts;
  opts.readId = false;
  opts.allowUnassignedHostPorts = true;
  auto decoded = node::decodeSandboxSpec(spec, reader, opts);
  if (!decoded.ok()) return decoded.error();
  spec.field({"ttl_seconds", "ttlSeconds"}).get(out.ttlSeconds);
  if (!reader.ok()) return Error(reader.error());
  if (out.ttlSeconds < 0 || out.ttlSeconds > kMaxTtlSeconds) {
    return Error("spec.ttl_seconds must be between 0 and " + std::to_string(kMaxTtlSeconds));
  }
  for (size_t i = 0; i < decoded->ports.size(); ++i) {
    if (decoded->ports[i].hostPort != 0) {
      return Error("spec.ports[" + std::to_string(i) +
                   "].host_port: host ports are assigned by the control plane; leave it out");
    }
  }
  out.spec = std::move(*decoded);
  return out;
}

void OrchApi::createSandbox(const http::ExchangePtr& ex) {
  if (!createLimiter_.tryAcquire(loop_.now())) {
    auto wait = std::chrono::duration_cast<std::chrono::seconds>(
        createLimiter_.retryAfter(loop_.now()) + std::chrono::milliseconds(999));
    http::HttpHeaders h;
    h.add("Retry-After", std::to_string(std::max<int64_t>(1, wait.count())));
    ex->respondError(429, "rate limit exceeded for sandbox create", &h);
    return;
  }
  auto decoded = decodeSandboxCreateRequest(ex->request().body);
  if (!decoded.ok()) {
    ex->respondError(400, decoded.message());
    return;
  }
  std::string id = std::move(decoded->id);
  if (id.empty()) {
    id = node::generateSandboxId(std::chrono::system_clock::now(),
                                 static_cast<uint64_t>(nowUnixMs()) * 7919 + ++idCounter_);
  }
  const int64_t ttl = decoded->ttlSeconds;
  OrchSandbox s;
  s.id = id;
  s.spec = std::move(decoded->spec);
  s.spec.id = id;
  s.ttlSeconds = ttl;
  s.createdAtMs = nowUnixMs();
  s.updatedAtMs = s.createdAtMs;
  if (ttl > 0) s.expireAtMs = s.createdAtMs + ttl * 1000;
  sandboxes_.create(std::move(s), [ex](Result<const OrchSandbox*> r) {
    if (!r.ok()) {
      ex->respondError(statusOf(r.error(), 500), r.message());
      return;
    }
    ex->respond(202, sandboxBody(**r));
  });
}

void OrchApi::listSandboxes(const http::ExchangePtr& ex) {
  json::JsonWriter w(8192);
  http::writePage(w, sandboxes_.sandboxes(),
                  http::pageParams(ex->request(), options_.maxListItems, options_.maxListItems),
                  [](json::JsonWriter& jw, const OrchSandbox& s) { writeSandboxJson(jw, s); });
  ex->respond(200, w.str());
}

void OrchApi::getSandbox(const http::ExchangePtr& ex) {
  const std::string& id = ex->request().param("id");
  const OrchSandbox* s = sandboxes_.find(id);
  if (!s) {
    ex->respondError(404, "sandbox not found: " + id);
    return;
  }
  ex->respond(200, sandboxBody(*s));
}

void OrchApi::deleteSandbox(const http::ExchangePtr& ex) {
  const std::string id = ex->request().param("id");
  sandboxes_.remove(id, [ex, id](Result<bool> r) {
    if (!r.ok()) {
      ex->respondError(statusOf(r.error(), 500), r.message());
      return;
    }
    json::JsonWriter w(128);
    w.beginObject().kv("deleted", id);
    // Not yet gone from its node (unreachable): it stays Deleting and the
    // deletion is retried.
    if (!*r) w.kv("phase", "Deleting");
    w.endObject();
    ex->respond(*r ? 200 : 202, w.str());
  });
}

// ---- proxy ----

void OrchApi::proxy(const http::ExchangePtr& ex, const std::string& method, std::string target,
                    std::string body) {
  const std::string name = ex->request().param("name");
  const OrchNode* n = nodes_.find(name);
  if (!n) {
    ex->respondError(404, "node not found: " + name);
    return;
  }
  const std::string external = n->external();
  client_.call(nodes_.endpoint(*n), method, std::move(target), std::move(body),
               options_.proxyTimeout, [ex, name, external](Result<NodeReply> r) {
                 if (!r.ok()) {
                   ex->respondError(502, r.message());
                   return;
                 }
                 json::JsonReader reader;
                 auto root = reader.parse(r->body);
                 if (!root.ok()) {
                   ex->respondError(502, "node " + name + " answered HTTP " +
                                             std::to_string(r->status) + " with invalid JSON");
                   return;
                 }
                 ex->respond(r->status, withExternal(r->body, *root, external));
               });
}

}  // namespace sbx::orch
