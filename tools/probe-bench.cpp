// probe-bench: what readiness probes cost the node agent's loop thread.
//
//   probe-bench [--slot-ms MS] [N...]     (default: 1000 5000 10000)
//
// --slot-ms: the ProbeRunner's tick slot (default: its default; 0: every
// probe at its own jittered time).
//
// For each N: a target server on a thread of its own (plain TCP listeners on
// loopback addresses 127.0.1.1, 127.0.1.2, ..., 50 probes per listener, so
// no 4-tuple space runs short; it accepts and closes in a tight epoll loop),
// then a ProbeRunner with N tcp probes at a 1 s period on this thread's
// EventLoop. After a warm-up of one period (the start jitter spreads the
// probes over it) the loop runs for 10 s and the loop thread's own CPU time
// (CLOCK_THREAD_CPUTIME_ID: the server thread is not counted) is reported
// as a share of one core. The same again with N/10 http probes against a
// minimal HTTP responder. A third line runs the tcp attempts' bare syscalls
// without the runner: the kernel's floor, to tell the runner's own cost
// from the kernel's. `make bench-probes` runs it in a network namespace of
// its own (loopback only, no firewall rules, so no conntrack): the host's
// iptables rules would otherwise add their cost to every connect.
//
// On loopback the kernel runs both ends of every handshake in the
// connecting thread's softirq context, so the loop thread also pays for
// the server side's SYN/ACK processing: an upper bound of what probing
// sandboxes behind a bridge costs.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/HttpClient.h"
#include "net/ProbeRunner.h"
#include "reactor/EventLoop.h"

// Heap allocations made by the loop thread, to show the tcp path makes none
// per attempt. Only this thread counts (the server thread has its own copy).
namespace {
thread_local uint64_t tAllocations = 0;
}  // namespace

// Tick slot of the runner (--slot-ms): ProbeRunner's default unless told.
sbx::Duration gSlot = sbx::net::ProbeRunner::Options{}.tickSlot;

void* operator new(std::size_t n) {
  ++tAllocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::fputs("probe-bench: out of memory\n", stderr);
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace std::chrono_literals;
using sbx::Duration;
using sbx::EventLoop;
using sbx::Fd;
using sbx::net::ProbeOutcome;
using sbx::net::ProbeRunner;
using sbx::net::ProbeSpec;

constexpr int kProbesPerListener = 50;
constexpr auto kPeriod = 1s;
constexpr auto kMeasure = 10s;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "probe-bench: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

Duration threadCpu() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void raiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
}

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

// Listeners on 127.0.1.1, 127.0.1.2, ... served by a thread with its own
// epoll. Plain mode accepts and closes; http mode reads a request and
// answers 200 with Connection: close.
class TargetServer {
 public:
  TargetServer(size_t listeners, bool http) : http_(http) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    stopFd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!epoll_ || !stopFd_) die("epoll/eventfd");
    add(stopFd_.get(), EPOLLIN, kStopTag);
    for (size_t i = 0; i < listeners; ++i) {
      Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) die("socket");
      sockaddr_in a{};
      a.sin_family = AF_INET;
      // 127.0.1.1 .. 127.0.1.254, 127.0.2.1, ...
      a.sin_addr.s_addr = htonl((127u << 24) | ((1 + i / 254) << 8) | (1 + i % 254));
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
      if (::listen(fd.get(), 4096) != 0) die("listen");
      socklen_t len = sizeof a;
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
      char text[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
      endpoints_.push_back(Endpoint{text, ntohs(a.sin_port)});
      add(fd.get(), EPOLLIN, kListenTag | static_cast<uint64_t>(fd.get()));
      listeners_.push_back(std::move(fd));
    }
    thread_ = std::thread([this] { run(); });
  }

  ~TargetServer() {
    uint64_t one = 1;
    if (::write(stopFd_.get(), &one, sizeof one) < 0) die("eventfd write");
    thread_.join();
  }

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }

 private:
  static constexpr uint64_t kStopTag = 1ull << 62;
  static constexpr uint64_t kListenTag = 1ull << 61;

  void add(int fd, uint32_t events, uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }

  void run() {
    epoll_event events[256];
    char buf[4096];
    static const char kResponse[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    for (;;) {
      int n = ::epoll_wait(epoll_.get(), events, 256, -1);
      for (int i = 0; i < n; ++i) {
        uint64_t data = events[i].data.u64;
        if (data == kStopTag) return;
        if (data & kListenTag) {
          int lfd = static_cast<int>(data & 0xffffffff);
          int c;
          while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            if (http_) {
              add(c, EPOLLIN | EPOLLRDHUP, static_cast<uint64_t>(c));
            } else {
              ::close(c);
            }
          }
          continue;
        }
        // An http connection: the probe's request fits one segment.
        int c = static_cast<int>(data);
        ssize_t r = ::read(c, buf, sizeof buf);
        if (r > 0 && std::string_view(buf, static_cast<size_t>(r)).find("\r\n\r\n") ==
                         std::string_view::npos) {
          continue;  // the rest comes later
        }
        if (r > 0) {
          if (::write(c, kResponse, sizeof kResponse - 1) < 0) {
            // The probe gave up: nothing to do but close.
          }
        }
        ::close(c);  // also drops it from the epoll set
      }
    }
  }

  bool http_;
  Fd epoll_;
  Fd stopFd_;
  std::vector<Fd> listeners_;
  std::vector<Endpoint> endpoints_;
  std::thread thread_;
};

