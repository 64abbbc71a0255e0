#pragma once
// Typed decoding of JSON request bodies on top of simdjson's DOM parser.
//
// Usage:
//   JsonReader reader;                       // reuse one per thread
//   auto root = reader.parse(body);          // Result<JsonCursor>
//   if (!root) return badRequest(root.message());  // "invalid JSON: ..."
//   JsonCursor c = *root;
//   std::string id;  c.field({"id"}).get(id);       // optional field
//   c.field({"ports"}).forEach([&](const JsonCursor& p) {
//     int64_t hp = 0;
//     if (!p.field({"hostPort", "host_port"}).get(hp)) {...}
//   });
//   if (!reader.ok()) return badRequest(reader.error());
//   // -> "ports[0].hostPort: expected integer"
//
// Error model: the first error recorded wins; later reads still run but do
// not overwrite it. A cursor for a missing key or a JSON null is "absent":
// get() leaves the output untouched and returns false without an error, so
// optional fields need no special casing and required ones are checked with
// present(). Unknown fields are ignored; wrong types are errors.
//
// Lifetime: cursors point into the reader's parsed document and are valid
// until the next parse() on the same reader or its destruction. Not
// thread-safe: one reader per thread.

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "base/Result.h"

namespace sbx::json {

class JsonReader;

enum class JsonKind { Absent, Null, Object, Array, String, Integer, Double, Bool };

class JsonCursor {
 public:
  // The path of this value for error messages: "" for the root, "id",
  // "ports[0].hostPort", "containers[1].resource.cpu".
  const std::string& path() const { return path_; }
  JsonKind kind() const;
  // Exists and is not null.
  bool present() const;

  // The first of `names` that exists in this object (aliases such as
  // camelCase and snake_case; a key whose value is null counts as absent, so
  // the next alias is tried). The returned cursor's path uses the name that
  // matched, or the first name when none did. If this cursor is present but
  // not an object, records "<path>: expected object" and returns an absent
  // cursor.
  JsonCursor field(std::initializer_list<std::string_view> names) const;

  // Typed reads. Absent → false, no error, `out` untouched. Wrong type →
  // records "<path>: expected string|integer|number|boolean" and returns
  // false. Integers: JSON numbers without fraction or exponent that fit
  // int64_t; otherwise "<path>: expected integer". A double read accepts any
  // JSON number.
  bool get(std::string& out) const;
  bool get(std::string_view& out) const;  // points into the document
  bool get(int64_t& out) const;
  bool get(double& out) const;
  bool get(bool& out) const;

  // Arrays. Absent → 0 / no calls. Not an array → "<path>: expected array".
  // forEach calls fn(elementCursor) with paths "<path>[i]". Arrays longer
  // than the reader's maxArrayItems record "<path>: too many items (max N)"
  // and call fn for none.
  size_t size() const;
  void forEach(const std::function<void(const JsonCursor&)>& fn) const;

  // Objects: calls fn(key, valueCursor) for every member in document order.
  // Not an object → "<path>: expected object".
  void forEachMember(const std::function<void(std::string_view, const JsonCursor&)>& fn) const;

  // Records a custom error for this value: "<path>: <what>" ("request body:
  // <what>" at the root). Use for domain errors that still name the field.
  void fail(std::string_view what) const;

 private:
  friend class JsonReader;
  JsonCursor(JsonReader* reader, simdjson::dom::element el, bool exists, std::string path)
      : reader_(reader), el_(el), exists_(exists), path_(std::move(path)) {}

  JsonReader* reader_ = nullptr;
  simdjson::dom::element el_;
  bool exists_ = false;
  std::string path_;
};

class JsonReader {
 public:
  struct Limits {
    size_t maxDepth = 64;          // deeper documents are rejected by parse()
    size_t maxArrayItems = 10000;  // per array, enforced by forEach()
  };
  JsonReader();
  explicit JsonReader(Limits limits);
  ~JsonReader();
  JsonReader(const JsonReader&) = delete;
  JsonReader& operator=(const JsonReader&) = delete;

  // Parses `text` (any bytes; invalid UTF-8 is an error). Resets the error
  // state. Errors: "invalid JSON: <simdjson's message>", "invalid JSON:
  // nesting deeper than N", "request body is empty", "invalid JSON:
  // duplicate key \"id\"" (" in containers[0].resource" when nested).
  Result<JsonCursor> parse(std::string_view text);

  bool ok() const { return error_.empty(); }
  // The first recorded error message ("" when ok()).
  const std::string& error() const { return error_; }
  // Records `message` unless an error is already recorded.
  void recordError(std::string message);

  const Limits& limits() const { return limits_; }

 private:
  Limits limits_;
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::string error_;
};

}  // namespace sbx::json
