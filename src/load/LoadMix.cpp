#include "load/LoadMix.h"

#include <cassert>
#include <charconv>

namespace sbx::load {

namespace {

constexpr const char* kNames[kLoadOpCount] = {"create", "get", "list", "statuses", "delete"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

const char* loadOpName(LoadOp op) { return kNames[loadOpIndex(op)]; }

Result<LoadMix> LoadMix::parse(std::string_view spec) {
  const std::string where = "mix " + quoted(spec) + ": ";
  LoadMix mix;
  std::array<bool, kLoadOpCount> seen{};
  std::string_view rest = spec;
  if (trim(rest).empty()) return Error(where + "empty (expected e.g. create=1,get=4)");
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view part = trim(rest.substr(0, comma));
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return Error(where + "expected op=weight, got " + quoted(part));
    }
    const std::string_view name = trim(part.substr(0, eq));
    const std::string_view text = trim(part.substr(eq + 1));
    size_t index = kLoadOpCount;
    for (size_t i = 0; i < kLoadOpCount; ++i) {
      if (name == kNames[i]) index = i;
    }
    if (index == kLoadOpCount) {
      return Error(where + "unknown operation " + quoted(name) +
                   " (expected create, get, list, statuses, delete)");
    }
    if (seen[index]) return Error(where + std::string(name) + " appears twice");
    seen[index] = true;
    uint64_t w = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), w);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || w > kMaxWeight) {
      return Error(where + "weight of " + std::string(name) + " must be a whole number from 0 to " +
                   std::to_string(kMaxWeight) + ", got " + quoted(text));
    }
    mix.weights_[index] = w;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (mix.total() == 0) return Error(where + "every weight is 0");
  return mix;
}

uint64_t LoadMix::total() const {
  uint64_t sum = 0;
  for (uint64_t w : weights_) sum += w;
  return sum;
}

LoadOp LoadMix::pick(uint64_t random) const {
  const uint64_t sum = total();
  assert(sum > 0);
  uint64_t x = random % sum;
  for (size_t i = 0; i < kLoadOpCount; ++i) {
    if (x < weights_[i]) return static_cast<LoadOp>(i);
    x -= weights_[i];
  }
  return LoadOp::Create;  // unreachable: x < sum
}

std::string LoadMix::toString() const {
  std::string out;
  for (size_t i = 0; i < kLoadOpCount; ++i) {
    if (weights_[i] == 0) continue;
    if (!out.empty()) out += ',';
    out += kNames[i];
    out += '=';
    out += std::to_string(weights_[i]);
  }
  return out;
}

}  // namespace sbx::load