// Runs `loop` for a warm-up of one period (every probe has made its first
// attempt: the start jitter is under a period), then for kMeasure, timing
// each turn's CPU.
struct Window {
  double seconds = 0;
  Duration cpu{0};
  Duration worstTurnWall{0};
  Duration worstTurnCpu{0};
  Duration p50TurnCpu{0};
  Duration p99TurnCpu{0};
  double turnsPerSecond = 0;
  uint64_t allocations = 0;
};

Window measure(EventLoop& loop, const std::function<void()>& atStart) {
  auto runFor = [&](Duration d, std::vector<Duration>* turnCpu) {
    const auto end = loop.now() + d;
    while (loop.now() < end) {
      const Duration before = turnCpu ? threadCpu() : Duration::zero();
      loop.runOnce(end - loop.now());
      if (turnCpu) turnCpu->push_back(threadCpu() - before);
    }
  };
  runFor(kPeriod + 50ms, nullptr);
  std::vector<Duration> turnCpu;
  turnCpu.reserve(1 << 20);  // no growth (and no allocation) while measuring
  loop.resetMaxBusy();
  atStart();
  Window w;
  const uint64_t allocsBefore = tAllocations;
  const auto wallStart = loop.now();
  const Duration cpuStart = threadCpu();
  runFor(kMeasure, &turnCpu);
  w.cpu = threadCpu() - cpuStart;
  w.seconds = std::chrono::duration<double>(loop.now() - wallStart).count();
  w.allocations = tAllocations - allocsBefore;
  w.worstTurnWall = loop.stats().maxBusy;
  w.worstTurnCpu = loop.stats().maxBusyCpu;
  w.turnsPerSecond = static_cast<double>(turnCpu.size()) / w.seconds;
  if (!turnCpu.empty()) {
    std::sort(turnCpu.begin(), turnCpu.end());
    w.p50TurnCpu = turnCpu[turnCpu.size() / 2];
    w.p99TurnCpu = turnCpu[turnCpu.size() * 99 / 100];
  }
  return w;
}

double percentOfCore(const Window& w) {
  return 100.0 * std::chrono::duration<double>(w.cpu).count() / w.seconds;
}

double usPer(const Window& w, uint64_t count) {
  return count ? std::chrono::duration<double, std::micro>(w.cpu).count() / count : 0.0;
}

void runProbes(size_t n, ProbeSpec::Protocol protocol) {
  const bool http = protocol == ProbeSpec::Protocol::Http;
  TargetServer server((n + kProbesPerListener - 1) / kProbesPerListener, http);
  EventLoop loop;
  sbx::http::HttpClient client(loop);
  ProbeRunner::Options options;
  options.tickSlot = gSlot;
  ProbeRunner runner(loop, client, options);
  size_t ready = 0, failed = 0;
  std::string firstFailure;
  for (size_t i = 0; i < n; ++i) {
    const Endpoint& ep = server.endpoints()[i / kProbesPerListener];
    ProbeSpec spec;
    spec.protocol = protocol;
    spec.host = ep.host;
    spec.port = ep.port;
    spec.path = "/healthz";
    spec.period = kPeriod;
    spec.timeout = 1s;
    spec.successThreshold = 1;
    spec.failureThreshold = 3;
    auto id = runner.start(spec, [&](const ProbeOutcome& o) {
      if (o.kind == ProbeOutcome::Kind::Ready) {
        ++ready;
      } else if (failed++ == 0) {
        firstFailure = o.message;
      }
    });
    if (!id.ok()) {
      std::fprintf(stderr, "probe-bench: %s\n", id.message().c_str());
      std::exit(1);
    }
  }
  ProbeRunner::Stats before;
  Window w = measure(loop, [&] { before = runner.stats(); });
  const auto after = runner.stats();
  const uint64_t attempts = after.attempts - before.attempts;
  std::printf(
      "%s probes N=%zu period=1s: cpu %.1f%% of one core, attempts/s %.0f, failures %llu, "
      "loop worst turn %.2f ms\n"
      "    %.1f us cpu/attempt, %.2f allocs/attempt, %.0f turns/s, turn cpu p50 %.2f p99 %.2f "
      "max %.2f ms, connects settled in connect() %.1f%%, ready %zu/%zu\n",
      http ? "http" : "tcp", n, percentOfCore(w), static_cast<double>(attempts) / w.seconds,
      static_cast<unsigned long long>(after.failures - before.failures), ms(w.worstTurnWall),
      usPer(w, attempts), attempts ? static_cast<double>(w.allocations) / attempts : 0.0,
      w.turnsPerSecond, ms(w.p50TurnCpu), ms(w.p99TurnCpu), ms(w.worstTurnCpu),
      http || !attempts
          ? 0.0
          : 100.0 - 100.0 * static_cast<double>(after.pendingConnects - before.pendingConnects) /
                        static_cast<double>(attempts),
      ready, n);
  if (failed) std::printf("    first failure: %s\n", firstFailure.c_str());
  std::fflush(stdout);
}

