#pragma once
// EventLoop: one thread, one epoll instance. A turn is
//   epoll_wait (timeout = nearest timer) -> I/O callbacks -> expired timers
//   -> posted functions (other threads) -> deferred functions -> deferred
//   deletions.
// The one cross-thread door is post(); everything else is loop-thread only
// and checks it with assertInLoopThread() in debug builds.
//
// Watchers and timers are RAII handles (IoWatcher, Timer): destroying one
// removes it. A watcher never owns its fd (the owner holds an Fd).

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "reactor/Clock.h"
#include "reactor/Fd.h"
#include "reactor/TimerQueue.h"

namespace sbx {

class EventLoop;

// Objects destroyed at the end of the loop turn (never inside their own
// callback): connections, requests, jobs.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

// A registered fd. Move-only; destroying or reset() unregisters it.
class IoWatcher {
 public:
  IoWatcher() = default;
  ~IoWatcher() { reset(); }
  IoWatcher(IoWatcher&& o) noexcept;
  IoWatcher& operator=(IoWatcher&& o) noexcept;
  IoWatcher(const IoWatcher&) = delete;
  IoWatcher& operator=(const IoWatcher&) = delete;

  // Changes the epoll interest set (EPOLLIN, EPOLLOUT, ...). No syscall
  // when unchanged.
  void setEvents(uint32_t events);
  uint32_t events() const;
  void reset();
  bool active() const { return loop_ != nullptr; }

 private:
  friend class EventLoop;
  IoWatcher(EventLoop* loop, uint32_t slot) : loop_(loop), slot_(slot) {}
  EventLoop* loop_ = nullptr;
  uint32_t slot_ = 0;
};

// A pending timer. Move-only; destroying or cancel() cancels it.
class Timer {
 public:
  Timer() = default;
  ~Timer() { cancel(); }
  Timer(Timer&& o) noexcept;
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void cancel();
  // True until a one-shot timer fires or any timer is cancelled.
  bool pending() const;

 private:
  friend class EventLoop;
  Timer(EventLoop* loop, TimerId id) : loop_(loop), id_(id) {}
  EventLoop* loop_ = nullptr;
  TimerId id_;
};

class EventLoop {
 public:
  using IoCallback = std::function<void(uint32_t events)>;
  using Functor = std::function<void()>;

  // The thread that constructs the loop is its loop thread until run() is
  // first called from another thread, which then becomes it. `clock` (not
  // owned) defaults to the monotonic clock.
  explicit EventLoop(const Clock* clock = nullptr);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs turns until stop().
  void run();
  // Runs one turn, waiting at most `maxWait` for I/O (less if a timer is
  // due sooner). For tests and embedding.
  void runOnce(Duration maxWait);
  // Thread-safe. run() returns after the current turn.
  void stop();
  bool stopped() const { return quit_.load(std::memory_order_acquire); }

  // Thread-safe. Queues `fn` to run on the loop thread in a later turn.
  // Wakeups are coalesced: one eventfd write per batch.
  void post(Functor fn);
  // Loop thread. Runs `fn` in a later turn than this one, after that turn's
  // I/O and timers (post() from an I/O callback or a timer may still run in
  // this turn's posted batch). For splitting long work into slices that let
  // other clients in between.
  void postNextTurn(Functor fn);
  // Loop thread. Runs `fn` at the end of this turn.
  void defer(Functor fn);
  // Loop thread. Destroys `obj` at the end of this turn.
  void deferDelete(std::unique_ptr<DeferredDeletable> obj);

  // Loop thread. Watches `fd` (not owned) for `events`; `cb` runs with the
  // returned events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...).
  [[nodiscard]] IoWatcher watch(int fd, uint32_t events, IoCallback cb);

  // Loop thread. One-shot and repeating timers on this loop's clock.
  [[nodiscard]] Timer runAt(TimePoint when, Functor cb);
  [[nodiscard]] Timer runAfter(Duration delay, Functor cb);
  [[nodiscard]] Timer runEvery(Duration interval, Functor cb);

  TimePoint now() const { return clock_->now(); }
  const Clock& clock() const { return *clock_; }

  bool isInLoopThread() const {
    return std::this_thread::get_id() == threadId_.load(std::memory_order_relaxed);
  }
  // Aborts with a message when called off the loop thread.
  void assertInLoopThread() const;

  struct Stats {
    uint64_t turns = 0;
    // Longest time between epoll_wait returning and being called again:
    // the worst stall any callback imposed on everyone else.
    Duration maxBusy{0};
    // The loop thread's own CPU time in that kind of turn (its worst): a
    // long maxBusy with a short maxBusyCpu means the thread was preempted
    // (machine overloaded), not that a callback blocked or computed.
    Duration maxBusyCpu{0};
    // Where the turn with the most CPU (maxBusyCpu) spent its wall time:
    // I/O callbacks (and how many ran), timers, posted and deferred
    // functions. Tells which kind of work to slice.
    struct TurnShape {
      int ioEvents = 0;
      Duration io{0};
      Duration timers{0};
      Duration posted{0};
      Duration deferred{0};
    } worstTurn;
    // Turns longer than 5 ms: by wall time, and by the loop thread's own
    // CPU time (the rest of a wall-long turn is preemption).
    uint64_t turnsOver5ms = 0;
    uint64_t turnsOver5msCpu = 0;
    size_t watchers = 0;
    size_t timers = 0;
  };
  Stats stats() const;
  void resetMaxBusy() {
    maxBusy_ = Duration::zero();
    maxBusyCpu_ = Duration::zero();
    worstTurn_ = Stats::TurnShape{};
    turnsOver5ms_ = 0;
    turnsOver5msCpu_ = 0;
  }

 private:
  friend class IoWatcher;
  friend class Timer;

  struct WatchSlot {
    int fd = -1;
    uint32_t events = 0;
    uint32_t generation = 0;
    bool inUse = false;
    IoCallback cb;
  };

  void unwatch(uint32_t slot);
  void setEvents(uint32_t slot, uint32_t events);
  uint32_t slotEvents(uint32_t slot) const { return watchSlots_[slot].events; }
  void cancelTimer(TimerId id) { timers_.cancel(id); }
  bool timerPending(TimerId id) const { return timers_.pending(id); }
  void handleWakeup();
  void wakeLocked();  // requires postMutex_
  void runPosted();
  void runDeferred();
  int epollTimeoutMs(Duration maxWait) const;

  const Clock* clock_;
  // Atomic because run() may adopt a new thread while others call stop().
  std::atomic<std::thread::id> threadId_;
  Fd epoll_;
  Fd wakeFd_;
  IoWatcher wakeWatcher_;
  std::atomic<bool> quit_{false};

  std::vector<WatchSlot> watchSlots_;
  std::vector<uint32_t> freeWatchSlots_;
  size_t activeWatchers_ = 0;

  TimerQueue timers_;

  std::mutex postMutex_;
  std::vector<Functor> posted_;  // guarded by postMutex_
  std::atomic<bool> wakePending_{false};
  std::vector<Functor> runningPosted_;

  std::vector<Functor> deferred_;
  std::vector<std::unique_ptr<DeferredDeletable>> toDelete_;

  static constexpr size_t kMaxEventsPerTurn = 64;
  std::vector<epoll_event> events_;
  uint64_t turns_ = 0;
  Duration maxBusy_{0};
  Duration maxBusyCpu_{0};
  Stats::TurnShape worstTurn_;
  uint64_t turnsOver5ms_ = 0;
  uint64_t turnsOver5msCpu_ = 0;
};

}  // namespace sbx
