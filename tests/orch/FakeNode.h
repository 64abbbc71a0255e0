#pragma once
// FakeNode: an in-process stand-in for a node's sbxlet (SPEC §1), on the
// test's EventLoop at 127.0.0.1:<port 0>, for the control plane's tests.
//
// It serves what the control plane calls, with sbxlet's shapes and messages:
//   GET    /healthz                  open
//   GET    /v1/node/status           resources (every field decodeNodeResources needs)
//   POST   /v1/sandboxes             admission (cpu, memory), id and host-port
//                                    conflicts, else 202 phase "creating"
//   POST   /v1/sandboxes/statuses    {"items":[{id,phase,ip,error}],"missing":[...]}
//   GET    /v1/sandboxes/{id}        {"sandbox":{id,phase,ip}} or 404
//   DELETE /v1/sandboxes/{id}        200, idempotent; frees admission and host ports
// Every route but /healthz wants "Authorization: Bearer <secret>" (401).
//
// Like sbxlet, a sandbox in phase "error" keeps its admission and its host
// ports until it is deleted.
//
// Knobs are public fields, read at the moment a request arrives (a new
// sandbox copies the outcome knobs when it is created). Loop-thread only.

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "http/HttpServer.h"
#include "http/Router.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/SandboxSpec.h"
#include "orch/OrchModel.h"
#include "reactor/EventLoop.h"

namespace sbx::test {

// A result's error message, "" when it is ok (for REQUIRE_MESSAGE, which
// may format its message even when the check passes).
template <class T>
std::string why(const Result<T>& r) {
  return r.ok() ? std::string() : r.message();
}

class FakeNode {
 public:
  // Route names for calls(): "METHOD pattern".
  static constexpr const char* kHealthz = "GET /healthz";
  static constexpr const char* kStatus = "GET /v1/node/status";
  static constexpr const char* kCreate = "POST /v1/sandboxes";
  static constexpr const char* kStatuses = "POST /v1/sandboxes/statuses";
  static constexpr const char* kGet = "GET /v1/sandboxes/{id}";
  static constexpr const char* kDelete = "DELETE /v1/sandboxes/{id}";

  struct Sandbox {
    std::string id;
    std::string phase = "creating";
    std::string ip;
    std::string error;
    int64_t cpuMilli = 0;
    int64_t memoryBytes = 0;
    std::vector<node::PortMapping> ports;
    // Status polls still answered "creating" before `outcome` is reported.
    int pollsLeft = 0;
    std::string outcome = "running";
    std::string outcomeError;
  };

  // ---- knobs ----
  int64_t allocatableCpuMilli = 8000;
  int64_t allocatableMemoryBytes = 16LL << 30;
  // Counted by admission, not reported in the status: what another client
  // created on the node since the control plane's last heartbeat.
  int64_t unreportedCpuMilli = 0;
  // What a new sandbox becomes ("running" or "error", with outcomeError)
  // after pollsBeforeOutcome status polls that still say "creating".
  std::string outcome = "running";
  std::string outcomeError;
  int pollsBeforeOutcome = 0;
  // Every route (also /healthz) answers 503 {"error":"node is down"}.
  bool down = false;

  // ---- what it holds and saw ----
  std::map<std::string, Sandbox> sandboxes;
  std::map<std::pair<int, std::string>, std::string> hostPorts;  // (port, protocol) -> id
  // The ids of every DELETE, in order.
  std::vector<std::string> deletes;
  // The error messages of the creates it refused, in order.
  std::vector<std::string> refusals;

