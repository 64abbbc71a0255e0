// HttpClient against a raw test server on the same EventLoop. The server
// speaks just enough HTTP/1.1 (request line, headers, Content-Length body)
// for each test to script its answer byte by byte, including wrong ones.
// No sleeps: tests turn the loop until a condition holds or a deadline
// passes.

#include "http/HttpClient.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using sbx::Duration;
using sbx::EventLoop;
using sbx::Fd;
using sbx::IoWatcher;
using sbx::Result;
using sbx::Timer;
using sbx::http::HttpClient;
using sbx::http::HttpClientRequest;
using sbx::http::HttpClientResponse;

using Outcome = std::optional<Result<HttpClientResponse>>;

// Turns the loop until `done` or ~10 s of wall time (a generous bound that a
// passing test never comes near).
bool runUntil(EventLoop& loop, const std::function<bool()>& done,
              std::chrono::steady_clock::duration limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    loop.runOnce(10ms);
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}

uint16_t localPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// Binds a loopback socket (port 0) and returns it, unlistened.
Fd boundSocket(int family) {
  Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Fd();
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) return Fd();
  return fd;
}

struct RawRequest {
  std::string method;
  std::string target;
  std::string head;  // request line and headers, as received
  std::string body;

  bool hasHeaderLine(const std::string& line) const {
    return lower(head).find("\r\n" + lower(line) + "\r\n") != std::string::npos;
  }
};

// A scriptable HTTP/1.1 server on the test's EventLoop.
class TestServer {
 public:
  struct Peer {
    Fd fd;
    IoWatcher watcher;
    std::string in;
    std::string out;
    bool open = true;
    bool closeAfterFlush = false;
    int served = 0;
  };
  // Answers one request, or not: it may send, close, or hold the peer.
  using Handler = std::function<void(TestServer&, Peer&, const RawRequest&)>;

