#pragma once
// Clock: the monotonic time source of an EventLoop. Injectable so timer tests
// are deterministic (ManualClock) instead of sleeping.

#include <chrono>
#include <cstdint>

namespace sbx {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  // Thread-safe.
  virtual TimePoint now() const = 0;
};

// CLOCK_MONOTONIC.
class MonotonicClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  // A process-wide instance (stateless).
  static MonotonicClock& instance();
};

// A clock that only moves when told to. Not thread-safe: tests drive it from
// the loop thread.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1000))) : now_(start) {}
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }
  void set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_;
};

}  // namespace sbx
