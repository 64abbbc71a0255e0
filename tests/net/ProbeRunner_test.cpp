// ProbeRunner against listeners and HTTP servers of the test's own on
// 127.0.0.1 (port 0), all on one EventLoop. Periods of a few tens of
// milliseconds keep the suite fast; waits are on conditions with deadlines.

#include "net/ProbeRunner.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../TestUtil.h"
#include "http/HttpClient.h"
#include "http/HttpServer.h"
#include "http/Router.h"
#include "reactor/EventLoop.h"

namespace {

using namespace std::chrono_literals;
using sbx::EventLoop;
using sbx::Fd;
using sbx::IoWatcher;
using sbx::net::ProbeOutcome;
using sbx::net::ProbeRunner;
using sbx::net::ProbeSpec;
using sbx::test::runUntil;
using Kind = ProbeOutcome::Kind;

// Turns the loop until `done`, for 2 s at most (a passing test never comes
// near that).
bool waitFor(EventLoop& loop, const std::function<bool()>& done) {
  return runUntil(loop, done, 2000ms);
}

// Turns the loop for `d` of wall time: only to show that nothing happens.
void runFor(EventLoop& loop, std::chrono::milliseconds d) {
  const std::function<bool()> never = [] { return false; };
  runUntil(loop, never, d);
}

uint16_t localPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);
}

// A socket bound to 127.0.0.1:0, not listening yet.
Fd boundSocket() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

// A TCP listener on the loop that accepts and closes (or, with `hold`,
// accepts and keeps the connection open without a word).
class Listener {
 public:
  Listener(EventLoop& loop, bool hold = false) : fd_(boundSocket()), hold_(hold) {
    REQUIRE(::listen(fd_.get(), 128) == 0);
    port_ = localPort(fd_.get());
    watcher_ = loop.watch(fd_.get(), EPOLLIN, [this](uint32_t) {
      int c;
      while ((c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        ++accepted;
        if (hold_) {
          held_.emplace_back(c);
        } else {
          ::close(c);
        }
      }
    });
  }
  uint16_t port() const { return port_; }
  int accepted = 0;

 private:
  Fd fd_;
  bool hold_;
  uint16_t port_ = 0;
  IoWatcher watcher_;
  std::vector<Fd> held_;
};

// Records what a probe reported.
struct Outcomes {
  std::vector<ProbeOutcome> all;
  ProbeRunner::Callback cb() {
    return [this](const ProbeOutcome& o) { all.push_back(o); };
  }
  bool has(Kind k) const {
    for (const auto& o : all) {
      if (o.kind == k) return true;
    }
    return false;
  }
  size_t count(Kind k) const {
    size_t n = 0;
    for (const auto& o : all) n += o.kind == k;
    return n;
  }
};

ProbeSpec tcpSpec(uint16_t port) {
  ProbeSpec s;
  s.protocol = ProbeSpec::Protocol::Tcp;
  s.host = "127.0.0.1";
  s.port = port;
  s.period = 20ms;
  s.timeout = 200ms;
  return s;
}

ProbeSpec httpSpec(uint16_t port, std::string path) {
  ProbeSpec s = tcpSpec(port);
  s.protocol = ProbeSpec::Protocol::Http;
  s.path = std::move(path);
  return s;
}

// Tests that look at timing want the first attempt exactly at initialDelay.
ProbeRunner::Options noJitter() {
  ProbeRunner::Options o;
  o.maxStartJitter = sbx::Duration::zero();
  o.tickSlot = sbx::Duration::zero();
  return o;
}

std::string key(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// An HTTP server with scripted routes on the test's loop.
struct HttpTarget {
  explicit HttpTarget(EventLoop& loop) : server(loop, router) {}
  void start() { REQUIRE(server.listen("127.0.0.1:0").ok()); }
  sbx::http::Router router;
  sbx::http::HttpServer server;
};

}  // namespace

TEST_CASE("ProbeRunner tcp: Ready after successThreshold successes, once") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Listener target(loop);
  Outcomes out;
  ProbeSpec spec = tcpSpec(target.port());
  spec.successThreshold = 2;
  auto id = runner.start(spec, out.cb());
  REQUIRE(id.ok());
  CHECK(runner.active() == 1);
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  CHECK(out.all[0].kind == Kind::Ready);
  CHECK(out.all[0].message.empty());
  CHECK(runner.stats().successes == 2);
  // It keeps probing after Ready, and says Ready only once.
  REQUIRE(waitFor(loop, [&] { return runner.stats().attempts >= 5; }));
  CHECK(out.all.size() == 1);
  CHECK(runner.stats().failures == 0);
  CHECK(runner.active() == 1);
  // The listener saw the connections (the probe connects, it does not fake).
  REQUIRE(waitFor(loop, [&] { return target.accepted >= 2; }));
  runner.stop(*id);
  CHECK(runner.active() == 0);
}