  // `rcvbuf` > 0 shrinks the receive buffer of accepted sockets, so a big
  // request body cannot be written in one go.
  TestServer(EventLoop& loop, Handler handler, int family = AF_INET, int rcvbuf = 0)
      : loop_(loop), handler_(std::move(handler)) {
    listener_ = boundSocket(family);
    if (listener_ && rcvbuf > 0) {
      ::setsockopt(listener_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (!listener_ || ::listen(listener_.get(), 1024) != 0) {
      listener_.reset();
      return;
    }
    port_ = localPort(listener_.get());
    watcher_ = loop_.watch(listener_.get(), EPOLLIN, [this](uint32_t) { onAccept(); });
  }

  bool ok() const { return listener_.valid(); }
  uint16_t port() const { return port_; }

  // Writes now what the socket takes, the rest when writable.
  void send(Peer& p, const std::string& data) {
    if (!p.open) return;
    p.out += data;
    flush(p);
  }
  // Sends `pieces` one loop timer apart, so the client sees them in separate
  // reads; then closes if asked.
  void sendPieces(Peer& p, std::vector<std::string> pieces, bool closeAfter = false) {
    Duration at = 0ms;
    for (auto& piece : pieces) {
      at += 2ms;
      timers_.push_back(loop_.runAfter(at, [this, &p, piece] { send(p, piece); }));
    }
    if (closeAfter) {
      timers_.push_back(loop_.runAfter(at + 2ms, [this, &p] { closeWhenFlushed(p); }));
    }
  }
  void closeWhenFlushed(Peer& p) {
    p.closeAfterFlush = true;
    if (p.out.empty()) close(p);
  }
  void close(Peer& p) {
    if (!p.open) return;
    p.open = false;
    p.watcher.reset();
    p.fd.reset();
  }
  // Closes with RST instead of FIN.
  void reset(Peer& p) {
    if (!p.open) return;
    linger l{1, 0};
    ::setsockopt(p.fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(p);
  }

  int accepted = 0;
  int requests = 0;
  int closedByClient = 0;  // peers where the server saw EOF or a reset
  std::vector<RawRequest> seen;

 private:
  void onAccept() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      ++accepted;
      auto peer = std::make_unique<Peer>();
      Peer* p = peer.get();
      p->fd.reset(fd);
      p->watcher = loop_.watch(fd, EPOLLIN, [this, p](uint32_t ev) { onPeerEvent(*p, ev); });
      peers_.push_back(std::move(peer));
    }
  }

  void onPeerEvent(Peer& p, uint32_t ev) {
    if (ev & EPOLLOUT) flush(p);
    if (!p.open || !(ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(p.fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        p.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) break;
      ++closedByClient;
      close(p);
      return;
    }
    parseRequests(p);
  }

  void parseRequests(Peer& p) {
    while (p.open) {
      size_t end = p.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      RawRequest r;
      r.head = p.in.substr(0, end + 2);
      size_t sp1 = r.head.find(' ');
      size_t sp2 = r.head.find(' ', sp1 + 1);
      r.method = r.head.substr(0, sp1);
      r.target = r.head.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t length = 0;
      std::string lowered = lower(r.head);
      size_t cl = lowered.find("\r\ncontent-length:");
      if (cl != std::string::npos) length = std::stoul(r.head.substr(cl + 17));
      if (p.in.size() < end + 4 + length) return;
      r.body = p.in.substr(end + 4, length);
      p.in.erase(0, end + 4 + length);
      ++requests;
      ++p.served;
      seen.push_back(r);
      handler_(*this, p, r);
    }
  }

  void flush(Peer& p) {
    while (p.open && !p.out.empty()) {
      ssize_t n = ::send(p.fd.get(), p.out.data(), p.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        p.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        p.watcher.setEvents(EPOLLIN | EPOLLOUT);
        return;
      }
      close(p);  // client went away
      return;
    }
    if (!p.open) return;
    p.watcher.setEvents(EPOLLIN);
    if (p.closeAfterFlush) close(p);
  }

  EventLoop& loop_;
  Handler handler_;
  Fd listener_;
  IoWatcher watcher_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Timer> timers_;
};

std::string response(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " Whatever\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" +
         body;
}

// Echoes "<method> <target>|<body>" with Content-Length, keep-alive.
void echo(TestServer& s, TestServer::Peer& p, const RawRequest& r) {
  s.send(p, response(200, r.method + " " + r.target + "|" + r.body, "X-Echo: yes\r\n"));
}

HttpClientRequest get(uint16_t port, std::string target = "/") {
  HttpClientRequest req;
  req.host = "127.0.0.1";
  req.port = port;
  req.target = std::move(target);
  return req;
}

std::string key(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Issues `req` and turns the loop until its callback ran (exactly once).
Result<HttpClientResponse> fetch(EventLoop& loop, HttpClient& client, HttpClientRequest req) {
  Outcome out;
  int calls = 0;
  client.request(std::move(req), [&](Result<HttpClientResponse> r) {
    ++calls;
    out.emplace(std::move(r));
  });
  REQUIRE(runUntil(loop, [&] { return out.has_value(); }));
  CHECK(calls == 1);
  return std::move(*out);
}

// A port nothing listens on: bound, read back, then released.
uint16_t unusedPort() {
  Fd fd = boundSocket(AF_INET);
  REQUIRE(fd.valid());
  return localPort(fd.get());
}

}  // namespace

TEST_SUITE_BEGIN("HttpClient");

TEST_CASE("GET with Content-Length: status, headers, body, request head") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto req = get(server.port(), "/path?q=1");
  req.headers.add("X-User", "u1");
  auto res = fetch(loop, client, req);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->status == 200);
  CHECK(res->body == "GET /path?q=1|");
  REQUIRE(res->headers.find("x-echo") != nullptr);
  CHECK(*res->headers.find("x-echo") == "yes");
  CHECK(*res->headers.find("Content-Length") == "14");