  FakeNode(EventLoop& loop, std::string secret)
      : secret_(std::move(secret)), server_(loop, router_) {
    route("GET", "/healthz", false,
          [](const http::ExchangePtr& ex) { ex->respond(200, "{\"ok\":true}"); });
    route("GET", "/v1/node/status", true, [this](const http::ExchangePtr& ex) { status(ex); });
    route("POST", "/v1/sandboxes", true, [this](const http::ExchangePtr& ex) { create(ex); });
    route("POST", "/v1/sandboxes/statuses", true,
          [this](const http::ExchangePtr& ex) { statuses(ex); });
    route("GET", "/v1/sandboxes/{id}", true, [this](const http::ExchangePtr& ex) { get(ex); });
    route("DELETE", "/v1/sandboxes/{id}", true,
          [this](const http::ExchangePtr& ex) { remove(ex); });
    Status st = server_.listen("127.0.0.1:0");
    REQUIRE_MESSAGE(st.ok(), why(st));
  }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  uint16_t port() const { return server_.port(); }
  int calls(const std::string& route) const {
    auto it = calls_.find(route);
    return it == calls_.end() ? 0 : it->second;
  }
  int64_t usedCpuMilli() const {
    int64_t sum = 0;
    for (const auto& [id, s] : sandboxes) sum += s.cpuMilli;
    return sum;
  }
  int64_t usedMemoryBytes() const {
    int64_t sum = 0;
    for (const auto& [id, s] : sandboxes) sum += s.memoryBytes;
    return sum;
  }

 private:
  void route(const char* method, const char* pattern, bool authenticated, http::Handler h) {
    const std::string name = std::string(method) + " " + pattern;
    router_.add(method, pattern, [this, name, authenticated, h](const http::ExchangePtr& ex) {
      ++calls_[name];
      if (down) {
        ex->respondError(503, "node is down");
        return;
      }
      const std::string* auth = ex->request().headers.find("Authorization");
      if (authenticated && (!auth || *auth != "Bearer " + secret_)) {
        ex->respondError(401, "unauthorized");
        return;
      }
      h(ex);
    });
  }

  void status(const http::ExchangePtr& ex) {
    const int64_t usedCpu = usedCpuMilli(), usedMem = usedMemoryBytes();
    json::JsonWriter w(512);
    w.beginObject()
        .kv("ok", true)
        .key("resources")
        .beginObject()
        .kv("capacity_cpu_milli", allocatableCpuMilli * 100 / 90)
        .kv("capacity_memory_bytes", allocatableMemoryBytes / 90 * 100)
        .kv("allocatable_cpu_milli", allocatableCpuMilli)
        .kv("allocatable_memory_bytes", allocatableMemoryBytes)
        .kv("used_cpu_milli", usedCpu)
        .kv("used_memory_bytes", usedMem)
        .kv("available_cpu_milli", allocatableCpuMilli - usedCpu)
        .kv("available_memory_bytes", allocatableMemoryBytes - usedMem)
        .kv("max_alloc_percent", 90)
        .kv("updated_at", orch::rfc3339(orch::nowUnixMs()))
        .endObject()
        .endObject();
    ex->respond(200, w.str());
  }

  void refuse(const http::ExchangePtr& ex, const std::string& message) {
    refusals.push_back(message);
    ex->respondError(400, message);
  }

