#pragma once
// HttpClient: an HTTP/1.1 client on the EventLoop. Non-blocking connect with
// a timeout, request write, response parsing with llhttp (Content-Length,
// chunked and close-delimited bodies), and a per-host keep-alive pool.
//
// Hosts are IP literals (IPv4 or IPv6) or "localhost": no DNS resolution on
// the loop (it would block). The control plane talks to nodes by IP, and
// probes target sandbox IPs.
//
// Loop-thread only. Each callback runs exactly once, on the loop thread,
// never from inside request() itself, unless the request is cancelled (then
// never) or the client is destroyed first (then never).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/Result.h"
#include "http/HttpMessage.h"
#include "reactor/EventLoop.h"

namespace sbx::http {

struct HttpClientRequest {
  std::string method = "GET";
  std::string host;  // "127.0.0.1", "::1", "localhost"
  uint16_t port = 80;
  std::string target = "/";  // origin-form: path and query
  HttpHeaders headers;       // Host, Content-Length, Connection are added
  std::string body;
  // Whole exchange: connect + write + response.
  Duration timeout = std::chrono::seconds(10);
  Duration connectTimeout = std::chrono::seconds(3);
  size_t maxResponseBytes = 64u << 20;  // body; larger → error
  // Reuse pooled connections and return this one to the pool afterwards.
  bool keepAlive = true;
};

struct HttpClientResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
};

class HttpClient {
 public:
  using Callback = std::function<void(Result<HttpClientResponse>)>;
  using RequestId = uint64_t;

  struct Options {
    size_t maxIdlePerHost = 8;
    Duration idleTimeout = std::chrono::seconds(30);
  };

  explicit HttpClient(EventLoop& loop);
  HttpClient(EventLoop& loop, Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request. Errors reach `cb` with readable messages:
  //   "connect 127.0.0.1:8080: Connection refused"
  //   "connect 127.0.0.1:8080: timed out after 3000ms"
  //   "request to 127.0.0.1:8080 timed out after 10000ms"
  //   "invalid HTTP response from 127.0.0.1:8080: <llhttp reason>"
  //   "connection to 127.0.0.1:8080 closed before the response completed"
  //   "response body from 127.0.0.1:8080 exceeds N bytes"
  //   "invalid host \"x\": expected an IP address"
  // A pooled connection that the server closed while idle is retried once on
  // a fresh connection when no response byte had arrived yet.
  RequestId request(HttpClientRequest req, Callback cb);

  // Cancels a request in flight; its callback will not run. Returns false
  // if it already completed.
  bool cancel(RequestId id);

  size_t inFlight() const;
  size_t idleConnections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sbx::http