  REQUIRE(server.seen.size() == 1);
  const RawRequest& seen = server.seen[0];
  CHECK(seen.head.rfind("GET /path?q=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(seen.hasHeaderLine("Host: 127.0.0.1:" + std::to_string(server.port())));
  CHECK(seen.hasHeaderLine("X-User: u1"));
  CHECK(lower(seen.head).find("content-length") == std::string::npos);
  CHECK(lower(seen.head).find("connection:") == std::string::npos);
  CHECK(client.inFlight() == 0);
  CHECK(client.idleConnections() == 1);
}

TEST_CASE("POST, PUT and empty POST send Content-Length and get the body echoed") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto post = get(server.port(), "/p");
  post.method = "POST";
  post.body = "payload";
  auto res = fetch(loop, client, post);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "POST /p|payload");
  CHECK(server.seen.back().hasHeaderLine("Content-Length: 7"));

  auto empty = get(server.port(), "/e");
  empty.method = "POST";
  res = fetch(loop, client, empty);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "POST /e|");
  CHECK(server.seen.back().hasHeaderLine("Content-Length: 0"));

  // Far bigger than the server's receive buffer: partial writes resumed on
  // EPOLLOUT, and a response spread over many reads.
  TestServer small(loop, echo, AF_INET, /*rcvbuf=*/4096);
  REQUIRE(small.ok());
  auto put = get(small.port(), "/big");
  put.method = "PUT";
  put.body.resize(3u << 20);
  for (size_t i = 0; i < put.body.size(); ++i) put.body[i] = static_cast<char>('a' + i % 26);
  res = fetch(loop, client, put);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "PUT /big|" + put.body);

  // Caller-supplied framing headers are replaced by the client's own.
  auto framed = get(server.port(), "/f");
  framed.method = "POST";
  framed.body = "abc";
  framed.headers.add("Content-Length", "999");
  framed.headers.add("Connection", "close");
  res = fetch(loop, client, framed);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "POST /f|abc");
  CHECK(server.seen.back().hasHeaderLine("Content-Length: 3"));
  CHECK(lower(server.seen.back().head).find("999") == std::string::npos);
  CHECK(server.accepted == 1);
}

TEST_CASE("HEAD: Content-Length without a body, connection stays reusable") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    if (r.method == "HEAD") {
      s.send(p, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    } else {
      echo(s, p, r);
    }
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto head = get(server.port(), "/h");
  head.method = "HEAD";
  auto res = fetch(loop, client, head);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->status == 200);
  CHECK(res->body.empty());
  CHECK(*res->headers.find("content-length") == "1234");
  CHECK(client.idleConnections() == 1);

  res = fetch(loop, client, get(server.port(), "/after"));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "GET /after|");
  CHECK(server.accepted == 1);
}

