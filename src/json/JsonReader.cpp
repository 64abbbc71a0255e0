#include "json/JsonReader.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <utility>
#include <vector>

namespace sbx::json {

namespace {

namespace dom = simdjson::dom;

// Smallest parser capacity we allocate; grown on demand (powers of two).
constexpr size_t kMinCapacity = 4096;

// The name used for the root value in error messages.
constexpr std::string_view kRootName = "request body";

std::string childPath(const std::string& parent, std::string_view name) {
  std::string p;
  p.reserve(parent.size() + name.size() + 1);
  p = parent;
  if (!p.empty()) p.push_back('.');
  p.append(name);
  return p;
}

std::string indexPath(const std::string& parent, size_t i) {
  std::string p = parent;
  p.push_back('[');
  p.append(std::to_string(i));
  p.push_back(']');
  return p;
}

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// JSON leaves duplicate keys undefined (RFC 8259) and readers disagree on
// which one counts: a body such as {"id":"a","id":"../x"} would mean one
// thing to us and another to a proxy. Finds the first repeated key, depth
// first; `where` gets the path of the object that holds it ("" for the root).
bool findDuplicateKey(dom::element el, std::string& key, std::string& where) {
  if (el.type() == dom::element_type::ARRAY) {
    size_t i = 0;
    for (dom::element item : dom::array(el)) {
      if (findDuplicateKey(item, key, where)) {
        where = "[" + std::to_string(i) + "]" + (where.empty() || where[0] == '[' ? "" : ".") + where;
        return true;
      }
      ++i;
    }
    return false;
  }
  if (el.type() != dom::element_type::OBJECT) return false;
  dom::object obj(el);
  std::vector<std::string_view> keys;
  keys.reserve(obj.size());
  for (dom::key_value_pair kv : obj) keys.push_back(kv.key);
  std::vector<std::string_view> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  if (auto d = std::adjacent_find(sorted.begin(), sorted.end()); d != sorted.end()) {
    key = std::string(*d);
    where.clear();
    return true;
  }
  for (dom::key_value_pair kv : obj) {
    if (findDuplicateKey(kv.value, key, where)) {
      where = std::string(kv.key) + (where.empty() || where[0] == '[' ? "" : ".") + where;
      return true;
    }
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------
// JsonCursor

JsonKind JsonCursor::kind() const {
  if (!exists_) return JsonKind::Absent;
  switch (el_.type()) {
    case dom::element_type::ARRAY:
      return JsonKind::Array;
    case dom::element_type::OBJECT:
      return JsonKind::Object;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return JsonKind::Integer;
    case dom::element_type::DOUBLE:
      return JsonKind::Double;
    case dom::element_type::STRING:
      return JsonKind::String;
    case dom::element_type::BOOL:
      return JsonKind::Bool;
    case dom::element_type::NULL_VALUE:
      return JsonKind::Null;
  }
  return JsonKind::Absent;
}

bool JsonCursor::present() const { return exists_ && !el_.is_null(); }

void JsonCursor::fail(std::string_view what) const {
  if (reader_ == nullptr || !reader_->ok()) return;
  std::string msg;
  const std::string_view name = path_.empty() ? kRootName : std::string_view(path_);
  msg.reserve(name.size() + 2 + what.size());
  msg.append(name);
  msg.append(": ");
  msg.append(what);
  reader_->recordError(std::move(msg));
}

JsonCursor JsonCursor::field(std::initializer_list<std::string_view> names) const {
  const std::string_view firstName = names.size() > 0 ? *names.begin() : std::string_view();
  if (!present()) return JsonCursor(reader_, dom::element(), false, childPath(path_, firstName));
  dom::object obj;
  if (el_.get(obj) != simdjson::SUCCESS) {
    fail("expected object");
    return JsonCursor(reader_, dom::element(), false, childPath(path_, firstName));
  }
  bool sawNull = false;
  dom::element nullEl;
  for (std::string_view name : names) {
    dom::element child;
    if (obj.at_key(name).get(child) != simdjson::SUCCESS) continue;
    if (child.is_null()) {
      if (!sawNull) {
        sawNull = true;
        nullEl = child;
      }
      continue;
    }
    return JsonCursor(reader_, child, true, childPath(path_, name));
  }
  // None present: a null alias yields a Null cursor (still not present()).
  return JsonCursor(reader_, nullEl, sawNull, childPath(path_, firstName));
}

bool JsonCursor::get(std::string_view& out) const {
  if (!present()) return false;
  std::string_view s;
  if (el_.get(s) != simdjson::SUCCESS) {
    fail("expected string");
    return false;
  }
  out = s;
  return true;
}

bool JsonCursor::get(std::string& out) const {
  std::string_view s;
  if (!get(s)) return false;
  out.assign(s.data(), s.size());
  return true;
}

bool JsonCursor::get(int64_t& out) const {
  if (!present()) return false;
  switch (el_.type()) {
    case dom::element_type::INT64: {
      int64_t v = 0;
      if (el_.get(v) == simdjson::SUCCESS) {
        out = v;
        return true;
      }
      break;
    }
    case dom::element_type::UINT64: {
      uint64_t v = 0;
      if (el_.get(v) == simdjson::SUCCESS &&
          v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out = static_cast<int64_t>(v);
        return true;
      }
      break;
    }
    default:
      break;
  }
  fail("expected integer");
  return false;
}

bool JsonCursor::get(double& out) const {
  if (!present()) return false;
  switch (el_.type()) {
    case dom::element_type::INT64: {
      int64_t v = 0;
      if (el_.get(v) != simdjson::SUCCESS) break;
      out = static_cast<double>(v);
      return true;
    }
    case dom::element_type::UINT64: {
      uint64_t v = 0;
      if (el_.get(v) != simdjson::SUCCESS) break;
      out = static_cast<double>(v);
      return true;
    }
    case dom::element_type::DOUBLE: {
      double v = 0;
      if (el_.get(v) != simdjson::SUCCESS) break;
      out = v;
      return true;
    }
    default:
      break;
  }
  fail("expected number");
  return false;
}

bool JsonCursor::get(bool& out) const {
  if (!present()) return false;
  bool b = false;
  if (el_.get(b) != simdjson::SUCCESS) {
    fail("expected boolean");
    return false;
  }
  out = b;
  return true;
}

size_t JsonCursor::size() const {
  if (!present()) return 0;
  dom::array arr;
  if (el_.get(arr) != simdjson::SUCCESS) {
    fail("expected array");
    return 0;
  }
  return arr.size();
}

void JsonCursor::forEach(const std::function<void(const JsonCursor&)>& fn) const {
  if (!present()) return;
  dom::array arr;
  if (el_.get(arr) != simdjson::SUCCESS) {
    fail("expected array");
    return;
  }
  const size_t maxItems =
      reader_ != nullptr ? reader_->limits().maxArrayItems : std::numeric_limits<size_t>::max();
  if (arr.size() > maxItems) {
    fail("too many items (max " + std::to_string(maxItems) + ")");
    return;
  }
  size_t i = 0;
  for (dom::element child : arr) {
    fn(JsonCursor(reader_, child, true, indexPath(path_, i)));
    ++i;
  }
}

void JsonCursor::forEachMember(
    const std::function<void(std::string_view, const JsonCursor&)>& fn) const {
  if (!present()) return;
  dom::object obj;
  if (el_.get(obj) != simdjson::SUCCESS) {
    fail("expected object");
    return;
  }
  for (dom::key_value_pair kv : obj) {
    fn(kv.key, JsonCursor(reader_, kv.value, true, childPath(path_, kv.key)));
  }
}

// ---------------------------------------------------------------------------
// JsonReader

JsonReader::JsonReader() : JsonReader(Limits{}) {}

JsonReader::JsonReader(Limits limits)
    : limits_(limits), parser_(std::make_unique<simdjson::dom::parser>()) {
  if (limits_.maxDepth == 0) limits_.maxDepth = 1;
}

JsonReader::~JsonReader() = default;

void JsonReader::recordError(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

Result<JsonCursor> JsonReader::parse(std::string_view text) {
  error_.clear();
  if (std::all_of(text.begin(), text.end(), isJsonSpace)) {
    recordError("request body is empty");
    return Error(error_);
  }
  // simdjson counts the root scope as one level of its max_depth: a limit of
  // N nested containers needs max_depth N + 1. (simdjson does not count an
  // empty [] or {} as a level, so one may sit at depth N + 1; it holds no
  // values, so the limit still bounds the work done on the document.) The parser keeps max_depth
  // when it grows its capacity, but (re)allocate explicitly so the limit is
  // always ours.
  const size_t simdDepth = limits_.maxDepth + 1;
  if (parser_->capacity() < text.size() || parser_->max_depth() != simdDepth) {
    size_t cap = std::max(kMinCapacity, std::bit_ceil(text.size()));
    cap = std::min(cap, std::max(text.size(), parser_->max_capacity()));
    const simdjson::error_code err = parser_->allocate(cap, simdDepth);
    if (err != simdjson::SUCCESS) {
      recordError(std::string("invalid JSON: ") + simdjson::error_message(err));
      return Error(error_);
    }
  }
  dom::element root;
  const simdjson::error_code err = parser_->parse(text.data(), text.size(), true).get(root);
  if (err != simdjson::SUCCESS) {
    if (err == simdjson::DEPTH_ERROR) {
      recordError("invalid JSON: nesting deeper than " + std::to_string(limits_.maxDepth));
    } else if (err == simdjson::EMPTY) {
      recordError("request body is empty");
    } else {
      recordError(std::string("invalid JSON: ") + simdjson::error_message(err));
    }
    return Error(error_);
  }
  std::string key, where;
  if (findDuplicateKey(root, key, where)) {
    recordError("invalid JSON: duplicate key \"" + key + "\"" + (where.empty() ? "" : " in " + where));
    return Error(error_);
  }
  return JsonCursor(this, root, true, std::string());
}

}  // namespace sbx::json
