#pragma once
// RateLimiter: a token bucket for sandbox creates (create_rps, create_burst;
// over it the API answers 429 "rate limit exceeded for sandbox create").
//
// The bucket starts full (burst tokens), refills continuously at the rate up
// to burst, and each accepted request takes one token. Time is passed in by
// the caller (the loop's now()), so tests drive it with a fake clock and the
// limiter reads no clock of its own.
//
// Kept as GCRA (the time at which the bucket is full again) in whole
// nanoseconds: the rate is held as a whole number of nanoseconds per token
// (1e9 / rate, rounded), so refill times are exact and retryAfter() is
// exactly when tryAcquire() next succeeds, with no floating-point drift.
//
// Loop-thread only: not thread-safe.

#include "reactor/Clock.h"

namespace sbx::orch {

class RateLimiter {
 public:
  // ratePerSecond must be finite and > 0, burst >= 1 (the configuration
  // guarantees it); anything else is a programming error and aborts. A rate
  // above 1e9/s counts as one token per nanosecond; a rate so low that a
  // full bucket would take more than ~3 years to refill counts as that.
  RateLimiter(double ratePerSecond, int burst);

  // Takes one token if one is available at `now`: true, or false (and
  // nothing changes).
  bool tryAcquire(TimePoint now);

  // How long from `now` until tryAcquire() would succeed: 0 when a token is
  // available now. Exact: tryAcquire(now + retryAfter(now)) succeeds when no
  // token is taken in between, tryAcquire one nanosecond earlier does not.
  Duration retryAfter(TimePoint now) const;

  // Tokens available at `now`, fractional (for metrics and tests), in
  // [0, burst].
  double available(TimePoint now) const;

  int burst() const { return burst_; }
  // The time one token takes to refill.
  Duration interval() const { return interval_; }

 private:
  int burst_;
  Duration interval_;  // per token, >= 1ns
  Duration capacity_;  // burst_ * interval_: the refill time of an empty bucket
  // When the bucket is full again; at or before `now` means full. Starts at
  // the earliest TimePoint so that the first call finds a full bucket.
  TimePoint fullAt_ = TimePoint::min();
};

}  // namespace sbx::orch