TEST_CASE("chunked response split in odd pieces") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest&) {
    s.sendPieces(p, {"HTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhel",
                     "lo\r\n", "a", "\r\n0123456789\r\n0\r", "\n\r\n"});
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto res = fetch(loop, client, get(server.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->status == 200);
  CHECK(res->body == "hello0123456789");
  CHECK(*res->headers.find("X-A") == "1");
  CHECK(client.idleConnections() == 1);

  res = fetch(loop, client, get(server.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "hello0123456789");
  CHECK(server.accepted == 1);
}

TEST_CASE("close-delimited body ends at EOF") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest&) {
    s.sendPieces(p, {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ", "close"},
                 /*closeAfter=*/true);
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto res = fetch(loop, client, get(server.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "until close");
  CHECK(client.idleConnections() == 0);
}

TEST_CASE("100 Continue is skipped") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest&) {
    s.sendPieces(p, {"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n",
                     "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok"});
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto req = get(server.port());
  req.method = "POST";
  req.body = "x";
  auto res = fetch(loop, client, req);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->status == 201);
  CHECK(res->body == "ok");
  CHECK(res->headers.has("X-Final"));
  CHECK_FALSE(res->headers.has("X-Interim"));

  // Both in one segment, too.
  TestServer server2(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest&) {
    s.send(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes");
  });
  res = fetch(loop, client, get(server2.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->status == 200);
  CHECK(res->body == "yes");
  CHECK(client.idleConnections() == 2);
}

TEST_CASE("garbage and unexpected 101 are invalid responses") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    if (r.target == "/101") {
      s.send(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
    } else {
      s.send(p, "garbage garbage\r\n\r\n");
    }
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto res = fetch(loop, client, get(server.port()));
  REQUIRE_FALSE(res.ok());
  CHECK(res.message().rfind("invalid HTTP response from " + key(server.port()) + ": ", 0) == 0);
  CHECK(client.idleConnections() == 0);

  res = fetch(loop, client, get(server.port(), "/101"));
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == "invalid HTTP response from " + key(server.port()) +
                             ": unexpected 101 Switching Protocols");
}

TEST_CASE("server closes without answering, or mid-body") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    if (r.target == "/partial") {
      s.send(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
      s.closeWhenFlushed(p);
    } else if (r.target == "/rst") {
      s.reset(p);
    } else {
      s.close(p);
    }
  });
  REQUIRE(server.ok());
  HttpClient client(loop);
  const std::string closed =
      "connection to " + key(server.port()) + " closed before the response completed";

  auto res = fetch(loop, client, get(server.port(), "/"));
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == closed);

  res = fetch(loop, client, get(server.port(), "/partial"));
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == closed);

  res = fetch(loop, client, get(server.port(), "/rst"));
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == closed);
  // Fresh connections are never retried.
  CHECK(server.accepted == 3);
  CHECK(client.idleConnections() == 0);
}

TEST_CASE("request timeout when the server never answers") {
  EventLoop loop;
  TestServer server(loop, [](TestServer&, TestServer::Peer&, const RawRequest&) {});
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto req = get(server.port());
  req.timeout = 150ms;
  auto res = fetch(loop, client, req);
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == "request to " + key(server.port()) + " timed out after 150ms");
  CHECK(server.requests == 1);
  CHECK(client.inFlight() == 0);
  // The client hung up.
  CHECK(runUntil(loop, [&] { return server.closedByClient == 1; }));
}

TEST_CASE("invalid hosts and requests fail asynchronously") {
  EventLoop loop;
  HttpClient client(loop);

  for (std::string host : {"example.com", "", "[::1", "[127.0.0.1]", "1.2.3.4.5"}) {
    CAPTURE(host);
    HttpClientRequest req;
    req.host = host;
    Outcome out;
    client.request(req, [&](Result<HttpClientResponse> r) { out.emplace(std::move(r)); });
    CHECK_FALSE(out.has_value());  // never inside request()
    CHECK(client.inFlight() == 1);
    REQUIRE(runUntil(loop, [&] { return out.has_value(); }));
    REQUIRE_FALSE(out->ok());
    CHECK(out->message() == "invalid host \"" + host + "\": expected an IP address");
  }

  HttpClientRequest bad;
  bad.host = "127.0.0.1";
  bad.headers.add("X-Bad", "a\r\nInjected: 1");
  Outcome out;
  client.request(bad, [&](Result<HttpClientResponse> r) { out.emplace(std::move(r)); });
  CHECK_FALSE(out.has_value());
  REQUIRE(runUntil(loop, [&] { return out.has_value(); }));
  REQUIRE_FALSE(out->ok());
  CHECK(out->message() == "invalid request: bad header \"X-Bad\"");
  CHECK(client.inFlight() == 0);
}

