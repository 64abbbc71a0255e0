#include "reactor/TimerQueue.h"

#include <utility>

namespace sbx {

MonotonicClock& MonotonicClock::instance() {
  static MonotonicClock clock;
  return clock;
}

bool TimerQueue::less(uint32_t a, uint32_t b) const {
  const Slot& x = slots_[a];
  const Slot& y = slots_[b];
  if (x.deadline != y.deadline) return x.deadline < y.deadline;
  return x.seq < y.seq;
}

void TimerQueue::place(size_t i, uint32_t slot) {
  heap_[i] = slot;
  slots_[slot].heapIndex = static_cast<uint32_t>(i);
}

void TimerQueue::siftUp(size_t i) {
  uint32_t slot = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!less(slot, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, slot);
}

void TimerQueue::siftDown(size_t i) {
  uint32_t slot = heap_[i];
  size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && less(heap_[child + 1], heap_[child])) ++child;
    if (!less(heap_[child], slot)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, slot);
}

void TimerQueue::push(uint32_t slot) {
  heap_.push_back(slot);
  siftUp(heap_.size() - 1);
}

void TimerQueue::removeAt(size_t i) {
  uint32_t removed = heap_[i];
  uint32_t last = heap_.back();
  heap_.pop_back();
  slots_[removed].heapIndex = UINT32_MAX;
  if (i < heap_.size()) {
    place(i, last);
    if (i > 0 && less(last, heap_[(i - 1) / 2])) {
      siftUp(i);
    } else {
      siftDown(i);
    }
  }
}

TimerId TimerQueue::add(TimePoint deadline, Duration interval, Callback cb) {
  uint32_t index;
  if (!freeSlots_.empty()) {
    index = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[index];
  s.deadline = deadline;
  s.seq = nextSeq_++;
  s.interval = interval;
  s.cb = std::move(cb);
  push(index);
  return TimerId{index, s.generation};
}

bool TimerQueue::pending(TimerId id) const {
  if (!id.valid() || id.slot >= slots_.size()) return false;
  const Slot& s = slots_[id.slot];
  return s.generation == id.generation && s.heapIndex != UINT32_MAX;
}

bool TimerQueue::cancel(TimerId id) {
  if (!pending(id)) return false;
  Slot& s = slots_[id.slot];
  removeAt(s.heapIndex);
  ++s.generation;
  // A running callback was moved out of its slot by runExpired(), so a timer
  // cancelling itself never destroys the closure it is executing in.
  s.cb = nullptr;
  freeSlots_.push_back(id.slot);
  return true;
}

void TimerQueue::clear() {
  std::vector<Callback> dying;
  dying.reserve(heap_.size());
  for (uint32_t index : heap_) {
    Slot& s = slots_[index];
    dying.push_back(std::move(s.cb));
    s.cb = nullptr;
    s.heapIndex = UINT32_MAX;
    ++s.generation;
    freeSlots_.push_back(index);
  }
  heap_.clear();
  dying.clear();
}

std::optional<TimePoint> TimerQueue::nextDeadline() const {
  if (heap_.empty()) return std::nullopt;
  return slots_[heap_[0]].deadline;
}

size_t TimerQueue::runExpired(TimePoint now) {
  size_t fired = 0;
  // Timers added during this call with deadline <= now get a sequence number
  // >= this bound and wait for the next call, so a callback that re-adds
  // itself at `now` cannot starve the loop.
  const uint64_t seqBound = nextSeq_;
  while (!heap_.empty()) {
    uint32_t index = heap_[0];
    Slot& s = slots_[index];
    if (s.deadline > now || s.seq >= seqBound) break;
    ++fired;
    if (s.interval > Duration::zero()) {
      TimePoint next = s.deadline + s.interval;
      if (next <= now) next = now + s.interval;
      s.deadline = next;
      s.seq = nextSeq_++;
      siftDown(0);
      const TimerId id{index, s.generation};
      Callback cb = std::move(s.cb);
      cb();  // may add/cancel timers; `s` may dangle from here on
      // Still armed (not cancelled by its own callback): give it back.
      if (pending(id)) slots_[index].cb = std::move(cb);
    } else {
      removeAt(0);
      ++s.generation;
      Callback cb = std::move(s.cb);
      s.cb = nullptr;
      freeSlots_.push_back(index);
      cb();
    }
  }
  return fired;
}

}  // namespace sbx
