#pragma once
// ProbeRunner: readiness probes of sandboxes (tcp connect, http GET) on the
// EventLoop, never blocking it. Envoy's active health checker model: each
// probe owns an interval timer and a timeout timer.
//
// Schedule. The first attempt runs at initialDelay + jitter, the jitter
// drawn uniformly from [0, min(period, Options::maxStartJitter)), so probes
// started together (a node agent re-adopting thousands of sandboxes after a
// restart) spread over one period instead of firing in the same millisecond.
// Then one attempt per period on a fixed cadence (each deadline is the
// previous one plus the period, however late its turn ran).
//
// Overlap. Attempts never overlap. A period tick that finds the previous
// attempt still running (only possible when timeout >= period) is not
// dropped: the next attempt starts as soon as the running one ends (in the
// next loop turn); ticks that pass meanwhile coalesce into that one attempt.
// So a target that always times out is still tried about once per period.
//
// Verdicts. successThreshold consecutive successes: Ready (once). Then the
// probe keeps going; failureThreshold consecutive failures, before Ready or
// after it: Failed, with a message naming the probe and the last failure:
//   readiness probe failed 3 times: tcp 10.89.0.5:8080: connection refused
//   readiness probe failed 3 times: http GET http://10.89.0.5:8080/healthz: status 500
//   readiness probe failed 3 times: tcp 10.89.0.5:8080: timed out after 1000ms
// After Failed the probe is stopped (gone from active()).
//
// tcp: success when a non-blocking connect is established within the
// timeout; the socket is then closed with a RST (SO_LINGER {1,0}), so
// thousands of probes a second leave no TIME_WAIT behind. http: GET path
// with keepAlive=false; success for 200 <= status < 400; redirects are not
// followed (a 3xx is a success); a body over 1 MiB fails the attempt.
//
// Loop-thread only. `loop` and `http` must outlive the runner. Callbacks run
// on the loop thread, never inside start(); a callback may start and stop
// probes, its own included. After stop(id), or once the runner is destroyed,
// that probe's callback never runs again. Do not destroy the runner from
// inside one of its callbacks (defer it with EventLoop::defer).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/Result.h"
#include "reactor/Clock.h"
#include "reactor/Fd.h"

namespace sbx {
class EventLoop;
namespace http {
class HttpClient;
}  // namespace http
}  // namespace sbx

namespace sbx::net {

struct ProbeSpec {
  enum class Protocol { Tcp, Http };
  Protocol protocol = Protocol::Tcp;
  std::string host;  // an IPv4 literal: the sandbox IP (no DNS on the loop)
  uint16_t port = 0;
  std::string path = "/";  // http: origin-form target, starting with '/'
  Duration initialDelay{0};
  Duration period = std::chrono::seconds(1);   // > 0
  Duration timeout = std::chrono::seconds(1);  // > 0
  int successThreshold = 1;                    // >= 1
  int failureThreshold = 3;                    // >= 1
};

struct ProbeOutcome {
  enum class Kind { Ready, Failed };
  Kind kind = Kind::Ready;
  std::string message;  // empty for Ready
};

class ProbeRunner {
 public:
  using ProbeId = uint64_t;
  using Callback = std::function<void(const ProbeOutcome&)>;

  struct Options {
    // Upper bound of the start jitter (never more than the period). Zero:
    // the first attempt runs exactly at initialDelay (tests).
    Duration maxStartJitter = Duration::max();
    // Seed of the jitter generator; 0 picks one from the clock.
    uint64_t seed = 0;
    // Ticks rounded up to a multiple of this on the loop's clock, so the
    // probes due within one slot run in one loop turn. Zero (default):
    // every tick at its own time. Measured with 5,000 tcp probes
    // (probe-bench --slot-ms): 20 ms slots save ~15% of the CPU but make
    // loop turns of 10-20 ms; 2-10 ms slots are within the noise. Off.
    Duration tickSlot = Duration::zero();
    // Sockets kept for reuse after a successful tcp attempt (disconnected
    // with connect(AF_UNSPEC), which resets the connection as close with
    // SO_LINGER 0 does): no socket() and close() per attempt.
    size_t spareSockets = 64;
  };

  ProbeRunner(EventLoop& loop, http::HttpClient& http);
  ProbeRunner(EventLoop& loop, http::HttpClient& http, Options options);
  // Cancels every probe: no callback afterwards.
  ~ProbeRunner();
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  // Loop thread. Schedules a probe; `cb` gets Ready at most once, and
  // Failed at most once (the last call). Error (no probe started) when the
  // spec is invalid: "invalid probe: ...".
  Result<ProbeId> start(ProbeSpec spec, Callback cb);

  // Loop thread. Cancels the probe and any attempt in flight. Idempotent;
  // unknown or finished ids are ignored. Safe from inside any callback.
  void stop(ProbeId id);

  // Probes started and neither stopped nor Failed.
  size_t active() const { return probes_.size(); }

  struct Stats {
    uint64_t attempts = 0;   // started
    uint64_t successes = 0;  // completed attempts that succeeded
    uint64_t failures = 0;   // completed attempts that failed
    // Period ticks that found the previous attempt still running (so the
    // next attempt waited for it to end).
    uint64_t delayedTicks = 0;
    // tcp attempts whose connect was not settled when connect() returned
    // (a remote peer, or a slow one): those needed epoll and a timer.
    uint64_t pendingConnects = 0;
    // socket() calls for tcp attempts (the rest reused a spare socket).
    uint64_t socketsOpened = 0;
  };
  Stats stats() const { return stats_; }

 private:
  struct Probe;
  struct Failure;

  void onTick(Probe* p);
  void armTick(Probe* p, TimePoint when);
  void startAttempt(Probe* p);
  void startTcp(Probe* p);
  void onTcpWritable(Probe* p);
  void startHttp(Probe* p);
  void onTimeout(Probe* p);
  void succeed(Probe* p);
  void fail(Probe* p, Failure f);
  void endAttempt(Probe* p);
  void remove(Probe* p);
  Duration startJitter(Duration period);
  TimePoint alignToSlot(TimePoint t) const;
  Fd takeSocket();
  void finishSocket(Fd& fd);

  EventLoop& loop_;
  http::HttpClient& http_;
  Options options_;
  uint64_t rng_;
  ProbeId nextId_ = 1;
  std::unordered_map<ProbeId, std::unique_ptr<Probe>> probes_;
  std::vector<Fd> spare_;  // disconnected tcp sockets, ready to connect
  Stats stats_;
};

}  // namespace sbx::net