TEST_CASE("localhost means 127.0.0.1 and shares its pool") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto req = get(server.port(), "/l");
  req.host = "localhost";
  auto res = fetch(loop, client, req);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "GET /l|");
  CHECK(server.seen.back().hasHeaderLine("Host: localhost:" + std::to_string(server.port())));

  res = fetch(loop, client, get(server.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(server.accepted == 1);
}

TEST_CASE("connection refused") {
  EventLoop loop;
  HttpClient client(loop);
  uint16_t port = unusedPort();

  Outcome out;
  client.request(get(port), [&](Result<HttpClientResponse> r) { out.emplace(std::move(r)); });
  CHECK_FALSE(out.has_value());
  REQUIRE(runUntil(loop, [&] { return out.has_value(); }));
  REQUIRE_FALSE(out->ok());
  CHECK(out->message() == "connect " + key(port) + ": Connection refused");
  CHECK(client.inFlight() == 0);
}

TEST_CASE("connect timeout: SYN dropped by a listener with a full accept queue") {
  EventLoop loop;
  HttpClient client(loop);
  // Linux drops SYNs while the accept queue is over its backlog: a backlog
  // of 0 and one queued, never-accepted connection make a blackhole port.
  Fd listener = boundSocket(AF_INET);
  REQUIRE(listener.valid());
  REQUIRE(::listen(listener.get(), 0) == 0);
  uint16_t port = localPort(listener.get());

  Fd filler(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::connect(filler.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  // TCP_INFO on a listener reports its accept queue length in tcpi_unacked:
  // wait for the handshake to land there so the blackhole is certain.
  auto queued = [&] {
    tcp_info info{};
    socklen_t len = sizeof info;
    return ::getsockopt(listener.get(), IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
           info.tcpi_unacked >= 1;
  };
  auto until = std::chrono::steady_clock::now() + 5s;
  while (!queued() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  REQUIRE(queued());

  auto req = get(port);
  req.connectTimeout = 100ms;
  auto res = fetch(loop, client, req);
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == "connect " + key(port) + ": timed out after 100ms");
}

TEST_CASE("maxResponseBytes") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    std::string body(100, 'z');
    if (r.target == "/chunked") {
      s.send(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (int i = 0; i < 10; ++i) s.send(p, "a\r\n" + body.substr(0, 10) + "\r\n");
      s.send(p, "0\r\n\r\n");
    } else {
      s.send(p, response(200, body));
    }
  });
  REQUIRE(server.ok());
  HttpClient client(loop);
  const std::string tooBig = "response body from " + key(server.port()) + " exceeds 99 bytes";

  auto req = get(server.port(), "/cl");
  req.maxResponseBytes = 99;
  auto res = fetch(loop, client, req);
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == tooBig);

  req.target = "/chunked";
  res = fetch(loop, client, req);
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == tooBig);

  req.maxResponseBytes = 100;  // exactly at the limit is fine
  res = fetch(loop, client, req);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body.size() == 100);
  req.target = "/cl";
  res = fetch(loop, client, req);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body.size() == 100);
}

TEST_CASE("oversized response headers") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest&) {
    s.send(p, "HTTP/1.1 200 OK\r\nX-Huge: " + std::string(300u << 10, 'h') + "\r\n\r\n");
  });
  REQUIRE(server.ok());
  HttpClient client(loop);
  auto res = fetch(loop, client, get(server.port()));
  REQUIRE_FALSE(res.ok());
  CHECK(res.message() == "response headers from " + key(server.port()) + " exceed 262144 bytes");
}

TEST_CASE("cancel") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    if (r.target != "/hang") echo(s, p, r);
  });
  REQUIRE(server.ok());
  HttpClient client(loop);
  int calls = 0;

  // In flight, request already at the server.
  auto id =
      client.request(get(server.port(), "/hang"), [&](Result<HttpClientResponse>) { ++calls; });
  REQUIRE(runUntil(loop, [&] { return server.requests == 1; }));
  CHECK(client.inFlight() == 1);
  CHECK(client.cancel(id));
  CHECK(client.inFlight() == 0);
  CHECK_FALSE(client.cancel(id));
  REQUIRE(runUntil(loop, [&] { return server.closedByClient == 1; }));

  // Still connecting.
  auto id2 = client.request(get(server.port(), "/x"), [&](Result<HttpClientResponse>) { ++calls; });
  CHECK(client.cancel(id2));

  // Failing asynchronously (invalid host): the pending failure is dropped.
  HttpClientRequest bad;
  bad.host = "nope";
  auto id3 = client.request(bad, [&](Result<HttpClientResponse>) { ++calls; });
  CHECK(client.cancel(id3));

  // A later request completes; the cancelled callbacks never ran.
  auto res = fetch(loop, client, get(server.port(), "/ok"));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(calls == 0);
  CHECK_FALSE(client.cancel(12345));

  // Cancelling a completed request.
  Outcome out;
  auto id4 = client.request(get(server.port(), "/done"),
                            [&](Result<HttpClientResponse> r) { out.emplace(std::move(r)); });
  REQUIRE(runUntil(loop, [&] { return out.has_value(); }));
  CHECK_FALSE(client.cancel(id4));
}

