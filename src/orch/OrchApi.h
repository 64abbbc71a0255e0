#pragma once
// OrchApi: sandboxd-o's HTTP API (SPEC §2): nodes, control-plane sandboxes
// and the pass-through proxy to a node's sbxlet. Every route but /healthz
// needs the shared secret.
//
// Loop-thread only (handlers run on the loop; nothing here blocks).
#include <cstdint>
#include <string>
#include <string_view>

#include "base/Result.h"
#include "http/Router.h"
#include "node/SandboxSpec.h"
#include "orch/RateLimiter.h"

namespace sbx {
class EventLoop;
}

namespace sbx::orch {

class NodeClient;
class NodeRegistry;
class SandboxController;

struct OrchApiOptions {
  std::string sharedSecret;
  double createRps = 20;
  int createBurst = 40;
  Duration proxyTimeout = std::chrono::seconds(60);
  size_t maxListItems = 1000;  // GET /api/v1/sandboxes page size (default and max)
};

// The body of POST /api/v1/nodes: {"id" (or "name"), "spec": {"ip", "port"
// (default 8080), "external"}}, checked. Errors are the 400 messages
// ("id is required", "spec.ip: ...", "spec.port must be between 1 and
// 65535", the reader's). Pure: thread-safe.
struct NodeRegistration {
  std::string id;
  std::string ip;
  int port = 8080;
  std::string external;
};
Result<NodeRegistration> decodeNodeRegistration(std::string_view body);

// The body of POST /api/v1/sandboxes: {"id", "spec": {..., "ttl_seconds"}},
// the spec decoded with sbxlet's rules (no id inside, host ports left to the
// scheduler: any given one is refused). Errors are the 400 messages. Pure:
// thread-safe.
struct SandboxCreateRequest {
  std::string id;          // "" = the caller generates one; else a valid sandbox id
  node::SandboxSpec spec;  // spec.id not set
  int64_t ttlSeconds = 0;  // 0 = none
};
Result<SandboxCreateRequest> decodeSandboxCreateRequest(std::string_view body);

class OrchApi {
 public:
  OrchApi(EventLoop& loop, NodeRegistry& nodes, SandboxController& sandboxes, NodeClient& client,
          OrchApiOptions options);
  void registerRoutes(http::Router& r);

 private:
  http::Handler guarded(http::Handler h);
  void listNodes(const http::ExchangePtr& ex);
  void putNode(const http::ExchangePtr& ex);
  void getNode(const http::ExchangePtr& ex);
  void deleteNode(const http::ExchangePtr& ex);
  void heartbeat(const http::ExchangePtr& ex);
  void createSandbox(const http::ExchangePtr& ex);
  void listSandboxes(const http::ExchangePtr& ex);
  void getSandbox(const http::ExchangePtr& ex);
  void deleteSandbox(const http::ExchangePtr& ex);
  // Pass-through: `target` is the sbxlet path (with query) to call.
  void proxy(const http::ExchangePtr& ex, const std::string& method, std::string target,
             std::string body);

  EventLoop& loop_;
  NodeRegistry& nodes_;
  SandboxController& sandboxes_;
  NodeClient& client_;
  OrchApiOptions options_;
  RateLimiter createLimiter_;
  uint64_t idCounter_ = 0;
};

}  // namespace sbx::orch
