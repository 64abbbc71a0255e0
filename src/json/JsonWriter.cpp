#include "json/JsonWriter.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

namespace sbx::json {

namespace {

// Byte classes for appendQuoted.
enum : uint8_t {
  kPlain = 0,    // copied as is
  kEscape = 1,   // '"', '\\' or a control character
  kNonAscii = 2  // lead or continuation byte of a multi-byte sequence
};

constexpr std::array<uint8_t, 256> makeClassTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if (c < 0x20 || c == '"' || c == '\\') {
      t[c] = kEscape;
    } else if (c >= 0x80) {
      t[c] = kNonAscii;
    } else {
      t[c] = kPlain;
    }
  }
  return t;
}

constexpr std::array<uint8_t, 256> kClass = makeClassTable();

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// True when any byte of the 8-byte word needs attention: >= 0x80, < 0x20,
// '"' or '\\'. Classic SWAR tests (exact as a yes/no answer for the whole
// word); the caller rescans a flagged word byte by byte.
inline bool wordNeedsWork(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t bslash = w ^ (kOnes * '\\');
  const uint64_t less20 = (w - kOnes * 0x20) & ~w;
  const uint64_t isQuote = (quote - kOnes) & ~quote;
  const uint64_t isBslash = (bslash - kOnes) & ~bslash;
  return ((w | less20 | isQuote | isBslash) & kHigh) != 0;
}

inline bool isCont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i] (s[i] >= 0x80), or 0
// when invalid. On 0, *bad is set to the length of the maximal subpart to
// replace by one U+FFFD (Unicode "substitution of maximal subparts").
inline size_t utf8Sequence(const unsigned char* s, size_t i, size_t n, size_t* bad) {
  const unsigned char c = s[i];
  size_t need;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) {
      lo = 0xA0;  // overlong
    } else if (c == 0xED) {
      hi = 0x9F;  // UTF-16 surrogates
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) {
      lo = 0x90;  // overlong
    } else if (c == 0xF4) {
      hi = 0x8F;  // > U+10FFFF
    }
  } else {
    // Stray continuation byte, C0/C1 (always overlong) or F5..FF.
    *bad = 1;
    return 0;
  }
  size_t j = i + 1;
  if (j >= n || s[j] < lo || s[j] > hi) {
    *bad = 1;
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    ++j;
    if (j >= n || !isCont(s[j])) {
      *bad = j - i;
      return 0;
    }
  }
  return need + 1;
}

}  // namespace

void JsonWriter::appendQuoted(std::string& out, std::string_view sv) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  out.reserve(out.size() + n + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < n) {
    // Fast path: a run of bytes that need no escaping, appended in one go.
    size_t run = i;
    while (run + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + run, 8);
      if (wordNeedsWork(w)) break;
      run += 8;
    }
    while (run < n && kClass[s[run]] == kPlain) ++run;
    if (run > i) {
      out.append(sv.data() + i, run - i);
      i = run;
      if (i == n) break;
    }

    const unsigned char c = s[i];
    if (kClass[c] == kEscape) {
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        default: {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, sizeof(esc));
        }
      }
      ++i;
      continue;
    }

    // Non-ASCII: copy valid sequences, replace invalid ones.
    size_t bad = 0;
    const size_t len = utf8Sequence(s, i, n, &bad);
    if (len != 0) {
      out.append(sv.data() + i, len);
      i += len;
    } else {
      out.append(kReplacement);
      i += bad;
    }
  }
  out.push_back('"');
}

void JsonWriter::beforeValue() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::beginObject() {
  beforeValue();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  if (!first_.empty()) first_.pop_back();
  afterKey_ = false;
  out_.push_back('}');
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  beforeValue();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  if (!first_.empty()) first_.pop_back();
  afterKey_ = false;
  out_.push_back(']');
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
  appendQuoted(out_, k);
  out_.push_back(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  beforeValue();
  appendQuoted(out_, s);
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  beforeValue();
  out_.append(b ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::writeInt(int64_t v) {
  beforeValue();
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, res.ptr);
  return *this;
}

JsonWriter& JsonWriter::writeUint(uint64_t v) {
  beforeValue();
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, res.ptr);
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  if (!std::isfinite(v)) return null();
  beforeValue();
  char buf[32];  // shortest round-trip form needs at most 24
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, res.ptr);
  return *this;
}

JsonWriter& JsonWriter::null() {
  beforeValue();
  out_.append("null");
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  beforeValue();
  out_.append(json);
  return *this;
}

void JsonWriter::clear() {
  out_.clear();
  first_.clear();
  afterKey_ = false;
}

std::string errorBody(std::string_view message) {
  JsonWriter w(message.size() + 16);
  w.beginObject().kv("error", message).endObject();
  return w.take();
}

}  // namespace sbx::json