TEST_CASE("keep-alive: sequential requests share one connection") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  for (int i = 0; i < 5; ++i) {
    auto res = fetch(loop, client, get(server.port(), "/" + std::to_string(i)));
    REQUIRE_MESSAGE(res.ok(), res.message());
    CHECK(res->body == "GET /" + std::to_string(i) + "|");
    CHECK(client.idleConnections() == 1);
  }
  CHECK(server.accepted == 1);
  CHECK(server.requests == 5);
}

TEST_CASE("keep-alive: requests chained from callbacks reuse the connection") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  std::vector<std::string> bodies;
  std::function<void(int)> next = [&](int i) {
    client.request(get(server.port(), "/" + std::to_string(i)),
                   [&, i](Result<HttpClientResponse> r) {
                     // CHECK, not REQUIRE: no exception may unwind through the client.
                     CHECK_MESSAGE(r.ok(), (r.ok() ? "" : r.message()));
                     bodies.push_back(r.ok() ? r->body : "");
                     if (i < 4) {
                       CHECK(client.idleConnections() == 1);  // pooled before the callback
                       next(i + 1);
                     }
                   });
  };
  next(0);
  REQUIRE(runUntil(loop, [&] { return bodies.size() == 5; }));
  CHECK(bodies.back() == "GET /4|");
  CHECK(server.accepted == 1);
  CHECK(client.inFlight() == 0);
}

TEST_CASE("keepAlive=false sends Connection: close and does not pool") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto req = get(server.port());
  req.keepAlive = false;
  auto res = fetch(loop, client, req);
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(server.seen[0].hasHeaderLine("Connection: close"));
  CHECK(client.idleConnections() == 0);
  CHECK(runUntil(loop, [&] { return server.closedByClient == 1; }));
}

TEST_CASE("server Connection: close and HTTP/1.0 responses are not pooled") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    if (r.target == "/10") {
      s.send(p, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    } else {
      s.send(p, response(200, "hi", "Connection: close\r\n"));
    }
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto res = fetch(loop, client, get(server.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(client.idleConnections() == 0);
  res = fetch(loop, client, get(server.port(), "/10"));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "hi");
  CHECK(client.idleConnections() == 0);
  CHECK(server.accepted == 2);
}

TEST_CASE("an idle connection closed by the server is dropped; the next request reconnects") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    echo(s, p, r);
    s.closeWhenFlushed(p);  // keep-alive response, then hang up anyway
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  auto res = fetch(loop, client, get(server.port(), "/1"));
  REQUIRE_MESSAGE(res.ok(), res.message());
  REQUIRE(runUntil(loop, [&] { return client.idleConnections() == 0; }));

  res = fetch(loop, client, get(server.port(), "/2"));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(res->body == "GET /2|");
  CHECK(server.accepted == 2);
}

