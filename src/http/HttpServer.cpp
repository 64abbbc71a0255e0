#include "http/HttpServer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "http/HttpConnection.h"
#include "json/JsonWriter.h"

namespace sbx::http {

Result<ListenAddress> parseListenAddress(std::string_view addr) {
  ListenAddress out;
  std::string_view portPart;
  if (!addr.empty() && addr[0] == '[') {
    size_t close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
      return Error("invalid listen address \"" + std::string(addr) + "\": expected [ipv6]:port");
    }
    out.host = std::string(addr.substr(1, close - 1));
    out.ipv6 = true;
    portPart = addr.substr(close + 2);
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) {
      return Error("invalid listen address \"" + std::string(addr) + "\": expected host:port");
    }
    out.host = std::string(addr.substr(0, colon));
    portPart = addr.substr(colon + 1);
  }
  unsigned port = 0;
  auto r = std::from_chars(portPart.data(), portPart.data() + portPart.size(), port);
  if (portPart.empty() || r.ec != std::errc() || r.ptr != portPart.data() + portPart.size() ||
      port > 65535) {
    return Error("invalid listen address \"" + std::string(addr) + "\": bad port");
  }
  out.port = static_cast<uint16_t>(port);
  if (!out.host.empty()) {
    unsigned char buf[16];
    int family = out.ipv6 ? AF_INET6 : AF_INET;
    if (out.host == "localhost") out.host = "127.0.0.1";
    if (::inet_pton(family, out.host.c_str(), buf) != 1) {
      return Error("invalid listen address \"" + std::string(addr) + "\": host must be an IP address");
    }
  }
  return out;
}

HttpServer::HttpServer(EventLoop& loop, Router& router, HttpServerOptions options,
                       AccessLog* accessLog)
    : loop_(loop), router_(router), options_(options), accessLog_(accessLog) {
  reserveFd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

HttpServer::~HttpServer() {
  listenWatcher_.reset();
  std::vector<HttpConnection*> all;
  for (auto& [p, c] : conns_) all.push_back(p);
  for (HttpConnection* c : all) c->close();
}

Status HttpServer::listen(std::string_view addr) {
  loop_.assertInLoopThread();
  auto parsed = parseListenAddress(addr);
  if (!parsed) return parsed.error();
  const ListenAddress& a = *parsed;
  sockaddr_storage ss{};
  socklen_t len;
  if (a.ipv6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a.port);
    if (a.host.empty()) {
      s6->sin6_addr = in6addr_any;
    } else {
      ::inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr);
    }
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a.port);
    if (a.host.empty()) {
      s4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else {
      ::inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr);
    }
    len = sizeof *s4;
  }
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return Error("listen " + std::string(addr) + ": bind: " + std::strerror(errno));
  }
  if (::listen(fd.get(), options_.backlog) != 0) {
    return Error("listen " + std::string(addr) + ": " + std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listenFd_ = std::move(fd);
  listenWatcher_ = loop_.watch(listenFd_.get(), EPOLLIN, [this](uint32_t) { onAcceptable(); });
  return {};
}

void HttpServer::onAcceptable() {
  // Bounded per turn so a connection storm cannot starve established
  // connections; level-triggered epoll brings us back for the rest.
  for (int i = 0; i < 256; ++i) {
    int fd = ::accept4(listenFd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && reserveFd_) {
        // Out of descriptors: without this the listener stays readable and
        // the loop spins. Free the reserve, accept, close, take it back.
        reserveFd_.reset();
        Fd drop(::accept4(listenFd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        drop.reset();
        reserveFd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        ++counters_.rejectedOverCap;
        continue;
      }
      return;  // EAGAIN, or an error the next readiness will retry
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    adopt(Fd(fd));
  }
}

void HttpServer::adopt(Fd fd) {
  ++counters_.accepted;
  if (conns_.size() >= options_.maxConnections && !evictIdle()) {
    rejectOverCap(fd.release());
    return;
  }
  auto conn = std::make_unique<HttpConnection>(*this, std::move(fd));
  HttpConnection* raw = conn.get();
  conns_.emplace(raw, std::move(conn));
  raw->start();
}

bool HttpServer::evictIdle() {
  // A linear scan, only at the cap: ten thousand connections take ~20 µs,
  // and keeping an ordered idle list would cost every request instead.
  HttpConnection* victim = nullptr;
  for (const auto& [c, owned] : conns_) {
    if (c->idle() && (!victim || c->idleSince() < victim->idleSince())) victim = c;
  }
  if (!victim) return false;
  ++counters_.evictedIdle;
  victim->close();
  return true;
}

void HttpServer::rejectOverCap(int rawFd) {
  Fd fd(rawFd);
  ++counters_.rejectedOverCap;
  static const std::string kResponse = [] {
    std::string body = json::errorBody("too many connections, retry later");
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }();
  // Best effort: a fresh socket's send buffer takes this whole.
  ssize_t n = ::send(fd.get(), kResponse.data(), kResponse.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
  ::shutdown(fd.get(), SHUT_WR);
}

void HttpServer::connectionClosed(HttpConnection* c) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  std::unique_ptr<HttpConnection> owned = std::move(it->second);
  conns_.erase(it);
  loop_.deferDelete(std::move(owned));
  if (shuttingDown_) maybeFinishShutdown();
}

void HttpServer::shutdown(Duration grace, std::function<void()> done) {
  loop_.assertInLoopThread();
  shuttingDown_ = true;
  shutdownDone_ = std::move(done);
  listenWatcher_.reset();
  listenFd_.reset();
  std::vector<HttpConnection*> all;
  for (auto& [p, c] : conns_) all.push_back(p);
  for (HttpConnection* c : all) c->shutdownGracefully();
  shutdownTimer_ = loop_.runAfter(grace, [this] {
    std::vector<HttpConnection*> left;
    for (auto& [p, c] : conns_) left.push_back(p);
    for (HttpConnection* c : left) c->close();
    maybeFinishShutdown();
  });
  maybeFinishShutdown();
}

void HttpServer::maybeFinishShutdown() {
  if (!conns_.empty() || !shutdownDone_) return;
  shutdownTimer_.cancel();
  auto done = std::move(shutdownDone_);
  shutdownDone_ = nullptr;
  loop_.defer(std::move(done));
}

}  // namespace sbx::http
