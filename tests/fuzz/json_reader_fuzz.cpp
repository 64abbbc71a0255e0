// JsonReader (json/JsonReader.h) on any bytes: every value of a parsed
// document is walked with the cursor API, reading each with its own type
// (no error may be recorded) and then with a wrong one (an error naming the
// path must be). Every string and key the reader returns is written with
// JsonWriter, parsed back and compared; so is every int64. The raw input is
// also quoted by JsonWriter::appendQuoted, which must always give a valid
// JSON string (the same bytes when the input is valid UTF-8).

#include <simdjson.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "FuzzTarget.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"

namespace {

using sbx::json::JsonCursor;
using sbx::json::JsonKind;
using sbx::json::JsonReader;
using sbx::json::JsonWriter;

// A second reader for the round trips: the document being walked lives in
// the first one until its next parse().
JsonReader& roundTripReader() {
  static JsonReader reader;
  return reader;
}

// Parses `json` (an array of one element) with the round-trip reader and
// returns that element's cursor through `fn`.
template <class Fn>
void withOnlyElement(const std::string& json, Fn fn) {
  JsonReader& reader = roundTripReader();
  auto root = reader.parse(json);
  SBX_FUZZ_CHECK(root.ok());
  SBX_FUZZ_CHECK(root->kind() == JsonKind::Array);
  SBX_FUZZ_CHECK(root->size() == 1);
  size_t seen = 0;
  root->forEach([&](const JsonCursor& c) {
    ++seen;
    fn(c);
  });
  SBX_FUZZ_CHECK(seen == 1);
  SBX_FUZZ_CHECK(reader.ok());
}

void checkStringRoundTrip(std::string_view s) {
  JsonWriter w;
  w.beginArray().value(s).endArray();
  withOnlyElement(w.str(), [&](const JsonCursor& c) {
    std::string back;
    SBX_FUZZ_CHECK(c.get(back));
    SBX_FUZZ_CHECK(back == s);
  });
}

void checkKeyRoundTrip(std::string_view key) {
  JsonWriter w;
  w.beginArray().beginObject().kv(key, 1).endObject().endArray();
  withOnlyElement(w.str(), [&](const JsonCursor& c) {
    size_t members = 0;
    c.forEachMember([&](std::string_view k, const JsonCursor& v) {
      ++members;
      SBX_FUZZ_CHECK(k == key);
      int64_t one = 0;
      SBX_FUZZ_CHECK(v.get(one) && one == 1);
    });
    SBX_FUZZ_CHECK(members == 1);
  });
}

void checkIntRoundTrip(int64_t v) {
  JsonWriter w;
  w.beginArray().value(v).endArray();
  withOnlyElement(w.str(), [&](const JsonCursor& c) {
    int64_t back = 0;
    SBX_FUZZ_CHECK(c.get(back));
    SBX_FUZZ_CHECK(back == v);
  });
}

bool endsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

struct Walk {
  JsonReader& reader;
  bool roundTrips;          // check writer round trips (the unlimited reader only)
  bool bigInteger = false;  // an integer above INT64_MAX was read as int64
  bool tooLong = false;     // an array over the reader's maxArrayItems