TEST_CASE("ProbeRunner tcp: a closed port fails after failureThreshold, then stops") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Fd reserved = boundSocket();  // bound, never listening: connect gets a RST
  const uint16_t port = localPort(reserved.get());
  Outcomes out;
  ProbeSpec spec = tcpSpec(port);
  spec.failureThreshold = 3;
  REQUIRE(runner.start(spec, out.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  REQUIRE(out.all.size() == 1);
  CHECK(out.all[0].kind == Kind::Failed);
  CHECK(out.all[0].message ==
        "readiness probe failed 3 times: tcp " + key(port) + ": connection refused");
  CHECK(runner.stats().attempts == 3);
  CHECK(runner.stats().failures == 3);
  CHECK(runner.active() == 0);
  runFor(loop, 100ms);
  CHECK(runner.stats().attempts == 3);
  CHECK(out.all.size() == 1);
}

TEST_CASE("ProbeRunner tcp: a success in the middle resets the failure streak") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client, noJitter());
  Fd sock = boundSocket();
  const uint16_t port = localPort(sock.get());
  Outcomes out;
  ProbeSpec spec = tcpSpec(port);
  spec.failureThreshold = 2;
  spec.successThreshold = 1;
  REQUIRE(runner.start(spec, out.cb()).ok());
  // One refused attempt, then the port starts listening: Ready, no Failed.
  REQUIRE(waitFor(loop, [&] { return runner.stats().failures == 1; }));
  REQUIRE(::listen(sock.get(), 16) == 0);
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  CHECK(out.all[0].kind == Kind::Ready);
  CHECK(runner.stats().failures == 1);
}

TEST_CASE("ProbeRunner: the first attempt waits for initialDelay") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client, noJitter());
  Listener target(loop);
  Outcomes out;
  ProbeSpec spec = tcpSpec(target.port());
  spec.initialDelay = 150ms;
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(runner.start(spec, out.cb()).ok());
  runFor(loop, 80ms);
  CHECK(runner.stats().attempts == 0);
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  CHECK(out.all[0].kind == Kind::Ready);
  CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
}

TEST_CASE("ProbeRunner: start jitter stays within the first period") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);  // default: jitter up to one period
  Listener target(loop);
  Outcomes out;
  ProbeSpec spec = tcpSpec(target.port());
  spec.period = 100ms;
  spec.initialDelay = 50ms;
  constexpr int kProbes = 20;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::chrono::steady_clock::duration> readyAt;
  for (int i = 0; i < kProbes; ++i) {
    REQUIRE(runner
                .start(spec,
                       [&](const ProbeOutcome&) {
                         readyAt.push_back(std::chrono::steady_clock::now() - t0);
                       })
                .ok());
  }
  REQUIRE(waitFor(loop, [&] { return readyAt.size() == kProbes; }));
  auto [lo, hi] = std::minmax_element(readyAt.begin(), readyAt.end());
  CHECK(*lo >= 50ms);
  // Spread out, not one burst (20 uniform draws over 100 ms: a spread under
  // 20 ms has a probability of about 1e-12).
  CHECK(*hi - *lo >= 20ms);
}

TEST_CASE("ProbeRunner tcp: a socket is reused after a success, never after a failure") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client, noJitter());
  Listener target(loop);
  Outcomes out;
  REQUIRE(runner.start(tcpSpec(target.port()), out.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return runner.stats().successes >= 6 && target.accepted >= 6; }));
  // Every attempt was a real connection (the listener accepted each), over
  // one socket.
  CHECK(runner.stats().socketsOpened == 1);
  CHECK(runner.stats().failures == 0);

  Fd reserved = boundSocket();  // never listening: refused
  ProbeSpec closed = tcpSpec(localPort(reserved.get()));
  closed.failureThreshold = 3;
  Outcomes failed;
  const uint64_t before = runner.stats().socketsOpened;
  REQUIRE(runner.start(closed, failed.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return !failed.all.empty(); }));
  CHECK(failed.all[0].kind == Kind::Failed);
  // The first took the spare (or a new one); the other two were new, as
  // a refused socket is closed, not kept.
  CHECK(runner.stats().socketsOpened - before >= 2);
}

