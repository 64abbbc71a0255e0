#include "reactor/EventLoop.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace sbx {

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fatal: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

uint64_t packData(uint32_t slot, uint32_t generation) {
  return (static_cast<uint64_t>(generation) << 32) | slot;
}

}  // namespace

// ---- IoWatcher -------------------------------------------------------------

IoWatcher::IoWatcher(IoWatcher&& o) noexcept
    : loop_(std::exchange(o.loop_, nullptr)), slot_(o.slot_) {}

IoWatcher& IoWatcher::operator=(IoWatcher&& o) noexcept {
  if (this != &o) {
    reset();
    loop_ = std::exchange(o.loop_, nullptr);
    slot_ = o.slot_;
  }
  return *this;
}

void IoWatcher::setEvents(uint32_t events) {
  if (loop_) loop_->setEvents(slot_, events);
}

uint32_t IoWatcher::events() const { return loop_ ? loop_->slotEvents(slot_) : 0; }

void IoWatcher::reset() {
  if (loop_) std::exchange(loop_, nullptr)->unwatch(slot_);
}

// ---- Timer -----------------------------------------------------------------

Timer::Timer(Timer&& o) noexcept : loop_(std::exchange(o.loop_, nullptr)), id_(o.id_) {}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    cancel();
    loop_ = std::exchange(o.loop_, nullptr);
    id_ = o.id_;
  }
  return *this;
}

void Timer::cancel() {
  if (loop_) std::exchange(loop_, nullptr)->cancelTimer(id_);
}

bool Timer::pending() const { return loop_ && loop_->timerPending(id_); }

// ---- EventLoop -------------------------------------------------------------

EventLoop::EventLoop(const Clock* clock)
    : clock_(clock ? clock : &MonotonicClock::instance()),
      threadId_(std::this_thread::get_id()),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wakeFd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!epoll_) die("epoll_create1");
  if (!wakeFd_) die("eventfd");
  // At most this many ready descriptors per turn: the rest stay on epoll's
  // ready list for the next turn (epoll hands them out round-robin), so a
  // burst of hundreds of requests cannot hold timers and posted work back
  // for tens of milliseconds. bench/scale.sh: 218 events in one turn took
  // 21 ms of CPU before this bound.
  events_.resize(kMaxEventsPerTurn);
  wakeWatcher_ = watch(wakeFd_.get(), EPOLLIN, [this](uint32_t) { handleWakeup(); });
}

EventLoop::~EventLoop() {
  {
    // Wait out a stop() or post() still writing the eventfd (see post()).
    std::lock_guard<std::mutex> lock(postMutex_);
  }
  wakeWatcher_.reset();
  // Run what was deferred so deferred deletions are not leaked.
  runPosted();
  runDeferred();
  timers_.clear();
}

void EventLoop::assertInLoopThread() const {
  if (!isInLoopThread()) {
    std::fprintf(stderr, "fatal: EventLoop used off its loop thread\n");
    std::abort();
  }
}

IoWatcher EventLoop::watch(int fd, uint32_t events, IoCallback cb) {
  assertInLoopThread();
  uint32_t slot;
  if (!freeWatchSlots_.empty()) {
    slot = freeWatchSlots_.back();
    freeWatchSlots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(watchSlots_.size());
    watchSlots_.emplace_back();
  }
  WatchSlot& s = watchSlots_[slot];
  s.fd = fd;
  s.events = events;
  s.inUse = true;
  s.cb = std::move(cb);
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = packData(slot, s.generation);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl(ADD)");
  ++activeWatchers_;
  return IoWatcher(this, slot);
}

void EventLoop::setEvents(uint32_t slot, uint32_t events) {
  WatchSlot& s = watchSlots_[slot];
  if (s.events == events) return;
  s.events = events;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = packData(slot, s.generation);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, s.fd, &ev) != 0) die("epoll_ctl(MOD)");
}

void EventLoop::unwatch(uint32_t slot) {
  WatchSlot& s = watchSlots_[slot];
  // The fd may already be closed by its owner (the kernel then dropped it
  // from the set); any other failure is a bug.
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, s.fd, nullptr) != 0 && errno != EBADF &&
      errno != ENOENT) {
    die("epoll_ctl(DEL)");
  }
  // A new generation makes events already returned by this turn's
  // epoll_wait for the old registration stale (nginx's "instance" bit).
  ++s.generation;
  s.inUse = false;
  s.fd = -1;
  s.events = 0;
  s.cb = nullptr;
  freeWatchSlots_.push_back(slot);
  --activeWatchers_;
}

Timer EventLoop::runAt(TimePoint when, Functor cb) {
  assertInLoopThread();
  return Timer(this, timers_.add(when, Duration::zero(), std::move(cb)));
}

Timer EventLoop::runAfter(Duration delay, Functor cb) {
  return runAt(now() + delay, std::move(cb));
}

Timer EventLoop::runEvery(Duration interval, Functor cb) {
  assertInLoopThread();
  return Timer(this, timers_.add(now() + interval, interval, std::move(cb)));
}

void EventLoop::post(Functor fn) {
  // The eventfd write happens under the mutex that ~EventLoop also takes, so
  // a thread that posts (or stops) and the loop thread that then exits and
  // destroys the loop cannot race on the descriptor.
  std::lock_guard<std::mutex> lock(postMutex_);
  posted_.push_back(std::move(fn));
  if (!wakePending_.exchange(true, std::memory_order_acq_rel)) wakeLocked();
}

