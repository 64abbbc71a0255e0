#pragma once
// JsonWriter: builds a JSON text into a std::string with correct escaping.
// No JSON in this project is built by string concatenation: every response
// body and log line goes through this class.
//
// Not thread-safe; one writer per document.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbx::json {

class JsonWriter {
 public:
  JsonWriter() = default;
  explicit JsonWriter(size_t reserveBytes) { out_.reserve(reserveBytes); }

  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();

  // Inside an object: the next value's key. Commas are inserted automatically.
  JsonWriter& key(std::string_view k);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  // One overload per builtin integer type (int64_t/uint64_t are one of
  // these), so every integer argument resolves without ambiguity.
  JsonWriter& value(int v) { return writeInt(v); }
  JsonWriter& value(long v) { return writeInt(v); }
  JsonWriter& value(long long v) { return writeInt(v); }
  JsonWriter& value(unsigned v) { return writeUint(v); }
  JsonWriter& value(unsigned long v) { return writeUint(v); }
  JsonWriter& value(unsigned long long v) { return writeUint(v); }
  // Non-finite doubles are written as null (JSON has no NaN/Inf).
  JsonWriter& value(double v);
  JsonWriter& null();

  // Inserts an already-serialized JSON value verbatim (trusted input only,
  // e.g. a document produced by another JsonWriter).
  JsonWriter& raw(std::string_view json);

  // key(k) followed by value(v).
  template <class V>
  JsonWriter& kv(std::string_view k, V&& v) {
    key(k);
    return value(std::forward<V>(v));
  }

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }
  void clear();

  // Appends `s` as a quoted JSON string to `out`: escapes '"', '\\' and
  // control characters (\n, \r, \t, \b, \f, others as \u00XX), keeps valid
  // UTF-8 as is, replaces each invalid UTF-8 sequence (overlong forms,
  // surrogates, code points > U+10FFFF, truncated sequences) with U+FFFD.
  static void appendQuoted(std::string& out, std::string_view s);

 private:
  void beforeValue();
  JsonWriter& writeInt(int64_t v);
  JsonWriter& writeUint(uint64_t v);

  std::string out_;
  // One entry per open container: true while no element has been written.
  std::vector<bool> first_;
  bool afterKey_ = false;
};

// {"error": message}
std::string errorBody(std::string_view message);

}  // namespace sbx::json
