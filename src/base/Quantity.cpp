#include "base/Quantity.h"

#include <limits>

namespace sbx {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Parses "123", "1.5", ".5" into an integer part and a fraction as
// numerator/10^digits. Returns false on anything else.
struct Decimal {
  int64_t whole = 0;
  int64_t frac = 0;       // fractional digits as an integer
  int64_t fracScale = 1;  // 10^(number of fractional digits)
};

bool parseDecimal(std::string_view s, Decimal& d) {
  if (s.empty()) return false;
  size_t i = 0;
  bool digits = false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (d.whole > (kMax - 9) / 10) return false;
    d.whole = d.whole * 10 + (s[i] - '0');
    ++i;
    digits = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (d.fracScale > kMax / 10) return false;
      d.frac = d.frac * 10 + (s[i] - '0');
      d.fracScale *= 10;
      ++i;
      digits = true;
    }
  }
  return digits && i == s.size();
}

// value * mult, exact. False on overflow or when the result is not whole.
bool scale(const Decimal& d, int64_t mult, int64_t& out) {
  if (d.whole != 0 && mult > kMax / d.whole) return false;
  int64_t w = d.whole * mult;
  // frac * mult / fracScale must be whole.
  __int128 f = static_cast<__int128>(d.frac) * mult;
  if (f % d.fracScale != 0) return false;
  __int128 total = static_cast<__int128>(w) + f / d.fracScale;
  if (total > kMax) return false;
  out = static_cast<int64_t>(total);
  return true;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s.substr(0, 64)) + "\""; }

}  // namespace

Result<int64_t> parseCpuMillis(std::string_view text) {
  std::string_view num = text;
  int64_t mult = 1000;
  if (!num.empty() && num.back() == 'm') {
    num.remove_suffix(1);
    mult = 1;
  }
  Decimal d;
  int64_t out = 0;
  if (!parseDecimal(num, d)) {
    return Error("invalid cpu quantity " + quoted(text) + ": expected e.g. 250m, 0.5 or 2");
  }
  if (!scale(d, mult, out)) {
    return Error("invalid cpu quantity " + quoted(text) + ": finer than 1m or too large");
  }
  if (out <= 0) return Error("invalid cpu quantity " + quoted(text) + ": must be positive");
  return out;
}

Result<int64_t> parseMemoryBytes(std::string_view text) {
  struct Suffix {
    std::string_view s;
    int64_t mult;
  };
  static constexpr Suffix kSuffixes[] = {
      {"Ki", 1LL << 10}, {"Mi", 1LL << 20}, {"Gi", 1LL << 30}, {"Ti", 1LL << 40},
      {"Pi", 1LL << 50}, {"Ei", 1LL << 60}, {"k", 1000LL},     {"K", 1000LL},
      {"M", 1000000LL},  {"G", 1000000000LL}, {"T", 1000000000000LL},
      {"P", 1000000000000000LL}, {"E", 1000000000000000000LL},
  };
  std::string_view num = text;
  int64_t mult = 1;
  for (const Suffix& sfx : kSuffixes) {
    if (num.size() > sfx.s.size() && num.substr(num.size() - sfx.s.size()) == sfx.s) {
      num.remove_suffix(sfx.s.size());
      mult = sfx.mult;
      break;
    }
  }
  Decimal d;
  int64_t out = 0;
  if (!parseDecimal(num, d)) {
    return Error("invalid memory quantity " + quoted(text) + ": expected e.g. 128Mi, 1Gi, 128M or 1G");
  }
  if (!scale(d, mult, out)) {
    return Error("invalid memory quantity " + quoted(text) + ": not whole bytes or too large");
  }
  if (out <= 0) return Error("invalid memory quantity " + quoted(text) + ": must be positive");
  return out;
}

Result<std::chrono::nanoseconds> parseDuration(std::string_view text) {
  struct Unit {
    std::string_view s;
    int64_t ns;
  };
  // Longest first so "ms" is not read as "m".
  static constexpr Unit kUnits[] = {{"ns", 1},          {"us", 1000},          {"ms", 1000000},
                                    {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL}};
  auto bad = [&] {
    return Error("invalid duration " + quoted(text) + ": expected e.g. 250ms, 10s, 4m or 1h30m");
  };
  if (text.empty()) return bad();
  std::string_view rest = text;
  __int128 total = 0;
  while (!rest.empty()) {
    size_t n = 0;
    while (n < rest.size() && ((rest[n] >= '0' && rest[n] <= '9') || rest[n] == '.')) ++n;
    if (n == 0) return bad();
    Decimal d;
    if (!parseDecimal(rest.substr(0, n), d)) return bad();
    rest.remove_prefix(n);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (rest.substr(0, u.s.size()) == u.s) {
        unit = &u;
        break;
      }
    }
    if (!unit) return bad();
    rest.remove_prefix(unit->s.size());
    int64_t part = 0;
    Decimal rounded = d;
    // Sub-nanosecond fractions are truncated, as Go does.
    __int128 f = static_cast<__int128>(rounded.frac) * unit->ns / rounded.fracScale;
    if (rounded.whole != 0 && unit->ns > kMax / rounded.whole) return bad();
    part = rounded.whole * unit->ns;
    total += part + f;
    if (total > kMax) return bad();
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

std::string formatCpuMillis(int64_t millis) { return std::to_string(millis) + "m"; }

std::string formatDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string out;
  if (ns < 0) {
    out = "-";
    ns = -ns;
  }
  if (ns < 1000000000LL) {
    if (ns % 1000000 == 0) return out + std::to_string(ns / 1000000) + "ms";
    if (ns % 1000 == 0) return out + std::to_string(ns / 1000) + "us";
    return out + std::to_string(ns) + "ns";
  }
  int64_t h = ns / 3600000000000LL;
  ns %= 3600000000000LL;
  int64_t m = ns / 60000000000LL;
  ns %= 60000000000LL;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (ns) {
    int64_t s = ns / 1000000000LL;
    int64_t rem = ns % 1000000000LL;
    out += std::to_string(s);
    if (rem) {
      std::string fr = std::to_string(rem + 1000000000LL).substr(1);
      while (!fr.empty() && fr.back() == '0') fr.pop_back();
      out += "." + fr;
    }
    out += "s";
  }
  return out;
}

}  // namespace sbx