TEST_CASE("a reused connection that turns out dead is retried once on a fresh one") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    echo(s, p, r);
    if (r.target == "/rst") {
      s.reset(p);
    } else {
      s.closeWhenFlushed(p);
    }
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  for (std::string how : {"/fin", "/rst"}) {
    CAPTURE(how);
    int acceptedBefore = server.accepted;
    Outcome second;
    int secondCalls = 0;
    // The second request goes out from the first one's callback, before the
    // loop can notice the server's close: it picks the dead pooled socket.
    client.request(get(server.port(), how), [&](Result<HttpClientResponse> r) {
      CHECK(r.ok());
      CHECK(client.idleConnections() == 1);
      client.request(get(server.port(), "/second"), [&](Result<HttpClientResponse> r2) {
        ++secondCalls;
        second.emplace(std::move(r2));
      });
      CHECK(client.idleConnections() == 0);
    });
    REQUIRE(runUntil(loop, [&] { return second.has_value(); }));
    REQUIRE_MESSAGE(second->ok(), second->message());
    CHECK((*second)->body == "GET /second|");
    CHECK(secondCalls == 1);
    CHECK(server.accepted == acceptedBefore + 2);
  }
}

TEST_CASE("the retry happens only once") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    // Answer the very first request, then hang up on everything.
    if (s.requests == 1) echo(s, p, r);
    s.closeWhenFlushed(p);
  });
  REQUIRE(server.ok());
  HttpClient client(loop);

  Outcome second;
  client.request(get(server.port(), "/1"), [&](Result<HttpClientResponse> r) {
    CHECK(r.ok());
    client.request(get(server.port(), "/2"),
                   [&](Result<HttpClientResponse> r2) { second.emplace(std::move(r2)); });
  });
  REQUIRE(runUntil(loop, [&] { return second.has_value(); }));
  REQUIRE_FALSE(second->ok());
  CHECK(second->message() ==
        "connection to " + key(server.port()) + " closed before the response completed");
  CHECK(server.accepted == 2);
  CHECK(client.inFlight() == 0);
}

TEST_CASE("idle timeout and maxIdlePerHost") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient::Options options;
  options.maxIdlePerHost = 2;
  options.idleTimeout = 50ms;
  HttpClient client(loop, options);

  int done = 0;
  for (int i = 0; i < 5; ++i) {
    client.request(get(server.port()), [&](Result<HttpClientResponse> r) {
      CHECK(r.ok());
      ++done;
    });
  }
  REQUIRE(runUntil(loop, [&] { return done == 5; }));
  CHECK(server.accepted == 5);
  CHECK(client.idleConnections() == 2);
  REQUIRE(runUntil(loop, [&] { return client.idleConnections() == 0; }));
  REQUIRE(runUntil(loop, [&] { return server.closedByClient == 5; }));

  // maxIdlePerHost = 0 disables pooling.
  options.maxIdlePerHost = 0;
  HttpClient noPool(loop, options);
  auto res = fetch(loop, noPool, get(server.port()));
  REQUIRE_MESSAGE(res.ok(), res.message());
  CHECK(noPool.idleConnections() == 0);
  REQUIRE(runUntil(loop, [&] { return server.closedByClient == 6; }));
}

TEST_CASE("100 concurrent requests to one server") {
  EventLoop loop;
  TestServer server(loop, echo);
  REQUIRE(server.ok());
  HttpClient client(loop);

  constexpr int kN = 100;
  int ok = 0;
  int failed = 0;
  for (int i = 0; i < kN; ++i) {
    auto req = get(server.port(), "/" + std::to_string(i));
    req.method = "POST";
    req.body = std::string(static_cast<size_t>(i) * 10, 'b');
    std::string expected = "POST /" + std::to_string(i) + "|" + req.body;
    client.request(req, [&, expected](Result<HttpClientResponse> r) {
      if (r.ok() && r->body == expected) {
        ++ok;
      } else {
        ++failed;
      }
    });
  }
  CHECK(client.inFlight() == kN);
  REQUIRE(runUntil(loop, [&] { return ok + failed == kN; }));
  CHECK(ok == kN);
  CHECK(client.inFlight() == 0);
  CHECK(client.idleConnections() == HttpClient::Options{}.maxIdlePerHost);
  CHECK(server.requests == kN);

  // A second wave reuses the pooled connections first.
  ok = failed = 0;
  for (int i = 0; i < 8; ++i) {
    client.request(get(server.port(), "/again"), [&](Result<HttpClientResponse> r) {
      if (r.ok()) {
        ++ok;
      } else {
        ++failed;
      }
    });
  }
  CHECK(client.idleConnections() == 0);
  REQUIRE(runUntil(loop, [&] { return ok + failed == 8; }));
  CHECK(ok == 8);
  CHECK(server.accepted == kN);
}

