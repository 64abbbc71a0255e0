#pragma once
// LoadMix: which operations a load run starts, and how often, from a spec
// such as "create=1,get=4,list=1,statuses=1,delete=1" (whole-number weights;
// an operation left out has weight 0).
//
// Pure value type: thread-compatible.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/Result.h"

namespace sbx::load {

enum class LoadOp { Create, Get, List, Statuses, Delete };
inline constexpr size_t kLoadOpCount = 5;

// "create", "get", "list", "statuses", "delete".
const char* loadOpName(LoadOp op);
inline size_t loadOpIndex(LoadOp op) { return static_cast<size_t>(op); }

class LoadMix {
 public:
  // The largest weight accepted, so totals cannot overflow.
  static constexpr uint64_t kMaxWeight = 1000000;

  // Every weight 0: total() == 0, pick() must not be called.
  LoadMix() { weights_.fill(0); }

  // Parses "op=weight,...". Spaces around names and weights are ignored.
  // Errors name the offending part:
  //   `mix "x": unknown operation "x" (expected create, get, list, statuses, delete)`
  //   `mix "get=-1": weight of get must be a whole number from 0 to 1000000, got "-1"`
  //   `mix "get": expected op=weight, got "get"`
  //   `mix "get=1,get=2": get appears twice`
  //   `mix "get=0": every weight is 0`
  static Result<LoadMix> parse(std::string_view spec);

  uint64_t weight(LoadOp op) const { return weights_[loadOpIndex(op)]; }
  bool includes(LoadOp op) const { return weight(op) > 0; }
  uint64_t total() const;

  // Deterministic: maps `random` (any 64-bit value, e.g. from a PRNG)
  // to an operation with probability weight/total, by the cumulative
  // weights in enum order of random % total.
  LoadOp pick(uint64_t random) const;

  // The canonical spec: non-zero weights in enum order, "create=1,get=4".
  std::string toString() const;

 private:
  std::array<uint64_t, kLoadOpCount> weights_;
};

}  // namespace sbx::load
