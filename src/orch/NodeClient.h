#pragma once
// NodeClient: the control plane's calls to a node's sbxlet, on the event
// loop (the loop's own HttpClient: no thread, no blocking), each with a
// timeout and the nodes' bearer secret.
//
// Loop-thread only. Callbacks run on the loop, never from inside call().
#include <cstdint>
#include <functional>
#include <string>

#include "base/Result.h"
#include "reactor/Clock.h"

namespace sbx::http {
class HttpClient;
}

namespace sbx::orch {

struct NodeEndpoint {
  std::string name;
  std::string ip;
  int port = 8080;
};

struct NodeReply {
  int status = 0;
  std::string body;
};

class NodeClient {
 public:
  using Callback = std::function<void(Result<NodeReply>)>;
  NodeClient(http::HttpClient& http, std::string secret);

  // Sends METHOD target (origin-form, already encoded) with `body` (JSON)
  // to the node. Any HTTP status is a reply; a transport failure is an
  // error such as "node node-a (127.0.0.1:8080): connect ...: Connection
  // refused". `authenticated` false: no Authorization header (/healthz).
  uint64_t call(const NodeEndpoint& node, const std::string& method, std::string target,
                std::string body, Duration timeout, Callback cb, bool authenticated = true);
  void cancel(uint64_t id);

 private:
  http::HttpClient& http_;
  std::string authHeader_;
};

}  // namespace sbx::orch