TEST_CASE("IPv6 loopback") {
  EventLoop loop;
  TestServer server(loop, echo, AF_INET6);
  if (!server.ok()) {
    MESSAGE("skipped: cannot listen on [::1]");
    return;
  }
  HttpClient client(loop);
  const std::string port = std::to_string(server.port());

  for (std::string host : {"::1", "[::1]", "0:0:0:0:0:0:0:1"}) {
    CAPTURE(host);
    auto req = get(server.port(), "/v6");
    req.host = host;
    auto res = fetch(loop, client, req);
    REQUIRE_MESSAGE(res.ok(), res.message());
    CHECK(res->body == "GET /v6|");
  }
  CHECK(server.seen[0].hasHeaderLine("Host: [::1]:" + port));
  CHECK(server.accepted == 1);  // one canonical pool key for all spellings

  server.seen.clear();
  auto req = get(unusedPort(), "/");
  req.host = "::1";
  auto res = fetch(loop, client, req);
  REQUIRE_FALSE(res.ok());
  CHECK(res.message().rfind("connect [::1]:", 0) == 0);
}

TEST_CASE("destroying the client from a callback, and with requests in flight") {
  EventLoop loop;
  TestServer server(loop, [](TestServer& s, TestServer::Peer& p, const RawRequest& r) {
    if (r.target != "/hang") echo(s, p, r);
  });
  REQUIRE(server.ok());

  SUBCASE("from a callback, with a pooled connection and other requests pending") {
    auto client = std::make_unique<HttpClient>(loop);
    int others = 0;
    bool destroyed = false;
    client->request(get(server.port(), "/hang"), [&](Result<HttpClientResponse>) { ++others; });
    client->request(get(server.port(), "/ok"), [&](Result<HttpClientResponse> r) {
      CHECK(r.ok());
      // More that the destruction must swallow: one reusing the connection
      // just pooled, one waiting to fail asynchronously.
      client->request(get(server.port(), "/ok2"), [&](Result<HttpClientResponse>) { ++others; });
      HttpClientRequest bad;
      bad.host = "bad";
      client->request(bad, [&](Result<HttpClientResponse>) { ++others; });
      client.reset();
      destroyed = true;
    });
    REQUIRE(runUntil(loop, [&] { return destroyed; }));
    REQUIRE(runUntil(loop, [&] { return server.closedByClient == 2; }));
    // Give anything that could still fire its chance.
    for (int i = 0; i < 5; ++i) loop.runOnce(1ms);
    CHECK(others == 0);
  }

  SUBCASE("with requests in flight and idle connections") {
    int calls = 0;
    {
      HttpClient client(loop);
      auto res = fetch(loop, client, get(server.port(), "/ok"));
      REQUIRE(res.ok());
      client.request(get(server.port(), "/hang"), [&](Result<HttpClientResponse>) { ++calls; });
      client.request(get(server.port(), "/hang"), [&](Result<HttpClientResponse>) { ++calls; });
      REQUIRE(runUntil(loop, [&] { return server.requests == 3; }));
      // One more left idle in the pool.
      auto idle = fetch(loop, client, get(server.port(), "/ok"));
      REQUIRE(idle.ok());
      CHECK(client.idleConnections() == 1);
    }
    REQUIRE(runUntil(loop, [&] { return server.closedByClient == server.accepted; }));
    CHECK(calls == 0);
  }
}

TEST_SUITE_END();