  void value(const JsonCursor& c) {
    switch (c.kind()) {
      case JsonKind::Absent:
      case JsonKind::Null:
        SBX_FUZZ_CHECK(!c.present());
        return;
      case JsonKind::Object: {
        SBX_FUZZ_CHECK(c.present());
        std::set<std::string_view> seen;
        c.forEachMember([&](std::string_view key, const JsonCursor& v) {
          const std::string expected =
              c.path().empty() ? std::string(key) : c.path() + "." + std::string(key);
          SBX_FUZZ_CHECK(v.path() == expected);
          // field() finds the first member of a name (simdjson's at_key).
          if (seen.insert(key).second) {
            const JsonCursor f = c.field({key});
            SBX_FUZZ_CHECK(f.kind() == v.kind());
            SBX_FUZZ_CHECK(f.path() == expected);
          }
          if (roundTrips) checkKeyRoundTrip(key);
          value(v);
        });
        return;
      }
      case JsonKind::Array: {
        const size_t n = c.size();
        size_t i = 0;
        c.forEach([&](const JsonCursor& e) {
          SBX_FUZZ_CHECK(e.path() == c.path() + "[" + std::to_string(i) + "]");
          ++i;
          value(e);
        });
        // forEach refuses arrays over the reader's limit, with an error.
        SBX_FUZZ_CHECK(i == n || (i == 0 && n > reader.limits().maxArrayItems));
        if (n > reader.limits().maxArrayItems) tooLong = true;
        return;
      }
      case JsonKind::String: {
        std::string s;
        std::string_view view;
        SBX_FUZZ_CHECK(c.get(s));
        SBX_FUZZ_CHECK(c.get(view));
        SBX_FUZZ_CHECK(view == s);
        SBX_FUZZ_CHECK(simdjson::validate_utf8(s.data(), s.size()));
        if (roundTrips) checkStringRoundTrip(s);
        return;
      }
      case JsonKind::Integer: {
        double d = 0;
        SBX_FUZZ_CHECK(c.get(d));
        int64_t v = 0;
        if (c.get(v)) {
          if (roundTrips) checkIntRoundTrip(v);
        } else {
          // Only an unsigned value above INT64_MAX is not an int64.
          SBX_FUZZ_CHECK(d > 9.2e18);
          bigInteger = true;
        }
        return;
      }
      case JsonKind::Double: {
        double d = 0;
        SBX_FUZZ_CHECK(c.get(d));
        return;
      }
      case JsonKind::Bool: {
        bool b = false;
        SBX_FUZZ_CHECK(c.get(b));
        return;
      }
    }
  }
};

// Reads `c` as a type it is not: the reader must record an error that names
// the value ("request body: expected boolean" at the root).
void checkWrongType(JsonReader& reader, const JsonCursor& c) {
  if (!c.present() || !reader.ok()) return;
  bool b = false;
  std::string s;
  if (c.kind() == JsonKind::Bool) {
    SBX_FUZZ_CHECK(!c.get(s));
    SBX_FUZZ_CHECK(endsWith(reader.error(), ": expected string"));
  } else {
    SBX_FUZZ_CHECK(!c.get(b));
    SBX_FUZZ_CHECK(endsWith(reader.error(), ": expected boolean"));
  }
  const std::string name = c.path().empty() ? std::string("request body") : c.path();
  SBX_FUZZ_CHECK(reader.error().rfind(name + ": ", 0) == 0);
}

void checkQuoting(std::string_view input) {
  std::string quoted = "[";
  JsonWriter::appendQuoted(quoted, input);
  quoted += "]";
  withOnlyElement(quoted, [&](const JsonCursor& c) {
    std::string back;
    SBX_FUZZ_CHECK(c.get(back));
    if (simdjson::validate_utf8(input.data(), input.size())) SBX_FUZZ_CHECK(back == input);
  });
}

}  // namespace

SBX_FUZZ_TARGET(json_reader) {
  static JsonReader reader;
  auto root = reader.parse(input);
  if (!root.ok()) {
    SBX_FUZZ_CHECK(!reader.ok());
    SBX_FUZZ_CHECK(root.message() == reader.error());
  } else {
    SBX_FUZZ_CHECK(reader.ok());
    Walk walk{reader, true};
    walk.value(*root);
    SBX_FUZZ_CHECK(reader.ok() || walk.bigInteger || walk.tooLong);
    checkWrongType(reader, *root);
    // Reading again after an error changes nothing: the first error stays.
    const std::string first = reader.error();
    Walk again{reader, false};
    again.value(*root);
    SBX_FUZZ_CHECK(first.empty() || reader.error() == first);
  }

  // Tight limits: deep documents and long arrays are refused with errors.
  static JsonReader limited(JsonReader::Limits{4, 8});
  if (auto small = limited.parse(input); small.ok()) {
    Walk walk{limited, false};
    walk.value(*small);
    SBX_FUZZ_CHECK(limited.ok() || !limited.error().empty());
  }

  checkQuoting(input);
}
