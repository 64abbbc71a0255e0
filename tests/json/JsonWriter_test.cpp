#include "json/JsonWriter.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "json/JsonReader.h"

namespace sbx::json {
namespace {

using namespace std::string_literals;

std::string quoteJson(std::string_view s) {
  std::string out;
  JsonWriter::appendQuoted(out, s);
  return out;
}

// U+FFFD as UTF-8.
const std::string R = "\xEF\xBF\xBD";

// Byte-at-a-time reference escaper for ASCII input (checks the fast path).
std::string referenceAscii(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

// Decodes a JSON string literal with JsonReader (validates the output too).
std::string decodeQuoted(const std::string& json, bool* ok) {
  JsonReader reader;
  auto root = reader.parse(json);
  *ok = root.ok();
  std::string out;
  if (!root.ok()) return out;
  *ok = (*root).get(out) && reader.ok();
  return out;
}

TEST_CASE("JsonWriter: empty containers") {
  CHECK(JsonWriter().beginObject().endObject().str() == "{}");
  CHECK(JsonWriter().beginArray().endArray().str() == "[]");
}

TEST_CASE("JsonWriter: nested objects and arrays get commas and colons") {
  JsonWriter w;
  w.beginObject();
  w.kv("a", 1);
  w.key("b").beginArray();
  w.value(1).value("x").beginObject().endObject().beginArray().endArray().null();
  w.beginObject().kv("k", "v").kv("k2", false).endObject();
  w.endArray();
  w.kv("c", true);
  w.key("d").beginObject().key("e").beginObject().kv("f", 2).endObject().endObject();
  w.key("g")
      .beginArray()
      .beginArray()
      .value(1)
      .endArray()
      .beginArray()
      .value(2)
      .endArray()
      .endArray();
  w.endObject();
  CHECK(w.str() == R"({"a":1,"b":[1,"x",{},[],null,{"k":"v","k2":false}],"c":true,)"
                   R"("d":{"e":{"f":2}},"g":[[1],[2]]})");
}

TEST_CASE("JsonWriter: top-level array of objects") {
  JsonWriter w;
  w.beginArray();
  for (int i = 0; i < 3; ++i) w.beginObject().kv("i", i).endObject();
  w.endArray();
  CHECK(w.str() == R"([{"i":0},{"i":1},{"i":2}])");
}

TEST_CASE("JsonWriter: kv with every value type") {
  JsonWriter w;
  const std::string s = "str";
  w.beginObject()
      .kv("s", s)
      .kv("sv", std::string_view("view"))
      .kv("cs", "lit")
      .kv("i", -7)
      .kv("l", 7L)
      .kv("ll", 8LL)
      .kv("u", 9U)
      .kv("ul", 10UL)
      .kv("ull", 11ULL)
      .kv("i64", int64_t{-12})
      .kv("u64", uint64_t{13})
      .kv("sz", size_t{14})
      .kv("sh", static_cast<short>(-15))
      .kv("u8", static_cast<uint8_t>(16))
      .kv("d", 2.5)
      .kv("f", 0.5F)
      .kv("t", true)
      .kv("fa", false)
      .endObject();
  CHECK(w.str() ==
        R"({"s":"str","sv":"view","cs":"lit","i":-7,"l":7,"ll":8,"u":9,"ul":10,"ull":11,)"
        R"("i64":-12,"u64":13,"sz":14,"sh":-15,"u8":16,"d":2.5,"f":0.5,"t":true,"fa":false})");
}

TEST_CASE("JsonWriter: integers at the limits") {
  JsonWriter w;
  w.beginArray()
      .value(std::numeric_limits<int64_t>::min())
      .value(std::numeric_limits<int64_t>::max())
      .value(std::numeric_limits<uint64_t>::max())
      .value(0)
      .value(-1)
      .value(std::numeric_limits<int>::min())
      .endArray();
  CHECK(w.str() ==
        "[-9223372036854775808,9223372036854775807,18446744073709551615,0,-1,-2147483648]");
}

TEST_CASE("JsonWriter: doubles use the shortest round-trip form") {
  auto one = [](double d) { return JsonWriter().value(d).str(); };
  CHECK(one(0.1) == "0.1");
  CHECK(one(2.5) == "2.5");
  CHECK(one(-2.5e-300) == "-2.5e-300");
  CHECK(one(1e21) == "1e+21");
  CHECK(one(1.0) == "1");
  CHECK(one(0.0) == "0");
  CHECK(one(1.0 / 3.0) == "0.3333333333333333");
  CHECK(one(std::numeric_limits<double>::max()) == "1.7976931348623157e+308");
  CHECK(one(std::numeric_limits<double>::denorm_min()) == "5e-324");

  // Round trip through the reader.
  const double values[] = {0.1,
                           1.0 / 3.0,
                           -1e-7,
                           123456.789,
                           1e300,
                           -0.000123,
                           5e-324,
                           std::numeric_limits<double>::max(),
                           9007199254740993.0};
  for (double d : values) {
    JsonReader reader;
    auto root = reader.parse(one(d));
    REQUIRE(root.ok());
    double back = 0;
    CHECK((*root).get(back));
    CHECK(back == d);
  }
}

TEST_CASE("JsonWriter: non-finite doubles become null") {
  JsonWriter w;
  w.beginArray()
      .value(std::numeric_limits<double>::quiet_NaN())
      .value(std::numeric_limits<double>::infinity())
      .value(-std::numeric_limits<double>::infinity())
      .value(1.5)
      .endArray();
  CHECK(w.str() == "[null,null,null,1.5]");
  JsonWriter o;
  o.beginObject().kv("nan", std::nan("")).kv("x", 1).endObject();
  CHECK(o.str() == R"({"nan":null,"x":1})");
}

TEST_CASE("JsonWriter: raw inserts verbatim with separators") {
  JsonWriter inner;
  inner.beginObject().kv("y", "z").endObject();
  JsonWriter w;
  w.beginObject().key("x").raw(inner.str()).key("arr").beginArray();
  w.raw("1").raw("[2,3]").raw(R"("s")");
  w.endArray().kv("after", 0).endObject();
  CHECK(w.str() == R"({"x":{"y":"z"},"arr":[1,[2,3],"s"],"after":0})");
}

TEST_CASE("JsonWriter: keys are escaped") {
  JsonWriter w;
  w.beginObject().kv("a\"b\\c\n", 1).endObject();
  CHECK(w.str() == R"({"a\"b\\c\n":1})");
}

TEST_CASE("JsonWriter: take and clear") {
  JsonWriter w(64);
  w.beginArray().value(1);
  w.clear();
  w.beginArray().value(2).endArray();
  CHECK(w.str() == "[2]");
  std::string taken = w.take();
  CHECK(taken == "[2]");
  w.clear();
  w.beginObject().kv("a", 1).endObject();
  CHECK(w.str() == R"({"a":1})");
}

TEST_CASE("appendQuoted: named escapes") {
  CHECK(quoteJson("") == R"("")");
  CHECK(quoteJson("plain text") == R"("plain text")");
  CHECK(quoteJson("\"") == R"("\"")");
  CHECK(quoteJson("\\") == R"("\\")");
  CHECK(quoteJson("\n") == R"("\n")");
  CHECK(quoteJson("\r") == R"("\r")");
  CHECK(quoteJson("\t") == R"("\t")");
  CHECK(quoteJson("\b") == R"("\b")");
  CHECK(quoteJson("\f") == R"("\f")");
  CHECK(quoteJson("a/b") == R"("a/b")");  // '/' needs no escape
  CHECK(quoteJson("say \"hi\"\\n\n") == R"("say \"hi\"\\n\n")");
}

TEST_CASE("appendQuoted: other control characters use \\u00XX") {
  CHECK(quoteJson("\0"s) == R"("\u0000")");
  CHECK(quoteJson("\x01") == R"("\u0001")");
  CHECK(quoteJson("\x0b") == R"("\u000b")");
  CHECK(quoteJson("\x1f") == R"("\u001f")");
  CHECK(quoteJson("a\0b"s) == R"("a\u0000b")");
  CHECK(quoteJson("\x7f") == "\"\x7f\"");  // DEL is not a JSON control character
  CHECK(quoteJson(" ") == "\" \"");
  // Every byte 0x00..0x1F.
  for (int c = 0; c < 0x20; ++c) {
    const std::string in(1, static_cast<char>(c));
    CHECK(quoteJson(in) == referenceAscii(in));
  }
}

TEST_CASE("appendQuoted: appends to existing content") {
  std::string out = "prefix:";
  JsonWriter::appendQuoted(out, "x\ty");
  CHECK(out == "prefix:\"x\\ty\"");
}

TEST_CASE("appendQuoted: fast path agrees with a byte-wise reference at every offset") {
  const std::string specials = std::string("\"\\\n\x01\x1f\x7f ~", 8) + std::string(1, '\0');
  for (size_t len = 0; len <= 40; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      for (char sp : specials) {
        std::string s(len, 'a');
        for (size_t k = 0; k < len; ++k) s[k] = static_cast<char>('a' + (k % 26));
        s[pos] = sp;
        REQUIRE(quoteJson(s) == referenceAscii(s));
      }
    }
  }
  // All printable ASCII in one string.
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  CHECK(quoteJson(all) == referenceAscii(all));
}

TEST_CASE("appendQuoted: valid UTF-8 is kept as is") {
  const std::string valid[] = {
      "\xC2\x80",          // U+0080
      "\xC3\xA9",          // é
      "\xDF\xBF",          // U+07FF
      "\xE0\xA0\x80",      // U+0800
      "\xE2\x82\xAC",      // €
      "\xED\x9F\xBF",      // U+D7FF, just below the surrogates
      "\xEE\x80\x80",      // U+E000, just above
      "\xEF\xBF\xBF",      // U+FFFF
      "\xF0\x90\x80\x80",  // U+10000
      "\xF0\x9D\x84\x9E",  // 𝄞
      "\xF4\x8F\xBF\xBF",  // U+10FFFF
  };
  for (const std::string& v : valid) {
    CHECK(quoteJson(v) == "\"" + v + "\"");
    const std::string mixed = "ab" + v + "\"cdefghijk" + v;
    CHECK(quoteJson(mixed) == "\"ab" + v + "\\\"cdefghijk" + v + "\"");
  }
  CHECK(quoteJson("naïve café – 日本語 🚀") == "\"naïve café – 日本語 🚀\"");
}

TEST_CASE("appendQuoted: invalid UTF-8 is replaced by U+FFFD") {
  struct Case {
    std::string in;
    std::string want;  // without quotes
  };
  // One U+FFFD per maximal subpart of an ill-formed sequence.
  const Case cases[] = {
      // Overlong encodings.
      {"\xC0\x80", R + R},
      {"\xC1\xBF", R + R},
      {"\xE0\x80\x80", R + R + R},
      {"\xE0\x9F\xBF", R + R + R},
      {"\xF0\x80\x80\x80", R + R + R + R},
      {"\xF0\x8F\xBF\xBF", R + R + R + R},
      // UTF-16 surrogates.
      {"\xED\xA0\x80", R + R + R},
      {"\xED\xBF\xBF", R + R + R},
      {"\xED\xA0\xBD\xED\xB8\x80", R + R + R + R + R + R},  // CESU-8 pair
      // Beyond U+10FFFF and bytes that never occur.
      {"\xF4\x90\x80\x80", R + R + R + R},
      {"\xF5\x80\x80\x80", R + R + R + R},
      {"\xF7\xBF\xBF\xBF", R + R + R + R},
      {"\xF8\x88\x80\x80\x80", R + R + R + R + R},
      {"\xFE", R},
      {"\xFF", R},
      // Stray continuation bytes.
      {"\x80", R},
      {"\xBF", R},
      {"a\x80\x80z", "a" + R + R + "z"},
      {"\xC3\xA9\xA9", "\xC3\xA9" + R},
      // Truncated sequences at the end.
      {"a\xC3", "a" + R},
      {"\xE2\x82", R},
      {"\xE2", R},
      {"\xF0\x9D\x84", R},
      {"\xF0\x9D", R},
      // Truncated in the middle: the interrupting byte is kept.
      {"\xE2\x82"
       "A",
       R + "A"},
      {"\xF0\x9D\x84"
       "A",
       R + "A"},
      {"\xC3\"", R + "\\\""},
      {"\xC3\n", R + "\\n"},
      {"\xE2\x28\xA1", R + "(" + R},
      {"\xC3\xC3\xA9", R + "\xC3\xA9"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CHECK(quoteJson(c.in) == "\"" + c.want + "\"");
  }
}

TEST_CASE("appendQuoted: output of arbitrary bytes is always valid JSON") {
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int iter = 0; iter < 2000; ++iter) {
    const size_t len = next() % 48;
    std::string s;
    for (size_t i = 0; i < len; ++i) {
      const uint64_t r = next();
      // Bias towards interesting bytes: ASCII, continuation and lead bytes.
      switch (r % 4) {
        case 0:
          s.push_back(static_cast<char>(0x20 + (r >> 8) % 0x60));
          break;
        case 1:
          s.push_back(static_cast<char>(0x80 + (r >> 8) % 0x40));
          break;
        case 2:
          s.push_back(static_cast<char>(0xC0 + (r >> 8) % 0x40));
          break;
        default:
          s.push_back(static_cast<char>((r >> 8) & 0xFF));
          break;
      }
    }
    const std::string json = quoteJson(s);
    bool ok = false;
    const std::string back = decodeQuoted(json, &ok);
    CAPTURE(s);
    REQUIRE(ok);
    // Re-quoting valid output changes nothing.
    CHECK(quoteJson(back) == json);
  }
}

TEST_CASE("errorBody") {
  CHECK(errorBody("not found") == R"({"error":"not found"})");
  CHECK(errorBody("") == R"({"error":""})");
  CHECK(errorBody("bad \"id\"\n\x01") == R"({"error":"bad \"id\"\n\u0001"})");
  CHECK(errorBody("x\xFFy") == "{\"error\":\"x" + R + "y\"}");
}