TEST_CASE("ProbeRunner: ticks are rounded up to the slot, so due probes run in one turn") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner::Options o = noJitter();
  o.tickSlot = 100ms;
  ProbeRunner runner(loop, client, o);
  Listener target(loop);
  std::vector<sbx::TimePoint> readyAt;
  ProbeSpec spec = tcpSpec(target.port());
  spec.period = 1s;
  // Four probes started 15 ms apart: at most two slots' worth of starts.
  std::vector<sbx::Timer> starts;
  for (int i = 0; i < 4; ++i) {
    starts.push_back(loop.runAfter(std::chrono::milliseconds(15 * i), [&] {
      REQUIRE(runner.start(spec, [&](const ProbeOutcome&) { readyAt.push_back(loop.now()); }).ok());
    }));
  }
  REQUIRE(waitFor(loop, [&] { return readyAt.size() == 4; }));
  for (sbx::TimePoint t : readyAt) {
    // Each first attempt ran at a slot boundary (give the loop 5 ms to wake).
    CHECK(t.time_since_epoch() % std::chrono::milliseconds(100) < 5ms);
  }
  // 45 ms of starts cover at most two slots.
  auto [lo, hi] = std::minmax_element(readyAt.begin(), readyAt.end());
  CHECK(*hi - *lo <= 105ms);
}

TEST_CASE("ProbeRunner tcp: a connect that never completes times out") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  // Linux drops SYNs while the accept queue is over its backlog: a backlog
  // of 0 and one queued, never-accepted connection make a blackhole port.
  Fd listener = boundSocket();
  REQUIRE(::listen(listener.get(), 0) == 0);
  const uint16_t port = localPort(listener.get());
  Fd filler(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::connect(filler.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  auto queued = [&] {
    tcp_info info{};
    socklen_t len = sizeof info;
    return ::getsockopt(listener.get(), IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
           info.tcpi_unacked >= 1;
  };
  REQUIRE(waitFor(loop, queued));

  Outcomes out;
  ProbeSpec spec = tcpSpec(port);
  spec.timeout = 30ms;
  spec.failureThreshold = 2;
  REQUIRE(runner.start(spec, out.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  CHECK(out.all[0].kind == Kind::Failed);
  CHECK(out.all[0].message ==
        "readiness probe failed 2 times: tcp " + key(port) + ": timed out after 30ms");
  // These took the slow path: epoll registration and a timeout timer.
  CHECK(runner.stats().pendingConnects == 2);
}

TEST_CASE("ProbeRunner http: 200 is Ready, a 302 is Ready without following it") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  HttpTarget target(loop);
  int okHits = 0, redirectHits = 0, failHits = 0;
  std::string userAgent;
  target.router.add("GET", "/healthz", [&](const sbx::http::ExchangePtr& ex) {
    ++okHits;
    if (const std::string* ua = ex->request().headers.find("User-Agent")) userAgent = *ua;
    ex->respond(200, "ok", "text/plain");
  });
  target.router.add("GET", "/moved", [&](const sbx::http::ExchangePtr& ex) {
    ++redirectHits;
    sbx::http::HttpHeaders extra;
    extra.add("Location", "/fail");
    ex->respond(302, "", "", &extra);
  });
  target.router.add("GET", "/fail", [&](const sbx::http::ExchangePtr& ex) {
    ++failHits;
    ex->respond(500, "broken", "text/plain");
  });
  target.start();

  Outcomes ok, moved;
  ProbeSpec a = httpSpec(target.server.port(), "/healthz");
  a.successThreshold = 2;
  REQUIRE(runner.start(a, ok.cb()).ok());
  ProbeSpec b = httpSpec(target.server.port(), "/moved");
  REQUIRE(runner.start(b, moved.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return !ok.all.empty() && !moved.all.empty(); }));
  CHECK(ok.all[0].kind == Kind::Ready);
  CHECK(okHits >= 2);
  CHECK(userAgent == "sbxlet-probe/1.0");
  CHECK(moved.all[0].kind == Kind::Ready);
  CHECK(redirectHits >= 1);
  CHECK(failHits == 0);  // the Location was not followed
  // keepAlive=false: nothing pooled between attempts.
  CHECK(client.idleConnections() == 0);
}

TEST_CASE("ProbeRunner http: 500 fails with the status in the message") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  HttpTarget target(loop);
  target.router.add("GET", "/healthz",
                    [](const sbx::http::ExchangePtr& ex) { ex->respond(500, "no", "text/plain"); });
  target.start();
  Outcomes out;
  ProbeSpec spec = httpSpec(target.server.port(), "/healthz");
  spec.failureThreshold = 2;
  REQUIRE(runner.start(spec, out.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  REQUIRE(out.all.size() == 1);
  CHECK(out.all[0].kind == Kind::Failed);
  CHECK(out.all[0].message == "readiness probe failed 2 times: http GET http://" +
                                  key(target.server.port()) + "/healthz: status 500");
  CHECK(runner.active() == 0);
}

TEST_CASE("ProbeRunner http: refused connections read plainly") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Fd reserved = boundSocket();
  const uint16_t port = localPort(reserved.get());
  Outcomes out;
  ProbeSpec spec = httpSpec(port, "/healthz");
  spec.failureThreshold = 1;
  REQUIRE(runner.start(spec, out.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return !out.all.empty(); }));
  CHECK(out.all[0].message == "readiness probe failed 1 time: http GET http://" + key(port) +
                                  "/healthz: connection refused");
}

TEST_CASE("ProbeRunner http: a server that turns to 500 after Ready gives Failed") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  HttpTarget target(loop);
  bool broken = false;
  target.router.add("GET", "/healthz", [&](const sbx::http::ExchangePtr& ex) {
    ex->respond(broken ? 500 : 200, "", "text/plain");
  });
  target.start();
  Outcomes out;
  ProbeSpec spec = httpSpec(target.server.port(), "/healthz");
  spec.failureThreshold = 3;
  REQUIRE(runner.start(spec, out.cb()).ok());
  REQUIRE(waitFor(loop, [&] { return out.has(Kind::Ready); }));
  broken = true;
  const auto failuresBefore = runner.stats().failures;
  REQUIRE(waitFor(loop, [&] { return out.has(Kind::Failed); }));
  REQUIRE(out.all.size() == 2);
  CHECK(out.all[0].kind == Kind::Ready);
  CHECK(out.all[1].kind == Kind::Failed);
  CHECK(out.all[1].message == "readiness probe failed 3 times: http GET http://" +
                                  key(target.server.port()) + "/healthz: status 500");
  CHECK(runner.stats().failures - failuresBefore == 3);
  CHECK(runner.active() == 0);
}

