#include "net/ProbeRunner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "http/HttpClient.h"
#include "reactor/EventLoop.h"

namespace sbx::net {

namespace {

long long toMs(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// "connection refused" rather than strerror's "Connection refused": the
// reason ends a sentence that already started.
std::string lowerFirst(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && !(s.size() > 1 && s[1] >= 'A' && s[1] <= 'Z')) {
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  }
  return s;
}

std::string errnoText(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer to a static string or into buf.
  return lowerFirst(::strerror_r(err, buf, sizeof buf));
}

bool isSafePath(const std::string& path) {
  return !path.empty() && path[0] == '/' && std::none_of(path.begin(), path.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
  });
}

// splitmix64: a fast, well-mixed generator; jitter needs no more.
uint64_t nextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

// A spare socket, or a new one.
Fd ProbeRunner::takeSocket() {
  if (!spare_.empty()) {
    Fd fd = std::move(spare_.back());
    spare_.pop_back();
    return fd;
  }
  ++stats_.socketsOpened;
  return Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

// Ends a connected attempt's connection with a reset, not a FIN: no
// TIME_WAIT on either side, which at thousands of probes a second would
// pile up and eat the ephemeral port range. connect(AF_UNSPEC) resets and
// leaves the socket unbound and ready for the next attempt (kept while
// there is room); otherwise close with SO_LINGER 0 does the same.
void ProbeRunner::finishSocket(Fd& fd) {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if (spare_.size() < options_.spareSockets && ::connect(fd.get(), &unspec, sizeof unspec) == 0) {
    spare_.push_back(std::move(fd));
    return;
  }
  linger lg{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  fd.reset();
}

// Why an attempt failed. Kept as numbers where possible: the text is built
// only when a failure streak is reported, not on every failed attempt.
struct ProbeRunner::Failure {
  enum class Kind { Errno, Timeout, Status, Text };
  Kind kind = Kind::Text;
  int code = 0;      // errno or HTTP status
  std::string text;  // Kind::Text: the HTTP client's error
};

struct ProbeRunner::Probe final : DeferredDeletable {
  ProbeId id = 0;
  ProbeSpec spec;
  Callback cb;
  sockaddr_in addr{};
  std::string hostText;  // canonical dotted quad

  // The next period tick: a one-shot re-armed from its own deadline.
  Timer interval;
  TimePoint nextTick;
  // The running attempt's deadline; between attempts, the zero-delay timer
  // that starts an attempt a tick had to postpone.
  Timer timeout;
  // tcp: the connect in flight (only when it did not complete at once).
  Fd sock;
  IoWatcher watcher;
  // http: the request in flight (0: none).
  uint64_t request = 0;

  bool running = false;      // an attempt is in flight
  bool tickWaiting = false;  // a tick came while it was
  bool ready = false;
  int successes = 0;  // consecutive
  int failures = 0;   // consecutive
  Failure lastFailure;

  // Cancels everything that could call back into the runner.
  void disarm(http::HttpClient& http) {
    interval.cancel();
    timeout.cancel();
    watcher.reset();
    sock.reset();
    if (request != 0) http.cancel(std::exchange(request, 0));
  }

  std::string describe() const {
    std::string port = std::to_string(spec.port);
    if (spec.protocol == ProbeSpec::Protocol::Tcp) return "tcp " + hostText + ":" + port;
    return "http GET http://" + hostText + ":" + port + spec.path;
  }

  std::string reason() const {
    switch (lastFailure.kind) {
      case Failure::Kind::Errno:
        return errnoText(lastFailure.code);
      case Failure::Kind::Timeout:
        return "timed out after " + std::to_string(toMs(spec.timeout)) + "ms";
      case Failure::Kind::Status:
        return "status " + std::to_string(lastFailure.code);
      case Failure::Kind::Text:
        break;
    }
    // The client names the peer again ("connect 10.89.0.5:8080: Connection
    // refused"); the probe description already did.
    const std::string prefix = "connect " + hostText + ":" + std::to_string(spec.port) + ": ";
    if (lastFailure.text.compare(0, prefix.size(), prefix) == 0) {
      return lowerFirst(lastFailure.text.substr(prefix.size()));
    }
    return lastFailure.text;
  }
};

ProbeRunner::ProbeRunner(EventLoop& loop, http::HttpClient& http)
    : ProbeRunner(loop, http, Options{}) {}

ProbeRunner::ProbeRunner(EventLoop& loop, http::HttpClient& http, Options options)
    : loop_(loop), http_(http), options_(options), rng_(options.seed) {
  if (rng_ == 0) {
    rng_ = static_cast<uint64_t>(loop.now().time_since_epoch().count()) ^
           reinterpret_cast<uintptr_t>(this);
  }
}

ProbeRunner::~ProbeRunner() {
  // Memory goes at the end of the turn: a caller that ignored the header
  // and destroys us from a callback is still running inside a probe's
  // closure.
  for (auto& [id, p] : probes_) {
    p->disarm(http_);
    loop_.deferDelete(std::move(p));
  }
}

Result<ProbeRunner::ProbeId> ProbeRunner::start(ProbeSpec spec, Callback cb) {
  loop_.assertInLoopThread();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(spec.port);
  if (::inet_pton(AF_INET, spec.host.c_str(), &addr.sin_addr) != 1) {
    return makeError("invalid probe: host \"" + spec.host + "\" is not an IPv4 address");
  }
  if (spec.port == 0) return makeError("invalid probe: port must be 1-65535");
  if (spec.protocol == ProbeSpec::Protocol::Http && !isSafePath(spec.path)) {
    return makeError("invalid probe: path \"" + spec.path +
                     "\" must start with '/' and hold no spaces or control characters");
  }
  if (spec.period <= Duration::zero()) return makeError("invalid probe: period must be positive");
  if (spec.timeout <= Duration::zero()) {
    return makeError("invalid probe: timeout must be positive");
  }
  if (spec.initialDelay < Duration::zero()) {
    return makeError("invalid probe: initialDelay must not be negative");
  }
  if (spec.successThreshold < 1) return makeError("invalid probe: successThreshold must be >= 1");
  if (spec.failureThreshold < 1) return makeError("invalid probe: failureThreshold must be >= 1");

  auto owned = std::make_unique<Probe>();
  Probe* p = owned.get();
  p->id = nextId_++;
  p->addr = addr;
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text);
  p->hostText = text;
  p->spec = std::move(spec);
  p->cb = std::move(cb);
  armTick(p, alignToSlot(loop_.now() + p->spec.initialDelay + startJitter(p->spec.period)));
  probes_.emplace(p->id, std::move(owned));
  return p->id;
}

Duration ProbeRunner::startJitter(Duration period) {
  Duration span = std::min(period, options_.maxStartJitter);
  if (span <= Duration::zero()) return Duration::zero();
  return Duration(
      static_cast<Duration::rep>(nextRandom(rng_) % static_cast<uint64_t>(span.count())));
}

TimePoint ProbeRunner::alignToSlot(TimePoint t) const {
  const Duration::rep slot = options_.tickSlot.count();
  if (slot <= 0) return t;
  const Duration::rep since = t.time_since_epoch().count();
  const Duration::rep rem = since % slot;
  return rem == 0 ? t : t + Duration(slot - rem);
}

void ProbeRunner::stop(ProbeId id) {
  loop_.assertInLoopThread();
  auto it = probes_.find(id);
  if (it == probes_.end()) return;
  remove(it->second.get());
}

void ProbeRunner::remove(Probe* p) {
  auto it = probes_.find(p->id);
  std::unique_ptr<Probe> owned = std::move(it->second);
  probes_.erase(it);
  p->disarm(http_);
  // Not now: we may be inside one of its closures (its callback stopping
  // it, or a timer of its own). The callback object stays alive with it.
  loop_.deferDelete(std::move(owned));
}

void ProbeRunner::armTick(Probe* p, TimePoint when) {
  p->nextTick = when;
  // Replacing the handle of the one-shot timer that is firing is fine: it
  // is no longer pending, so the old handle's cancel() is a no-op.
  p->interval = loop_.runAt(when, [this, p] { onTick(p); });
}

void ProbeRunner::onTick(Probe* p) {
  // Next deadline from the previous one, not from now: the cadence holds
  // however late this turn runs. A loop stalled for more than a period
  // skips the ticks it missed rather than firing them all.
  TimePoint next = p->nextTick + p->spec.period;
  const TimePoint now = loop_.now();
  if (next <= now) next += ((now - next) / p->spec.period + 1) * p->spec.period;
  armTick(p, alignToSlot(next));
  if (p->running) {
    if (!p->tickWaiting) {
      p->tickWaiting = true;
      ++stats_.delayedTicks;
    }
    return;
  }
  startAttempt(p);  // may report and stop `p`: nothing after this
}

void ProbeRunner::startAttempt(Probe* p) {
  // Also drops a pending postponed start: this attempt is that one.
  p->timeout.cancel();
  p->tickWaiting = false;
  p->running = true;
  ++stats_.attempts;
  if (p->spec.protocol == ProbeSpec::Protocol::Tcp) {
    startTcp(p);
  } else {
    startHttp(p);
  }
}

// The hot path: thousands of these a second. No allocation (the closures
// capture two pointers and fit std::function's inline buffer; watcher and
// timer slots are recycled) and, when the handshake finishes inside
// connect() (always, on loopback, in probe-bench), no epoll registration
// and no timer either.
void ProbeRunner::startTcp(Probe* p) {
  Fd fd = takeSocket();
  if (!fd) {
    fail(p, Failure{Failure::Kind::Errno, errno, {}});
    return;
  }
  const auto* sa = reinterpret_cast<const sockaddr*>(&p->addr);
  int rc = ::connect(fd.get(), sa, sizeof p->addr);
  if (rc != 0 && (errno == EINPROGRESS || errno == EINTR)) {
    // To a local peer the kernel has usually finished the handshake (or
    // got the RST) by the time connect() returns EINPROGRESS: asking again
    // costs one syscall and settles it without epoll. EALREADY: really in
    // flight.
    rc = ::connect(fd.get(), sa, sizeof p->addr);
    if (rc != 0 && errno == EISCONN) rc = 0;
    if (rc != 0 && (errno == EALREADY || errno == EINPROGRESS)) {
      ++stats_.pendingConnects;
      p->sock = std::move(fd);
      p->watcher = loop_.watch(p->sock.get(), EPOLLOUT, [this, p](uint32_t) { onTcpWritable(p); });
      p->timeout = loop_.runAfter(p->spec.timeout, [this, p] { onTimeout(p); });
      return;
    }
  }
  if (rc != 0) {
    int err = errno;
    fd.reset();
    fail(p, Failure{Failure::Kind::Errno, err, {}});
    return;
  }
  finishSocket(fd);
  succeed(p);
}

void ProbeRunner::onTcpWritable(Probe* p) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(p->sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  p->watcher.reset();
  if (err != 0) {
    p->sock.reset();
    fail(p, Failure{Failure::Kind::Errno, err, {}});
    return;
  }
  finishSocket(p->sock);
  succeed(p);
}

void ProbeRunner::startHttp(Probe* p) {
  // Our deadline is armed before the client's (same duration, earlier or
  // equal deadline, lower sequence), so it always fires first and every
  // timeout reads the same: "timed out after Nms".
  p->timeout = loop_.runAfter(p->spec.timeout, [this, p] { onTimeout(p); });
  http::HttpClientRequest req;
  req.method = "GET";
  req.host = p->hostText;
  req.port = p->spec.port;
  req.target = p->spec.path;
  req.headers.add("User-Agent", "sbxlet-probe/1.0");
  req.headers.add("Accept", "*/*");
  req.timeout = p->spec.timeout;
  req.connectTimeout = p->spec.timeout;
  req.keepAlive = false;
  // The body is read whole and thrown away: a health endpoint sending more
  // than this fails the attempt rather than make the node buffer it.
  req.maxResponseBytes = 1u << 20;
  p->request = http_.request(std::move(req), [this, p](Result<http::HttpClientResponse> r) {
    p->request = 0;
    if (!r.ok()) {
      fail(p, Failure{Failure::Kind::Text, 0, r.message()});
    } else if (r->status >= 200 && r->status < 400) {
      succeed(p);
    } else {
      fail(p, Failure{Failure::Kind::Status, r->status, {}});
    }
  });
}

void ProbeRunner::onTimeout(Probe* p) {
  p->watcher.reset();
  p->sock.reset();
  if (p->request != 0) http_.cancel(std::exchange(p->request, 0));
  fail(p, Failure{Failure::Kind::Timeout, 0, {}});
}

void ProbeRunner::endAttempt(Probe* p) {
  p->running = false;
  p->timeout.cancel();
  if (p->tickWaiting) {
    // A tick was postponed for this attempt. Not started from here: we may
    // be about to run the user's callback, and an attempt that completes
    // at once would report from inside this one.
    p->tickWaiting = false;
    p->timeout = loop_.runAfter(Duration::zero(), [this, p] { startAttempt(p); });
  }
}

// succeed() and fail() run the user's callback last and touch nothing
// afterwards: the callback may stop this probe. (Even a runner destroyed
// there would be survived: probes are freed at the end of the turn.)
void ProbeRunner::succeed(Probe* p) {
  ++stats_.successes;
  endAttempt(p);
  p->failures = 0;
  if (p->ready) return;
  if (++p->successes < p->spec.successThreshold) return;
  p->ready = true;
  p->cb(ProbeOutcome{ProbeOutcome::Kind::Ready, {}});
}

void ProbeRunner::fail(Probe* p, Failure f) {
  ++stats_.failures;
  endAttempt(p);
  p->successes = 0;
  p->lastFailure = std::move(f);
  if (++p->failures < p->spec.failureThreshold) return;
  ProbeOutcome out{ProbeOutcome::Kind::Failed, "readiness probe failed " +
                                                   std::to_string(p->failures) +
                                                   (p->failures == 1 ? " time: " : " times: ") +
                                                   p->describe() + ": " + p->reason()};
  Callback cb = std::move(p->cb);
  remove(p);
  cb(out);
}

}  // namespace sbx::net