// The kernel's share: the same syscalls a tcp attempt makes (connect,
// connect, connect(AF_UNSPEC) on a reused socket) against the same
// listeners, in the same tick slots as the runner (1 ms slots with
// --slot-ms 0), with no ProbeRunner around them.
void runFloor(size_t n) {
  TargetServer server((n + kProbesPerListener - 1) / kProbesPerListener, false);
  std::vector<sockaddr_in> targets;
  for (size_t i = 0; i < n; ++i) {
    const Endpoint& ep = server.endpoints()[i / kProbesPerListener];
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(ep.port);
    ::inet_pton(AF_INET, ep.host.c_str(), &a.sin_addr);
    targets.push_back(a);
  }
  EventLoop loop;
  const sbx::Duration tick = gSlot > sbx::Duration::zero() ? gSlot : sbx::Duration(1ms);
  const size_t slots = static_cast<size_t>(kPeriod / tick);
  size_t slot = 0;
  uint64_t connects = 0, failures = 0;
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sbx::Timer batch = loop.runEvery(tick, [&] {
    for (size_t i = slot; i < n; i += slots) {
      const auto* sa = reinterpret_cast<const sockaddr*>(&targets[i]);
      int rc = ::connect(fd.get(), sa, sizeof targets[i]);
      if (rc != 0 && errno == EINPROGRESS) rc = ::connect(fd.get(), sa, sizeof targets[i]);
      if (rc != 0 && errno != EISCONN) ++failures;
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      ::connect(fd.get(), &unspec, sizeof unspec);
      ++connects;
    }
    slot = (slot + 1) % slots;
  });
  uint64_t before = 0;
  Window w = measure(loop, [&] { before = connects; });
  const uint64_t count = connects - before;
  std::printf(
      "tcp floor  N=%zu: cpu %.1f%% of one core for the bare syscalls, %.1f us cpu/connect, "
      "failures %llu, turn cpu p50 %.2f p99 %.2f max %.2f ms\n",
      n, percentOfCore(w), usPer(w, count), static_cast<unsigned long long>(failures),
      ms(w.p50TurnCpu), ms(w.p99TurnCpu), ms(w.worstTurnCpu));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes;
  for (int i = 1; i < argc; ++i) {
    const bool slotFlag = std::strcmp(argv[i], "--slot-ms") == 0 && i + 1 < argc;
    if (slotFlag) ++i;
    char* end = nullptr;
    unsigned long v = std::strtoul(argv[i], &end, 10);
    if (!end || *end != '\0' || (v == 0 && !slotFlag) || (slotFlag && v > 1000)) {
      std::fprintf(stderr, "usage: probe-bench [--slot-ms MS] [N...]\n");
      return 2;
    }
    if (slotFlag) {
      gSlot = std::chrono::milliseconds(v);
    } else {
      sizes.push_back(v);
    }
  }
  std::printf("tick slot %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(gSlot).count()));
  if (sizes.empty()) sizes = {1000, 5000, 10000};
  raiseFdLimit();
  for (size_t n : sizes) {
    runProbes(n, ProbeSpec::Protocol::Tcp);
    runFloor(n);
    if (n / 10 > 0) runProbes(n / 10, ProbeSpec::Protocol::Http);
  }
  return 0;
}
