#include "load/LatencyHistogram.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>

using namespace sbx;
using namespace sbx::load;
using namespace std::chrono_literals;

TEST_CASE("LatencyHistogram: empty reports zeros") {
  LatencyHistogram h;
  CHECK(h.count() == 0);
  CHECK(h.percentile(50) == 0);
  CHECK(h.percentile(100) == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0.0);
}

TEST_CASE("LatencyHistogram: values below 128 us are exact, percentiles by nearest rank") {
  LatencyHistogram h;
  for (int64_t v = 100; v >= 1; --v) h.record(v);  // order does not matter
  CHECK(h.count() == 100);
  CHECK(h.min() == 1);
  CHECK(h.max() == 100);
  CHECK(h.mean() == doctest::Approx(50.5));
  CHECK(h.percentile(0) == 1);  // rank at least 1
  CHECK(h.percentile(1) == 1);
  CHECK(h.percentile(50) == 50);
  CHECK(h.percentile(50.1) == 51);  // ceil(50.1) = 51st value
  CHECK(h.percentile(90) == 90);
  CHECK(h.percentile(99) == 99);
  CHECK(h.percentile(100) == 100);
  // Out-of-range p is clamped.
  CHECK(h.percentile(-5) == 1);
  CHECK(h.percentile(250) == 100);
}

TEST_CASE("LatencyHistogram: bucket layout covers 0 .. 2^32-1 with at most 1/64 error") {
  size_t last = 0;
  int64_t lastUpper = -1;
  // Every value near each power of two, and a sweep in between.
  for (int64_t v = 0; v <= LatencyHistogram::kHighestMicros; v = v < 1024 ? v + 1 : v + v / 37) {
    CAPTURE(v);
    const size_t i = LatencyHistogram::bucketIndex(v);
    const int64_t upper = LatencyHistogram::bucketUpperBound(i);
    REQUIRE(i >= last);  // monotonic
    CHECK(upper >= v);
    if (v < 128) {
      CHECK(upper == v);
    } else {
      CHECK(upper - v <= v / 64);
    }
    if (i > last) CHECK(upper > lastUpper);
    last = i;
    lastUpper = upper;
  }
  for (int shift = 7; shift < 32; ++shift) {
    const int64_t p = int64_t{1} << shift;
    CAPTURE(shift);
    CHECK(LatencyHistogram::bucketIndex(p) == LatencyHistogram::bucketIndex(p - 1) + 1);
    CHECK(LatencyHistogram::bucketUpperBound(LatencyHistogram::bucketIndex(p - 1)) == p - 1);
  }
  const size_t top = LatencyHistogram::bucketIndex(LatencyHistogram::kHighestMicros);
  CHECK(LatencyHistogram::bucketUpperBound(top) == LatencyHistogram::kHighestMicros);
  CHECK(LatencyHistogram::bucketIndex(LatencyHistogram::kHighestMicros * 4) == top);
  CHECK(LatencyHistogram::bucketIndex(-1) == 0);
}

TEST_CASE("LatencyHistogram: large values within two significant digits, clamped to max") {
  LatencyHistogram h;
  for (int64_t ms = 1; ms <= 1000; ++ms) h.record(ms * 1000);  // 1 ms .. 1 s
  CHECK(h.count() == 1000);
  CHECK(h.min() == 1000);
  CHECK(h.max() == 1000000);
  CHECK(h.mean() == doctest::Approx(500500.0));
  const int64_t p50 = h.percentile(50);
  CHECK(p50 >= 500000);
  CHECK(p50 <= 500000 + 500000 / 64);
  const int64_t p99 = h.percentile(99);
  CHECK(p99 >= 990000);
  CHECK(p99 <= 990000 + 990000 / 64);
  CHECK(h.percentile(100) == 1000000);  // the bucket's bound, clamped to the max

  LatencyHistogram one;
  one.record(1000);  // bucket [1000, 1007]
  CHECK(one.percentile(50) == 1000);
  CHECK(one.percentile(100) == 1000);
}

TEST_CASE("LatencyHistogram: durations round to microseconds; negatives and huge values") {
  LatencyHistogram h;
  h.record(Duration(1500ns));
  h.record(Duration(1499ns));
  h.record(Duration(-3ms));
  h.record(int64_t{-7});
  CHECK(h.count() == 4);
  CHECK(h.min() == 0);
  CHECK(h.max() == 2);
  CHECK(h.percentile(100) == 2);
  CHECK(h.percentile(75) == 1);
  CHECK(h.percentile(50) == 0);

  LatencyHistogram big;
  const int64_t tenHours = std::chrono::duration_cast<std::chrono::microseconds>(10h).count();
  big.record(5);
  big.record(Duration(10h));
  CHECK(big.max() == tenHours);
  CHECK(big.percentile(100) == tenHours);  // counted in the last bucket, max kept exact
  CHECK(big.percentile(50) == 5);
}

TEST_CASE("LatencyHistogram: merge equals recording everything in one") {
  LatencyHistogram a, b, all;
  for (int64_t v = 1; v <= 5000; v += 3) {
    (v % 2 ? a : b).record(v * 17);
    all.record(v * 17);
  }
  LatencyHistogram merged;
  merged.merge(a);  // into an empty one
  merged.merge(b);
  merged.merge(LatencyHistogram());  // an empty one changes nothing
  CHECK(merged.count() == all.count());
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
  CHECK(merged.mean() == doctest::Approx(all.mean()));
  for (double p : {0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    CAPTURE(p);
    CHECK(merged.percentile(p) == all.percentile(p));
  }
  merged.clear();
  CHECK(merged.count() == 0);
  CHECK(merged.percentile(50) == 0);
}
