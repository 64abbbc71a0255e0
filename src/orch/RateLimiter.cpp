#include "orch/RateLimiter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace sbx::orch {

namespace {

// Bounds every time this class adds, so that TimePoint arithmetic cannot
// overflow (steady_clock times are far below 2^63 - 1e17 ns).
constexpr double kMaxCapacityNanos = 1e17;  // ~3.2 years

}  // namespace

RateLimiter::RateLimiter(double ratePerSecond, int burst) : burst_(burst) {
  if (!std::isfinite(ratePerSecond) || ratePerSecond <= 0 || burst < 1) std::abort();
  const double nanos = std::min(1e9 / ratePerSecond, kMaxCapacityNanos / burst);
  interval_ = Duration(std::max<int64_t>(1, std::llround(nanos)));
  capacity_ = interval_ * burst;
}

bool RateLimiter::tryAcquire(TimePoint now) {
  // Taking a token moves "full again" one interval later; the bucket holds
  // at most `capacity_` of such debt.
  const TimePoint next = std::max(fullAt_, now) + interval_;
  if (next - now > capacity_) return false;
  fullAt_ = next;
  return true;
}

Duration RateLimiter::retryAfter(TimePoint now) const {
  const TimePoint next = std::max(fullAt_, now) + interval_;
  return std::max(Duration(0), next - now - capacity_);
}

double RateLimiter::available(TimePoint now) const {
  const Duration debt = std::max(fullAt_, now) - now;
  return static_cast<double>((capacity_ - debt).count()) / static_cast<double>(interval_.count());
}

}  // namespace sbx::orch