  void create(const http::ExchangePtr& ex) {
    json::JsonReader reader;
    auto root = reader.parse(ex->request().body);
    if (!root.ok()) return refuse(ex, root.message());
    auto spec = node::decodeSandboxSpec(*root, reader);
    if (!spec.ok()) return refuse(ex, spec.message());
    const std::string& id = spec->id;
    if (sandboxes.count(id)) return refuse(ex, "sandbox already exists: " + id);
    const int64_t cpu = spec->totalCpuMillis(), mem = spec->totalMemoryBytes();
    const int64_t usedCpu = usedCpuMilli() + unreportedCpuMilli, usedMem = usedMemoryBytes();
    if (cpu > allocatableCpuMilli - usedCpu) {
      return refuse(ex, "insufficient cpu allocatable: requested=" + std::to_string(cpu) +
                            "m used=" + std::to_string(usedCpu) +
                            "m limit=" + std::to_string(allocatableCpuMilli) + "m (90% of host)");
    }
    if (mem > allocatableMemoryBytes - usedMem) {
      return refuse(ex, "insufficient memory allocatable: requested=" + std::to_string(mem) +
                            " used=" + std::to_string(usedMem) +
                            " limit=" + std::to_string(allocatableMemoryBytes) + " (90% of host)");
    }
    for (const auto& p : spec->ports) {
      auto held = hostPorts.find({p.hostPort, p.protocol});
      if (held != hostPorts.end()) {
        return refuse(ex, "host port already in use: " + std::to_string(p.hostPort) + "/" +
                              p.protocol + " (sandbox " + held->second + ")");
      }
    }
    Sandbox s;
    s.id = id;
    s.ip = "10.89.0." + std::to_string(++ipCounter_);
    s.cpuMilli = cpu;
    s.memoryBytes = mem;
    s.ports = spec->ports;
    s.pollsLeft = pollsBeforeOutcome;
    s.outcome = outcome;
    s.outcomeError = outcomeError;
    for (const auto& p : s.ports) hostPorts[{p.hostPort, p.protocol}] = id;
    sandboxes[id] = std::move(s);
    json::JsonWriter w(128);
    w.beginObject()
        .key("sandbox")
        .beginObject()
        .kv("id", id)
        .kv("phase", "creating")
        .endObject()
        .endObject();
    ex->respond(202, w.str());
  }

  void statuses(const http::ExchangePtr& ex) {
    json::JsonReader reader;
    auto root = reader.parse(ex->request().body);
    if (!root.ok()) return ex->respondError(400, root.message());
    std::vector<std::string> ids;
    root->field({"ids"}).forEach([&](const json::JsonCursor& c) {
      std::string id;
      if (c.get(id)) ids.push_back(id);
    });
    json::JsonWriter w(256);
    w.beginObject().key("items").beginArray();
    std::vector<std::string> missing;
    for (const auto& id : ids) {
      auto it = sandboxes.find(id);
      if (it == sandboxes.end()) {
        missing.push_back(id);
        continue;
      }
      Sandbox& s = it->second;
      if (s.phase == "creating") {
        if (s.pollsLeft > 0) {
          --s.pollsLeft;
        } else {
          s.phase = s.outcome;
          s.error = s.outcomeError;
        }
      }
      w.beginObject()
          .kv("id", s.id)
          .kv("phase", s.phase)
          .kv("ip", s.ip)
          .kv("error", s.error)
          .endObject();
    }
    w.endArray().key("missing").beginArray();
    for (const auto& id : missing) w.value(id);
    w.endArray().endObject();
    ex->respond(200, w.str());
  }

  void get(const http::ExchangePtr& ex) {
    const std::string& id = ex->request().param("id");
    auto it = sandboxes.find(id);
    if (it == sandboxes.end()) return ex->respondError(404, "sandbox not found: " + id);
    json::JsonWriter w(128);
    w.beginObject()
        .key("sandbox")
        .beginObject()
        .kv("id", id)
        .kv("phase", it->second.phase)
        .kv("ip", it->second.ip)
        .endObject()
        .endObject();
    ex->respond(200, w.str());
  }

  void remove(const http::ExchangePtr& ex) {
    const std::string id = ex->request().param("id");
    deletes.push_back(id);
    if (auto it = sandboxes.find(id); it != sandboxes.end()) {
      for (const auto& p : it->second.ports) hostPorts.erase({p.hostPort, p.protocol});
      sandboxes.erase(it);
    }
    json::JsonWriter w(64);
    w.beginObject().kv("id", id).kv("phase", "deleted").endObject();
    ex->respond(200, w.str());
  }

  std::string secret_;
  http::Router router_;
  http::HttpServer server_;
  std::map<std::string, int> calls_;
  int ipCounter_ = 0;
};

}  // namespace sbx::test