TEST_CASE("ProbeRunner http: a server that never answers times out; attempts never overlap") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Listener silent(loop, /*hold=*/true);
  Outcomes out;
  ProbeSpec spec = httpSpec(silent.port(), "/healthz");
  // timeout > period: ticks come while an attempt runs.
  spec.period = 10ms;
  spec.timeout = 40ms;
  spec.failureThreshold = 3;
  REQUIRE(runner.start(spec, out.cb()).ok());
  size_t maxInFlight = 0;
  REQUIRE(waitFor(loop, [&] {
    maxInFlight = std::max(maxInFlight, client.inFlight());
    return !out.all.empty();
  }));
  CHECK(out.all[0].kind == Kind::Failed);
  CHECK(out.all[0].message == "readiness probe failed 3 times: http GET http://" +
                                  key(silent.port()) + "/healthz: timed out after 40ms");
  CHECK(maxInFlight == 1);
  CHECK(silent.accepted == 3);  // one connection per attempt, none in parallel
  CHECK(runner.stats().attempts == 3);
  CHECK(runner.stats().delayedTicks >= 2);
  CHECK(client.inFlight() == 0);
}

TEST_CASE("ProbeRunner: stop() cancels; no callback afterwards") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Fd reserved = boundSocket();
  Listener silent(loop, /*hold=*/true);
  Outcomes refused, hung;
  ProbeSpec a = tcpSpec(localPort(reserved.get()));
  a.failureThreshold = 3;
  auto ida = runner.start(a, refused.cb());
  ProbeSpec b = httpSpec(silent.port(), "/");
  b.timeout = 500ms;
  b.failureThreshold = 1;
  auto idb = runner.start(b, hung.cb());
  REQUIRE(ida.ok());
  REQUIRE(idb.ok());
  REQUIRE(waitFor(loop, [&] { return runner.stats().failures >= 1 && client.inFlight() == 1; }));
  runner.stop(*ida);
  runner.stop(*idb);  // with its request in flight
  runner.stop(*idb);  // idempotent
  runner.stop(12345);
  CHECK(runner.active() == 0);
  CHECK(client.inFlight() == 0);
  const auto attempts = runner.stats().attempts;
  runFor(loop, 150ms);
  CHECK(refused.all.empty());
  CHECK(hung.all.empty());
  CHECK(runner.stats().attempts == attempts);
}

