#pragma once
// Test support for the HTTP server: the server runs on its own loop thread;
// tests talk to it through blocking sockets with receive timeouts, the way a
// real client would.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "http/HttpServer.h"
#include "reactor/EventLoop.h"

namespace sbx::test {

// A server on 127.0.0.1:0 whose loop runs on a background thread.
class ServerThread {
 public:
  using Setup = std::function<void(EventLoop&, http::Router&)>;

  explicit ServerThread(Setup setup, http::HttpServerOptions options = {}) {
    std::promise<uint16_t> ready;
    auto portFuture = ready.get_future();
    thread_ = std::thread([this, setup, options, &ready] {
      EventLoop loop;
      http::Router router;
      if (setup) setup(loop, router);
      http::HttpServer server(loop, router, options, nullptr);
      Status st = server.listen("127.0.0.1:0");
      loop_ = &loop;
      server_ = &server;
      ready.set_value(st.ok() ? server.port() : 0);
      loop.run();
      server_ = nullptr;
    });
    port_ = portFuture.get();
  }

  ~ServerThread() {
    if (thread_.joinable()) {
      loop_->stop();
      thread_.join();
    }
  }

  uint16_t port() const { return port_; }
  EventLoop& loop() { return *loop_; }

  // Runs fn on the loop thread and waits for its result.
  template <class F>
  auto onLoop(F fn) -> decltype(fn(std::declval<http::HttpServer&>())) {
    using R = decltype(fn(std::declval<http::HttpServer&>()));
    std::promise<R> p;
    auto f = p.get_future();
    loop_->post([&] {
      if constexpr (std::is_void_v<R>) {
        fn(*server_);
        p.set_value();
      } else {
        p.set_value(fn(*server_));
      }
    });
    return f.get();
  }

  // Joins after the loop stops by itself (e.g. after a graceful shutdown).
  void join() { thread_.join(); }

 private:
  std::thread thread_;
  EventLoop* loop_ = nullptr;
  http::HttpServer* server_ = nullptr;
  uint16_t port_ = 0;
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::string header(const std::string& lowerName) const {
    auto it = headers.find(lowerName);
    return it == headers.end() ? "" : it->second;
  }
};

// A blocking client socket with a receive timeout.
class RawClient {
 public:
  explicit RawClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }

  bool connected() const { return connected_; }
  int fd() const { return fd_.get(); }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads more bytes into the buffer; false on EOF, error or timeout.
  bool fill() {
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n <= 0) return false;
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // True when the server closed the connection (EOF) with nothing unread.
  bool closedByPeer() {
    while (buf_.empty()) {
      char c;
      ssize_t n = ::recv(fd_.get(), &c, 1, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      buf_.push_back(c);
    }
    return false;
  }

  // Reads one response (Content-Length, chunked, or to EOF). nullopt on a
  // malformed or incomplete response. `head`: the request was HEAD.
  std::optional<Response> read(bool head = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    Response r;
    std::string headText = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t lineEnd = headText.find("\r\n");
    std::string statusLine = headText.substr(0, lineEnd);
    if (statusLine.rfind("HTTP/1.", 0) != 0 || statusLine.size() < 12) return std::nullopt;
    r.status = std::stoi(statusLine.substr(9, 3));
    size_t pos = lineEnd == std::string::npos ? headText.size() : lineEnd + 2;
    while (pos < headText.size()) {
      size_t e = headText.find("\r\n", pos);
      if (e == std::string::npos) e = headText.size();
      std::string line = headText.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t v = colon + 1;
        while (v < line.size() && line[v] == ' ') ++v;
        r.headers[name] = line.substr(v);
      }
      pos = e + 2;
    }
    if (r.status / 100 == 1) return r;  // interim
    if (head) return r;
    if (r.headers.count("content-length")) {
      size_t len = std::stoul(r.headers["content-length"]);
      while (buf_.size() < len) {
        if (!fill()) return std::nullopt;
      }
      r.body = buf_.substr(0, len);
      buf_.erase(0, len);
    } else if (r.header("transfer-encoding") == "chunked") {
      for (;;) {
        size_t e;
        while ((e = buf_.find("\r\n")) == std::string::npos) {
          if (!fill()) return std::nullopt;
        }
        size_t size = std::stoul(buf_.substr(0, e), nullptr, 16);
        while (buf_.size() < e + 2 + size + 2) {
          if (!fill()) return std::nullopt;
        }
        r.body += buf_.substr(e + 2, size);
        buf_.erase(0, e + 2 + size + 2);
        if (size == 0) break;
      }
    } else {
      while (fill()) {
      }
      r.body = buf_;
      buf_.clear();
    }
    return r;
  }

  std::optional<Response> roundTrip(std::string_view request, bool head = false) {
    if (!send(request)) return std::nullopt;
    return read(head);
  }

 private:
  Fd fd_;
  bool connected_ = false;
  std::string buf_;
};

inline std::string get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra) + "\r\n";
}

}  // namespace sbx::test
