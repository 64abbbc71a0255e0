#pragma once
// LatencyHistogram: a log-linear histogram of latencies in microseconds, in
// the manner of HdrHistogram with two significant digits. Values below 128 µs
// are counted exactly; above, each power of two is split into 64 linear
// sub-buckets, so a bucket is at most 1/64 (1.6%) of its values wide. The
// range is 0 .. 2^32-1 µs (~71 minutes); larger values are counted in the
// last bucket (max() still reports them exactly).
//
// Fixed memory (~14 KiB), O(1) record(), O(buckets) percentile(). Not
// thread-safe: one histogram per thread, merge() them afterwards.

#include <array>
#include <cstdint>

#include "reactor/Clock.h"

namespace sbx::load {

class LatencyHistogram {
 public:
  // The largest value a bucket resolves: 2^32 - 1 µs.
  static constexpr int64_t kHighestMicros = (int64_t{1} << 32) - 1;

  LatencyHistogram() { counts_.fill(0); }

  // Records one latency. Negative values count as 0; a Duration is rounded
  // to the nearest microsecond.
  void record(int64_t micros);
  void record(Duration d);

  uint64_t count() const { return count_; }
  // Nearest-rank percentile, p in [0, 100] (clamped): the upper bound of the
  // bucket holding the ceil(p/100 × count)-th smallest value (at least the
  // first), clamped to max(). 0 when empty.
  int64_t percentile(double p) const;
  // Exact extremes and mean of the recorded values; 0 when empty.
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return count_ ? max_ : 0; }
  double mean() const;

  // Adds every value recorded in `other`.
  void merge(const LatencyHistogram& other);
  void clear();

  // The bucket layout, exposed for tests: the index of a value's bucket and
  // the largest value that bucket holds.
  static size_t bucketIndex(int64_t micros);
  static int64_t bucketUpperBound(size_t index);

 private:
  static constexpr int kSubBucketBits = 7;  // 128 exact values, then 64 per power of two
  static constexpr int64_t kSubBuckets = int64_t{1} << kSubBucketBits;
  static constexpr int64_t kHalf = kSubBuckets / 2;
  // Powers of two from 2^7 up to 2^31 each add 64 buckets after the first 128.
  static constexpr size_t kBucketCount = kSubBuckets + (32 - kSubBucketBits) * kHalf;

  std::array<uint64_t, kBucketCount> counts_;
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Sum in µs; 2^63 µs is ~292,000 years of latency, no overflow in practice.
  int64_t sum_ = 0;
};

}  // namespace sbx::load
