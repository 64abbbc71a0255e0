#include "load/LatencyHistogram.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>

namespace sbx::load {

size_t LatencyHistogram::bucketIndex(int64_t micros) {
  const uint64_t v = static_cast<uint64_t>(std::clamp<int64_t>(micros, 0, kHighestMicros));
  if (v < static_cast<uint64_t>(kSubBuckets)) return static_cast<size_t>(v);
  // v >> shift lands in [64, 128): the top 7 bits of v pick the sub-bucket.
  const int msb = 63 - std::countl_zero(v);
  const int shift = msb - (kSubBucketBits - 1);
  const uint64_t sub = v >> shift;
  return static_cast<size_t>(kSubBuckets + (shift - 1) * kHalf +
                             (static_cast<int64_t>(sub) - kHalf));
}

int64_t LatencyHistogram::bucketUpperBound(size_t index) {
  if (index < static_cast<size_t>(kSubBuckets)) return static_cast<int64_t>(index);
  const int64_t rest = static_cast<int64_t>(index) - kSubBuckets;
  const int shift = static_cast<int>(rest / kHalf) + 1;
  const int64_t sub = kHalf + rest % kHalf;
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::record(int64_t micros) {
  if (micros < 0) micros = 0;
  ++counts_[bucketIndex(micros)];
  if (count_ == 0 || micros < min_) min_ = micros;
  if (count_ == 0 || micros > max_) max_ = micros;
  ++count_;
  sum_ += micros;
}

void LatencyHistogram::record(Duration d) {
  record(std::chrono::round<std::chrono::microseconds>(d).count());
}

int64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p >= 0)) p = 0;  // also NaN
  if (p > 100) p = 100;
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    // The last bucket also holds what was clamped into it: its bound is max.
    if (seen >= rank) return i + 1 == counts_.size() ? max_ : std::min(bucketUpperBound(i), max_);
  }
  return max_;
}

double LatencyHistogram::mean() const {
  return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ ? std::min(min_, other.min_) : other.min_;
  max_ = count_ ? std::max(max_, other.max_) : other.max_;
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::clear() { *this = LatencyHistogram(); }

}  // namespace sbx::load