TEST_CASE("ProbeRunner: a callback may stop its own probe and others") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Listener target(loop);
  Listener silent(loop, /*hold=*/true);
  int calls = 0;
  ProbeRunner::ProbeId self = 0;
  auto other = runner.start(httpSpec(silent.port(), "/"), [&](const ProbeOutcome&) { ++calls; });
  REQUIRE(other.ok());
  auto started = runner.start(tcpSpec(target.port()), [&](const ProbeOutcome& o) {
    ++calls;
    CHECK(o.kind == Kind::Ready);
    runner.stop(self);
    runner.stop(*other);
  });
  REQUIRE(started.ok());
  self = *started;
  REQUIRE(waitFor(loop, [&] { return calls > 0; }));
  CHECK(runner.active() == 0);
  const auto attempts = runner.stats().attempts;
  runFor(loop, 100ms);
  CHECK(calls == 1);
  CHECK(runner.stats().attempts == attempts);
  CHECK(client.inFlight() == 0);
}

TEST_CASE("ProbeRunner: a Failed callback may start a new probe") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  Fd reserved = boundSocket();
  Listener target(loop);
  Outcomes second;
  bool failed = false;
  ProbeSpec a = tcpSpec(localPort(reserved.get()));
  a.failureThreshold = 1;
  REQUIRE(runner
              .start(a,
                     [&](const ProbeOutcome& o) {
                       failed = o.kind == Kind::Failed;
                       REQUIRE(runner.start(tcpSpec(target.port()), second.cb()).ok());
                     })
              .ok());
  REQUIRE(waitFor(loop, [&] { return second.has(Kind::Ready); }));
  CHECK(failed);
  CHECK(runner.active() == 1);
}

TEST_CASE("ProbeRunner: destroying the runner cancels attempts in flight") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  Listener silent(loop, /*hold=*/true);
  Outcomes out;
  {
    ProbeRunner runner(loop, client);
    ProbeSpec spec = httpSpec(silent.port(), "/");
    spec.timeout = 500ms;
    spec.failureThreshold = 1;
    REQUIRE(runner.start(spec, out.cb()).ok());
    REQUIRE(runner.start(spec, out.cb()).ok());
    REQUIRE(waitFor(loop, [&] { return client.inFlight() == 2; }));
  }
  CHECK(client.inFlight() == 0);
  runFor(loop, 100ms);
  CHECK(out.all.empty());
}

TEST_CASE("ProbeRunner: invalid specs are refused") {
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner runner(loop, client);
  auto check = [&](ProbeSpec s, const std::string& message) {
    auto r = runner.start(std::move(s), [](const ProbeOutcome&) {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.message() == message);
  };
  ProbeSpec good = httpSpec(8080, "/healthz");
  good.host = "10.89.0.5";
  CHECK(runner.start(good, [](const ProbeOutcome&) {}).ok());

  ProbeSpec s = good;
  s.host = "sandbox.local";
  check(s, "invalid probe: host \"sandbox.local\" is not an IPv4 address");
  s = good;
  s.port = 0;
  check(s, "invalid probe: port must be 1-65535");
  s = good;
  s.path = "healthz";
  check(s,
        "invalid probe: path \"healthz\" must start with '/' and hold no spaces or control "
        "characters");
  s = good;
  s.period = 0ms;
  check(s, "invalid probe: period must be positive");
  s = good;
  s.timeout = -1ms;
  check(s, "invalid probe: timeout must be positive");
  s = good;
  s.successThreshold = 0;
  check(s, "invalid probe: successThreshold must be >= 1");
  s = good;
  s.failureThreshold = 0;
  check(s, "invalid probe: failureThreshold must be >= 1");
  CHECK(runner.active() == 1);
}
