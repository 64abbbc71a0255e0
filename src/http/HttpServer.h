#pragma once
// HttpServer: HTTP/1.1 on the EventLoop with llhttp. Keep-alive, pipelining
// (one request at a time per connection, responses in order), Content-Length
// and chunked request bodies, Expect: 100-continue, HEAD, JSON 404/405, and
// limits on everything a client controls (header bytes, body bytes,
// connections, time to send headers, time to send the body, idle time).
//
// Handlers get a shared HttpExchange: respond now, or keep the pointer and
// respond later from the loop thread (after a worker-pool job). If the client
// goes away first, respond() is a no-op and onClose() callbacks run.
//
// Loop-thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/Result.h"
#include "http/AccessLog.h"
#include "http/HttpMessage.h"
#include "http/HttpRequest.h"
#include "http/Router.h"
#include "reactor/EventLoop.h"

namespace sbx::http {

class HttpConnection;
class HttpServer;

struct HttpServerOptions {
  size_t maxHeaderBytes = 16 * 1024;  // request line + headers → 431
  size_t maxHeaderCount = 100;        // → 431
  size_t maxBodyBytes = 1 << 20;      // → 413
  size_t maxConnections = 10000;      // at it: the longest idle connection is closed
                                      // for the newcomer; none idle: 503 and close
  Duration headerTimeout = std::chrono::seconds(10);  // first byte → end of headers: 408
  Duration bodyTimeout = std::chrono::seconds(30);    // end of headers → end of body: 408
  Duration idleTimeout = std::chrono::seconds(60);    // keep-alive wait: close
  Duration writeTimeout = std::chrono::seconds(60);   // client not reading: close
  size_t outputHighWater = 256 * 1024;  // streaming: write() returns false above
  int backlog = 4096;
};

// One request and its response.
class HttpExchange {
 public:
  const HttpRequest& request() const { return req_; }
  HttpRequest& request() { return req_; }

  // Sends a complete response with Content-Length. `contentType` empty: no
  // Content-Type. Ignored when already responded or the client is gone.
  void respond(int status, std::string_view body, std::string_view contentType = "application/json",
               const HttpHeaders* extra = nullptr);
  // {"error": message} with `status`.
  void respondError(int status, std::string_view message, const HttpHeaders* extra = nullptr);

  // Streaming (chunked transfer encoding): beginStream, write*, end.
  void beginStream(int status, std::string_view contentType, const HttpHeaders* extra = nullptr);
  // Queues `data` as one chunk. Returns false when the client's unsent data
  // is above the high-water mark: stop and wait for the onDrain callback.
  bool write(std::string_view data);
  void end();
  // Runs when buffered output drops below the high-water mark again.
  void onDrain(std::function<void()> cb) { onDrain_ = std::move(cb); }
  // Runs if the connection closes before the response is complete.
  void onClose(std::function<void()> cb) { onClose_ = std::move(cb); }

  bool responded() const { return state_ != State::Pending && state_ != State::Streaming; }
  bool streaming() const { return state_ == State::Streaming; }
  bool clientGone() const { return conn_ == nullptr; }

 private:
  friend class HttpConnection;
  enum class State { Pending, Streaming, Done };

  void reset();

  HttpConnection* conn_ = nullptr;
  HttpRequest req_;
  State state_ = State::Pending;
  bool head_ = false;  // HEAD request: no body bytes on the wire
  int status_ = 0;
  uint64_t bodyBytes_ = 0;
  std::function<void()> onDrain_;
  std::function<void()> onClose_;
};

class HttpServer {
 public:
  HttpServer(EventLoop& loop, Router& router, HttpServerOptions options = {},
             AccessLog* accessLog = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. `addr`: ":8080", "0.0.0.0:8080", "127.0.0.1:0",
  // "[::1]:8080". Errors name the address and errno.
  Status listen(std::string_view addr);
  // The bound port (useful after ":0").
  uint16_t port() const { return port_; }

  // Graceful stop: closes the listener, closes idle connections, lets
  // in-flight requests finish (their responses carry Connection: close),
  // force-closes whatever is left after `grace`, then calls `done` (from the
  // loop, never inside this call).
  void shutdown(Duration grace, std::function<void()> done);

  // Serves an already-connected stream socket (non-blocking) as if it had
  // been accepted: for in-process clients such as the fuzz harnesses, which
  // write requests into one end of a socketpair. The connection cap applies.
  void adopt(Fd fd);

  size_t connectionCount() const { return conns_.size(); }
  const HttpServerOptions& options() const { return options_; }

  // Counters, for tests and metrics.
  struct Counters {
    uint64_t accepted = 0;
    uint64_t rejectedOverCap = 0;
    uint64_t evictedIdle = 0;  // idle connections closed at the cap for a newcomer
    uint64_t requests = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  friend class HttpConnection;
  void onAcceptable();
  void rejectOverCap(int fd);
  // At the cap: closes the connection idle the longest. False if
  // every connection is busy.
  bool evictIdle();
  void connectionClosed(HttpConnection* c);
  void maybeFinishShutdown();

  EventLoop& loop_;
  Router& router_;
  HttpServerOptions options_;
  AccessLog* accessLog_;
  Fd listenFd_;
  IoWatcher listenWatcher_;
  Fd reserveFd_;  // released to accept-and-close when out of fds (EMFILE)
  uint16_t port_ = 0;
  std::unordered_map<HttpConnection*, std::unique_ptr<HttpConnection>> conns_;
  bool shuttingDown_ = false;
  std::function<void()> shutdownDone_;
  Timer shutdownTimer_;
  Counters counters_;
};

// Parses ":8080", "1.2.3.4:80", "[::1]:80" into a sockaddr. Exposed for
// tests and for the daemons' configuration checks.
struct ListenAddress {
  std::string host;  // "" = any
  uint16_t port = 0;
  bool ipv6 = false;
};
Result<ListenAddress> parseListenAddress(std::string_view addr);

}  // namespace sbx::http