TEST_CASE("JsonWriter: round trip through JsonReader") {
  std::string allAscii;
  for (int c = 0; c < 0x80; ++c) allAscii.push_back(static_cast<char>(c));
  const std::vector<std::string> tricky = {
      "",
      allAscii,
      "quote \" backslash \\ slash / ",
      "\\u0041 is not unescaped",
      "line1\nline2\r\n\ttab\bback\fform",
      std::string("nul\0inside", 10),
      "é€𝄞\xF4\x8F\xBF\xBF",
      std::string(1000, 'x') + "\"" + std::string(1000, 'y'),
  };
  JsonWriter w;
  w.beginObject();
  w.key("strings").beginArray();
  for (const std::string& s : tricky) w.value(s);
  w.endArray();
  w.key("byKey").beginObject();
  for (size_t i = 0; i < tricky.size(); ++i)
    w.kv(tricky[i] + std::to_string(i), static_cast<int64_t>(i));
  w.endObject();
  w.kv("min", std::numeric_limits<int64_t>::min());
  w.kv("max", std::numeric_limits<int64_t>::max());
  w.kv("pi", 3.141592653589793);
  w.kv("yes", true);
  w.key("nothing").null();
  w.key("invalid").value("a\xC0z");
  w.endObject();

  JsonReader reader;
  auto root = reader.parse(w.str());
  REQUIRE(root.ok());
  JsonCursor c = *root;

  std::vector<std::string> back;
  c.field({"strings"}).forEach([&](const JsonCursor& e) {
    std::string s;
    CHECK(e.get(s));
    back.push_back(s);
  });
  CHECK(back == tricky);

  std::vector<std::pair<std::string, int64_t>> members;
  c.field({"byKey"}).forEachMember([&](std::string_view k, const JsonCursor& v) {
    int64_t n = -1;
    CHECK(v.get(n));
    members.emplace_back(std::string(k), n);
  });
  REQUIRE(members.size() == tricky.size());
  for (size_t i = 0; i < tricky.size(); ++i) {
    CHECK(members[i].first == tricky[i] + std::to_string(i));
    CHECK(members[i].second == static_cast<int64_t>(i));
  }

  int64_t mn = 0, mx = 0;
  double pi = 0;
  bool yes = false;
  std::string invalid;
  CHECK(c.field({"min"}).get(mn));
  CHECK(c.field({"max"}).get(mx));
  CHECK(c.field({"pi"}).get(pi));
  CHECK(c.field({"yes"}).get(yes));
  CHECK(c.field({"invalid"}).get(invalid));
  CHECK(mn == std::numeric_limits<int64_t>::min());
  CHECK(mx == std::numeric_limits<int64_t>::max());
  CHECK(pi == 3.141592653589793);
  CHECK(yes);
  CHECK(invalid == "a" + R + "z");
  CHECK(c.field({"nothing"}).kind() == JsonKind::Null);
  CHECK(reader.ok());
}

}  // namespace
}  // namespace sbx::json
