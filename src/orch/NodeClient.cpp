#include "orch/NodeClient.h"

#include "http/HttpClient.h"

namespace sbx::orch {

NodeClient::NodeClient(http::HttpClient& http, std::string secret)
    : http_(http), authHeader_("Bearer " + std::move(secret)) {}

uint64_t NodeClient::call(const NodeEndpoint& node, const std::string& method, std::string target,
                          std::string body, Duration timeout, Callback cb, bool authenticated) {
  http::HttpClientRequest req;
  req.method = method;
  req.host = node.ip;
  req.port = static_cast<uint16_t>(node.port);
  req.target = std::move(target);
  if (authenticated) req.headers.add("Authorization", authHeader_);
  if (!body.empty() || method == "POST") {
    req.headers.add("Content-Type", "application/json");
    req.body = std::move(body);
  }
  req.timeout = timeout;
  req.connectTimeout = std::min(timeout, Duration(std::chrono::seconds(3)));
  // A sandbox list or a log read can be large; sbxlet bounds its own.
  req.maxResponseBytes = 256u << 20;
  std::string who = "node " + node.name + " (" + node.ip + ":" + std::to_string(node.port) + ")";
  return http_.request(std::move(req), [cb = std::move(cb), who = std::move(who)](
                                           Result<http::HttpClientResponse> r) {
    if (!r.ok()) {
      cb(makeError(who + ": " + r.message()));
      return;
    }
    cb(NodeReply{r->status, std::move(r->body)});
  });
}

void NodeClient::cancel(uint64_t id) { http_.cancel(id); }

}  // namespace sbx::orch
