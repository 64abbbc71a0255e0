#pragma once
// TimerQueue: timers in an indexed binary min-heap keyed by (deadline,
// sequence), so timers with equal deadlines fire in the order they were
// added and cancellation is O(log n) without tombstones.
//
// Loop-thread only (the EventLoop owns one and drives it). Callbacks may add
// and cancel timers, including their own.

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "reactor/Clock.h"

namespace sbx {

// Identifies a timer: slot index + generation, so a stale id (a timer that
// already fired or was cancelled) never cancels a newer timer in that slot.
struct TimerId {
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return slot != UINT32_MAX; }
};

class TimerQueue {
 public:
  using Callback = std::function<void()>;

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Adds a timer firing at `deadline`, then every `interval` if interval > 0.
  TimerId add(TimePoint deadline, Duration interval, Callback cb);
  // Cancels a pending timer. Returns false if it already fired (one-shot) or
  // was cancelled. Safe to call from inside any timer callback.
  bool cancel(TimerId id);
  bool pending(TimerId id) const;

  // The earliest deadline, if any timer is pending.
  std::optional<TimePoint> nextDeadline() const;

  // Fires, in (deadline, sequence) order, every timer whose deadline <= now
  // at the time of the call. A repeating timer is re-armed (deadline +=
  // interval, or now + interval if it fell behind) before its callback runs,
  // and fires at most once per call. Returns the number fired.
  size_t runExpired(TimePoint now);

  size_t size() const { return heap_.size(); }

  // Drops every timer. Callbacks are destroyed after the queue is already
  // empty, so a callback whose captures cancel timers (RAII handles) finds a
  // consistent queue.
  void clear();

 private:
  struct Slot {
    TimePoint deadline;
    uint64_t seq = 0;
    Duration interval{0};
    Callback cb;
    uint32_t generation = 0;
    uint32_t heapIndex = UINT32_MAX;  // UINT32_MAX: free
  };

  bool less(uint32_t a, uint32_t b) const;
  void siftUp(size_t i);
  void siftDown(size_t i);
  void removeAt(size_t i);
  void push(uint32_t slot);
  void place(size_t i, uint32_t slot);

  std::vector<Slot> slots_;
  std::vector<uint32_t> freeSlots_;
  std::vector<uint32_t> heap_;  // slot indices
  uint64_t nextSeq_ = 0;
};

}  // namespace sbx