void EventLoop::postNextTurn(Functor fn) {
  assertInLoopThread();
  const uint64_t turn = turns_;
  // Posted during this turn's I/O or timers it would run in this turn's
  // posted batch: then it posts itself once more, into the next batch.
  post([this, turn, fn = std::move(fn)]() mutable {
    if (turns_ == turn) {
      post(std::move(fn));
      return;
    }
    fn();
  });
}

void EventLoop::wakeLocked() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: a wakeup is pending anyway.
  if (::write(wakeFd_.get(), &one, sizeof one) < 0 && errno != EAGAIN) die("eventfd write");
}

void EventLoop::defer(Functor fn) {
  assertInLoopThread();
  deferred_.push_back(std::move(fn));
}

void EventLoop::deferDelete(std::unique_ptr<DeferredDeletable> obj) {
  assertInLoopThread();
  toDelete_.push_back(std::move(obj));
}

void EventLoop::stop() {
  if (isInLoopThread()) {
    quit_.store(true, std::memory_order_release);
    return;
  }
  std::lock_guard<std::mutex> lock(postMutex_);
  quit_.store(true, std::memory_order_release);
  wakeLocked();
}

void EventLoop::handleWakeup() {
  uint64_t n;
  while (::read(wakeFd_.get(), &n, sizeof n) > 0) {
  }
}

void EventLoop::runPosted() {
  // Clear the flag before taking the batch: a post() racing with the swap
  // then writes the eventfd again and is picked up next turn.
  wakePending_.store(false, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(postMutex_);
    if (posted_.empty()) return;
    runningPosted_.swap(posted_);
  }
  for (auto& fn : runningPosted_) fn();
  runningPosted_.clear();
}

void EventLoop::runDeferred() {
  // Bounded rounds: functions deferred by deferred functions run in this
  // turn too, but a function that keeps deferring itself cannot spin forever
  // (what is left waits for the next turn, which then does not block).
  for (int round = 0; round < 8 && (!deferred_.empty() || !toDelete_.empty()); ++round) {
    std::vector<Functor> batch;
    batch.swap(deferred_);
    for (auto& fn : batch) fn();
    std::vector<std::unique_ptr<DeferredDeletable>> dead;
    dead.swap(toDelete_);
    dead.clear();
  }
}

int EventLoop::epollTimeoutMs(Duration maxWait) const {
  if (!deferred_.empty() || !toDelete_.empty() || quit_.load(std::memory_order_relaxed)) return 0;
  Duration wait = maxWait;
  if (auto next = timers_.nextDeadline()) {
    Duration untilTimer = *next - now();
    if (untilTimer < wait) wait = untilTimer;
  }
  if (wait <= Duration::zero()) return 0;
  // Round up: waking a little late is fine, waking early only to find
  // nothing due costs a turn.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
  return ms > 3600 * 1000 ? 3600 * 1000 : static_cast<int>(ms);
}

void EventLoop::runOnce(Duration maxWait) {
  int timeout = epollTimeoutMs(maxWait);
  int n = ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()), timeout);
  TimePoint busyStart = clock_->now();
  timespec cpuStart{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpuStart);
  if (n < 0) {
    if (errno != EINTR) die("epoll_wait");
    n = 0;
  }
  for (int i = 0; i < n; ++i) {
    uint64_t data = events_[i].data.u64;
    uint32_t slot = static_cast<uint32_t>(data);
    uint32_t generation = static_cast<uint32_t>(data >> 32);
    if (slot >= watchSlots_.size()) continue;
    WatchSlot& s = watchSlots_[slot];
    if (!s.inUse || s.generation != generation) continue;  // stale: unwatched this turn
    // Run the callback from a local: it may unwatch its own slot, or watch
    // new fds and grow watchSlots_, without moving the closure it executes.
    IoCallback cb = std::move(s.cb);
    cb(events_[i].events);
    WatchSlot& after = watchSlots_[slot];
    if (after.inUse && after.generation == generation && !after.cb) after.cb = std::move(cb);
  }
  const TimePoint ioEnd = clock_->now();
  timers_.runExpired(ioEnd);
  const TimePoint timersEnd = clock_->now();
  runPosted();
  const TimePoint postedEnd = clock_->now();
  runDeferred();
  ++turns_;
  Duration busy = clock_->now() - busyStart;
  if (busy > maxBusy_) maxBusy_ = busy;
  timespec cpuEnd{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpuEnd);
  Duration cpu = std::chrono::seconds(cpuEnd.tv_sec - cpuStart.tv_sec) +
                 std::chrono::nanoseconds(cpuEnd.tv_nsec - cpuStart.tv_nsec);
  if (busy > std::chrono::milliseconds(5)) ++turnsOver5ms_;
  if (cpu > std::chrono::milliseconds(5)) ++turnsOver5msCpu_;
  if (cpu > maxBusyCpu_) {
    maxBusyCpu_ = cpu;
    worstTurn_ = Stats::TurnShape{n, ioEnd - busyStart, timersEnd - ioEnd, postedEnd - timersEnd,
                                  clock_->now() - postedEnd};
  }
}

void EventLoop::run() {
  threadId_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  while (!quit_.load(std::memory_order_acquire)) {
    runOnce(std::chrono::hours(1));
  }
}

EventLoop::Stats EventLoop::stats() const {
  Stats s;
  s.turns = turns_;
  s.maxBusy = maxBusy_;
  s.maxBusyCpu = maxBusyCpu_;
  s.worstTurn = worstTurn_;
  s.turnsOver5ms = turnsOver5ms_;
  s.turnsOver5msCpu = turnsOver5msCpu_;
  s.watchers = activeWatchers_ - 1;  // not counting the wakeup eventfd
  s.timers = timers_.size();
  return s;
}

}  // namespace sbx
