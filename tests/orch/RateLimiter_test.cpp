#include "orch/RateLimiter.h"

#include <doctest/doctest.h>

using namespace sbx;
using namespace sbx::orch;
using namespace std::chrono_literals;

namespace {

const TimePoint kStart = TimePoint(std::chrono::seconds(1000));

}  // namespace

TEST_CASE("RateLimiter: starts full, takes burst tokens at once, then refuses") {
  RateLimiter limiter(20, 40);
  CHECK(limiter.burst() == 40);
  CHECK(limiter.interval() == 50ms);
  CHECK(limiter.available(kStart) == 40.0);
  for (int i = 0; i < 40; ++i) {
    CAPTURE(i);
    CHECK(limiter.retryAfter(kStart) == 0ns);
    CHECK(limiter.tryAcquire(kStart));
  }
  CHECK(limiter.available(kStart) == 0.0);
  CHECK_FALSE(limiter.tryAcquire(kStart));
  CHECK_FALSE(limiter.tryAcquire(kStart));  // a refusal takes nothing
  CHECK(limiter.retryAfter(kStart) == 50ms);
}

TEST_CASE("RateLimiter: refills exactly at the rate") {
  RateLimiter limiter(10, 2);  // one token per 100ms
  REQUIRE(limiter.tryAcquire(kStart));
  REQUIRE(limiter.tryAcquire(kStart));
  CHECK(limiter.retryAfter(kStart) == 100ms);
  CHECK(limiter.retryAfter(kStart + 30ms) == 70ms);
  CHECK_FALSE(limiter.tryAcquire(kStart + 100ms - 1ns));
  CHECK(limiter.retryAfter(kStart + 100ms - 1ns) == 1ns);
  CHECK(limiter.available(kStart + 50ms) == doctest::Approx(0.5));
  CHECK(limiter.tryAcquire(kStart + 100ms));
  CHECK_FALSE(limiter.tryAcquire(kStart + 100ms));
  CHECK(limiter.retryAfter(kStart + 100ms) == 100ms);
  // Two intervals refill two tokens, no more than burst.
  CHECK(limiter.tryAcquire(kStart + 300ms));
  CHECK(limiter.tryAcquire(kStart + 300ms));
  CHECK_FALSE(limiter.tryAcquire(kStart + 300ms));
  // Steady state: one per interval, every interval.
  for (int i = 1; i <= 1000; ++i) {
    CAPTURE(i);
    const TimePoint t = kStart + 300ms + i * 100ms;
    CHECK_FALSE(limiter.tryAcquire(t - 1ns));
    CHECK(limiter.tryAcquire(t));
    CHECK_FALSE(limiter.tryAcquire(t));
  }
}

TEST_CASE("RateLimiter: retryAfter is exactly when tryAcquire next succeeds") {
  RateLimiter limiter(3, 1);  // 333333333ns per token (1e9 / 3, rounded)
  CHECK(limiter.interval() == 333333333ns);
  TimePoint t = kStart;
  for (int i = 0; i < 100; ++i) {
    CAPTURE(i);
    REQUIRE(limiter.tryAcquire(t));
    const Duration wait = limiter.retryAfter(t);
    CHECK(wait == 333333333ns);
    CHECK_FALSE(limiter.tryAcquire(t + wait - 1ns));
    t += wait;
  }
}

TEST_CASE("RateLimiter: a long idle spell refills to burst, not beyond") {
  RateLimiter limiter(20, 40);
  for (int i = 0; i < 40; ++i) REQUIRE(limiter.tryAcquire(kStart));
  const TimePoint later = kStart + std::chrono::hours(24 * 365 * 100);  // a century
  CHECK(limiter.available(later) == 40.0);
  CHECK(limiter.retryAfter(later) == 0ns);
  for (int i = 0; i < 40; ++i) {
    CAPTURE(i);
    CHECK(limiter.tryAcquire(later));
  }
  CHECK_FALSE(limiter.tryAcquire(later));
  CHECK(limiter.retryAfter(later) == 50ms);
  // A fresh limiter used at the far end of the clock's range.
  RateLimiter fresh(1, 5);
  const TimePoint far = TimePoint(std::chrono::hours(24 * 365 * 200));
  CHECK(fresh.available(far) == 5.0);
  CHECK(fresh.tryAcquire(far));
}

TEST_CASE("RateLimiter: fractional rates") {
  SUBCASE("one token every two seconds") {
    RateLimiter limiter(0.5, 1);
    CHECK(limiter.interval() == 2s);
    CHECK(limiter.tryAcquire(kStart));
    CHECK_FALSE(limiter.tryAcquire(kStart + 1999ms));
    CHECK(limiter.retryAfter(kStart + 1s) == 1s);
    CHECK(limiter.available(kStart + 1s) == doctest::Approx(0.5));
    CHECK(limiter.tryAcquire(kStart + 2s));
  }
  SUBCASE("2.5 per second") {
    RateLimiter limiter(2.5, 3);
    CHECK(limiter.interval() == 400ms);
    for (int i = 0; i < 3; ++i) REQUIRE(limiter.tryAcquire(kStart));
    CHECK_FALSE(limiter.tryAcquire(kStart + 399ms));
    CHECK(limiter.tryAcquire(kStart + 400ms));
    // 1.2s later: three intervals, back to full.
    CHECK(limiter.available(kStart + 1600ms) == 3.0);
  }
  SUBCASE("very low and very high rates stay within bounds") {
    RateLimiter slow(1e-12, 1000);
    CHECK(slow.interval() > 0ns);
    CHECK(slow.tryAcquire(kStart));
    CHECK(slow.retryAfter(kStart) == 0ns);  // 999 more in the bucket
    RateLimiter fast(1e12, 1);
    CHECK(fast.interval() == 1ns);
    CHECK(fast.tryAcquire(kStart));
    CHECK_FALSE(fast.tryAcquire(kStart));
    CHECK(fast.tryAcquire(kStart + 1ns));
  }
}

TEST_CASE("RateLimiter: time that goes backwards is not a refill") {
  RateLimiter limiter(10, 1);
  REQUIRE(limiter.tryAcquire(kStart));
  CHECK_FALSE(limiter.tryAcquire(kStart - 10s));
  CHECK(limiter.retryAfter(kStart - 10s) == 10s + 100ms);
  CHECK(limiter.tryAcquire(kStart + 100ms));
}
