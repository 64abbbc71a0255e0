#include "json/JsonReader.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "json/JsonWriter.h"

namespace sbx::json {
namespace {

// Parses `json` (which must be valid) and returns the root cursor.
JsonCursor parseOk(JsonReader& reader, std::string_view json) {
  auto root = reader.parse(json);
  REQUIRE_MESSAGE(root.ok(), (root.ok() ? std::string() : root.message()));
  return *root;
}

std::string parseError(std::string_view json, JsonReader::Limits limits = {}) {
  JsonReader reader(limits);
  auto root = reader.parse(json);
  if (root.ok()) return "<ok>";
  CHECK(!reader.ok());
  CHECK(reader.error() == root.message());
  return root.message();
}

std::string nested(size_t depth, std::string_view open, std::string_view inner,
                   std::string_view close) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

TEST_CASE("JsonReader: typed reads") {
  JsonReader reader;
  JsonCursor c = parseOk(reader, R"({"s":"hello","i":42,"neg":-1,"d":2.5,"t":true,"f":false,
      "arr":[1,2,3],"o":{"k":"v"},"n":null,"esc":"a\"b\\c\u00e9\n"})");
  CHECK(c.path() == "");
  CHECK(c.kind() == JsonKind::Object);
  CHECK(c.present());

  std::string s;
  CHECK(c.field({"s"}).get(s));
  CHECK(s == "hello");
  std::string_view sv;
  CHECK(c.field({"s"}).get(sv));
  CHECK(sv == "hello");
  CHECK(c.field({"esc"}).get(s));
  CHECK(s == "a\"b\\c\xC3\xA9\n");

  int64_t i = 0;
  CHECK(c.field({"i"}).get(i));
  CHECK(i == 42);
  CHECK(c.field({"neg"}).get(i));
  CHECK(i == -1);

  double d = 0;
  CHECK(c.field({"d"}).get(d));
  CHECK(d == 2.5);
  CHECK(c.field({"i"}).get(d));  // integers are numbers too
  CHECK(d == 42.0);

  bool b = false;
  CHECK(c.field({"t"}).get(b));
  CHECK(b);
  CHECK(c.field({"f"}).get(b));
  CHECK(!b);

  CHECK(c.field({"arr"}).size() == 3);
  std::vector<int64_t> arr;
  c.field({"arr"}).forEach([&](const JsonCursor& e) {
    int64_t v = 0;
    CHECK(e.get(v));
    arr.push_back(v);
  });
  CHECK(arr == std::vector<int64_t>{1, 2, 3});

  CHECK(c.field({"o"}).field({"k"}).get(s));
  CHECK(s == "v");
  CHECK(c.field({"o"}).field({"k"}).path() == "o.k");
  CHECK(reader.ok());
  CHECK(reader.error().empty());
}

TEST_CASE("JsonReader: kinds") {
  JsonReader reader;
  JsonCursor c = parseOk(reader, R"({"o":{},"a":[],"s":"","i":1,"u":18446744073709551615,
      "d":1.5,"e":1e3,"b":false,"n":null})");
  CHECK(c.field({"o"}).kind() == JsonKind::Object);
  CHECK(c.field({"a"}).kind() == JsonKind::Array);
  CHECK(c.field({"s"}).kind() == JsonKind::String);
  CHECK(c.field({"i"}).kind() == JsonKind::Integer);
  CHECK(c.field({"u"}).kind() == JsonKind::Integer);
  CHECK(c.field({"d"}).kind() == JsonKind::Double);
  CHECK(c.field({"e"}).kind() == JsonKind::Double);
  CHECK(c.field({"b"}).kind() == JsonKind::Bool);
  CHECK(c.field({"n"}).kind() == JsonKind::Null);
  CHECK(c.field({"missing"}).kind() == JsonKind::Absent);
  CHECK(c.field({"o"}).field({"x"}).kind() == JsonKind::Absent);
  CHECK(reader.ok());
}

TEST_CASE("JsonReader: absent and null leave outputs untouched without error") {
  JsonReader reader;
  JsonCursor c = parseOk(reader, R"({"n":null,"present":"yes"})");
  for (const char* name : {"n", "missing"}) {
    CAPTURE(name);
    JsonCursor f = c.field({name});
    CHECK(!f.present());
    std::string s = "keep";
    std::string_view sv = "keep";
    int64_t i = 7;
    double d = 7.5;
    bool b = true;
    CHECK(!f.get(s));
    CHECK(!f.get(sv));
    CHECK(!f.get(i));
    CHECK(!f.get(d));
    CHECK(!f.get(b));
    CHECK(s == "keep");
    CHECK(sv == "keep");
    CHECK(i == 7);
    CHECK(d == 7.5);
    CHECK(b);
    CHECK(f.size() == 0);
    int calls = 0;
    f.forEach([&](const JsonCursor&) { ++calls; });
    f.forEachMember([&](std::string_view, const JsonCursor&) { ++calls; });
    CHECK(calls == 0);
    // Fields of absent values are absent too, with the full path.
    CHECK(f.field({"deeper"}).kind() == JsonKind::Absent);
    CHECK(f.field({"deeper"}).path() == std::string(name) + ".deeper");
  }
  CHECK(c.field({"n"}).kind() == JsonKind::Null);
  CHECK(c.field({"missing"}).kind() == JsonKind::Absent);
  CHECK(c.field({"present"}).present());
  CHECK(reader.ok());
}

TEST_CASE("JsonReader: aliases") {
  JsonReader reader;
  SUBCASE("snake_case alias matches") {
    JsonCursor c = parseOk(reader, R"({"host_port":8080})");
    JsonCursor f = c.field({"hostPort", "host_port"});
    CHECK(f.path() == "host_port");
    int64_t v = 0;
    CHECK(f.get(v));
    CHECK(v == 8080);
  }
  SUBCASE("first alias wins when both are present") {
    JsonCursor c = parseOk(reader, R"({"host_port":1,"hostPort":2})");
    JsonCursor f = c.field({"hostPort", "host_port"});
    CHECK(f.path() == "hostPort");
    int64_t v = 0;
    CHECK(f.get(v));
    CHECK(v == 2);
  }
  SUBCASE("a null alias is skipped") {
    JsonCursor c = parseOk(reader, R"({"hostPort":null,"host_port":5})");
    JsonCursor f = c.field({"hostPort", "host_port"});
    CHECK(f.path() == "host_port");
    int64_t v = 0;
    CHECK(f.get(v));
    CHECK(v == 5);
  }
  SUBCASE("all aliases null: Null cursor named after the first") {
    JsonCursor c = parseOk(reader, R"({"host_port":null})");
    JsonCursor f = c.field({"hostPort", "host_port"});
    CHECK(f.kind() == JsonKind::Null);
    CHECK(!f.present());
    CHECK(f.path() == "hostPort");
  }
  SUBCASE("no alias present: Absent cursor named after the first") {
    JsonCursor c = parseOk(reader, R"({"other":1})");
    JsonCursor f = c.field({"hostPort", "host_port"});
    CHECK(f.kind() == JsonKind::Absent);
    CHECK(f.path() == "hostPort");
  }
  SUBCASE("wrong type under the alias names the alias") {
    JsonCursor c = parseOk(reader, R"({"ports":[{"host_port":"80"}]})");
    c.field({"ports"}).forEach([](const JsonCursor& p) {
      int64_t v = 0;
      CHECK(!p.field({"hostPort", "host_port"}).get(v));
    });
    CHECK(reader.error() == "ports[0].host_port: expected integer");
  }
  CHECK(reader.ok() == reader.error().empty());
}

TEST_CASE("JsonReader: wrong types report the path") {
  struct Case {
    const char* json;
    const char* want;
    void (*read)(const JsonCursor&);
  };
  const Case cases[] = {
      {R"({"id":5})", "id: expected string",
       [](const JsonCursor& c) {
         std::string s;
         CHECK(!c.field({"id"}).get(s));
       }},
      {R"({"id":true})", "id: expected string",
       [](const JsonCursor& c) {
         std::string_view s;
         CHECK(!c.field({"id"}).get(s));
       }},
      {R"({"n":"1"})", "n: expected integer",
       [](const JsonCursor& c) {
         int64_t v = 0;
         CHECK(!c.field({"n"}).get(v));
       }},
      {R"({"n":"1.5"})", "n: expected number",
       [](const JsonCursor& c) {
         double v = 0;
         CHECK(!c.field({"n"}).get(v));
       }},
      {R"({"b":1})", "b: expected boolean",
       [](const JsonCursor& c) {
         bool v = false;
         CHECK(!c.field({"b"}).get(v));
       }},
      {R"({"b":"true"})", "b: expected boolean",
       [](const JsonCursor& c) {
         bool v = false;
         CHECK(!c.field({"b"}).get(v));
       }},
      {R"({"a":{}})", "a: expected array",
       [](const JsonCursor& c) { CHECK(c.field({"a"}).size() == 0); }},
      {R"({"a":"x"})", "a: expected array",
       [](const JsonCursor& c) {
         int calls = 0;
         c.field({"a"}).forEach([&](const JsonCursor&) { ++calls; });
         CHECK(calls == 0);
       }},
      {R"({"o":[1]})", "o: expected object",
       [](const JsonCursor& c) {
         int calls = 0;
         c.field({"o"}).forEachMember([&](std::string_view, const JsonCursor&) { ++calls; });
         CHECK(calls == 0);
       }},
      {R"({"o":3})", "o: expected object",
       [](const JsonCursor& c) {
         JsonCursor f = c.field({"o"}).field({"x"});
         CHECK(f.kind() == JsonKind::Absent);
         CHECK(f.path() == "o.x");
       }},
      {R"({"ports":[{"hostPort":"x"}]})", "ports[0].hostPort: expected integer",
       [](const JsonCursor& c) {
         c.field({"ports"}).forEach([](const JsonCursor& p) {
           int64_t v = 0;
           CHECK(!p.field({"hostPort"}).get(v));
         });
       }},
      {R"({"containers":[{},{"resource":{"cpu":"lots"}}]})",
       "containers[1].resource.cpu: expected number",
       [](const JsonCursor& c) {
         c.field({"containers"}).forEach([](const JsonCursor& ct) {
           double v = 0;
           ct.field({"resource"}).field({"cpu"}).get(v);
         });
       }},
      {R"({"m":[[1,2],[3,"x"]]})", "m[1][1]: expected integer",
       [](const JsonCursor& c) {
         c.field({"m"}).forEach([](const JsonCursor& row) {
           row.forEach([](const JsonCursor& cell) {
             int64_t v = 0;
             cell.get(v);
           });
         });
       }},
      {R"({"labels":{"a":"x","b":2}})", "labels.b: expected string",
       [](const JsonCursor& c) {
         c.field({"labels"}).forEachMember([](std::string_view, const JsonCursor& v) {
           std::string s;
           v.get(s);
         });
       }},
      // At the root the value is called "request body".
      {R"([1])", "request body: expected object",
       [](const JsonCursor& c) { CHECK(c.field({"id"}).kind() == JsonKind::Absent); }},
      {R"("str")", "request body: expected object",
       [](const JsonCursor& c) { c.forEachMember([](std::string_view, const JsonCursor&) {}); }},
      {R"({})", "request body: expected array",
       [](const JsonCursor& c) { c.forEach([](const JsonCursor&) {}); }},
      {R"({})", "request body: expected string",
       [](const JsonCursor& c) {
         std::string s;
         c.get(s);
       }},
      {R"([])", "request body: expected integer",
       [](const JsonCursor& c) {
         int64_t v = 0;
         c.get(v);
       }},
      {R"(["a"])", "[0]: expected integer",
       [](const JsonCursor& c) {
         c.forEach([](const JsonCursor& e) {
           int64_t v = 0;
           e.get(v);
         });
       }},
  };
  for (const Case& tc : cases) {
    CAPTURE(tc.json);
    JsonReader reader;
    JsonCursor c = parseOk(reader, tc.json);
    tc.read(c);
    CHECK(!reader.ok());
    CHECK(reader.error() == tc.want);
  }
}

TEST_CASE("JsonReader: first error wins") {
  JsonReader reader;
  JsonCursor c = parseOk(reader, R"({"a":1,"b":"x","c":true})");
  std::string s;
  int64_t i = 0;
  bool b = false;
  CHECK(!c.field({"a"}).get(s));
  CHECK(!c.field({"b"}).get(i));
  c.fail("custom");
  reader.recordError("direct");
  CHECK(reader.error() == "a: expected string");
  // Later reads still work.
  CHECK(c.field({"c"}).get(b));
  CHECK(b);
  CHECK(reader.error() == "a: expected string");
}

TEST_CASE("JsonReader: fail and recordError") {
  SUBCASE("nested path") {
    JsonReader reader;
    JsonCursor c = parseOk(reader, R"({"ports":[{"hostPort":70000}]})");
    c.field({"ports"}).forEach([](const JsonCursor& p) {
      JsonCursor hp = p.field({"hostPort"});
      int64_t v = 0;
      CHECK(hp.get(v));
      if (v > 65535) hp.fail("must be between 1 and 65535");
    });
    CHECK(reader.error() == "ports[0].hostPort: must be between 1 and 65535");
  }
  SUBCASE("root") {
    JsonReader reader;
    JsonCursor c = parseOk(reader, "{}");
    c.fail("missing everything");
    CHECK(reader.error() == "request body: missing everything");
  }
  SUBCASE("absent required field") {
    JsonReader reader;
    JsonCursor c = parseOk(reader, "{}");
    JsonCursor id = c.field({"id", "ID"});
    if (!id.present()) id.fail("required");
    CHECK(reader.error() == "id: required");
  }
  SUBCASE("recordError") {
    JsonReader reader;
    parseOk(reader, "{}");
    CHECK(reader.ok());
    reader.recordError("first");
    reader.recordError("second");
    CHECK(!reader.ok());
    CHECK(reader.error() == "first");
  }
}

TEST_CASE("JsonReader: integer edge cases") {
  JsonReader reader;
  JsonCursor c = parseOk(reader, R"({"max":9223372036854775807,"min":-9223372036854775808,
      "over":9223372036854775808,"umax":18446744073709551615,"neg":-1,"zero":0,
      "onePointZero":1.0,"exp":1e3,"frac":0.5,"negzero":-0})");
  int64_t v = 0;
  CHECK(c.field({"max"}).get(v));
  CHECK(v == std::numeric_limits<int64_t>::max());
  CHECK(c.field({"min"}).get(v));
  CHECK(v == std::numeric_limits<int64_t>::min());
  CHECK(c.field({"neg"}).get(v));
  CHECK(v == -1);
  CHECK(c.field({"zero"}).get(v));
  CHECK(v == 0);
  CHECK(c.field({"negzero"}).get(v));
  CHECK(v == 0);
  CHECK(reader.ok());

  auto intError = [&](const char* name) {
    JsonReader r2;
    JsonCursor c2 = parseOk(r2, R"({"over":9223372036854775808,"umax":18446744073709551615,
        "onePointZero":1.0,"exp":1e3,"frac":0.5})");
    int64_t out = 12345;
    CHECK(!c2.field({name}).get(out));
    CHECK(out == 12345);
    return r2.error();
  };
  CHECK(intError("over") == "over: expected integer");
  CHECK(intError("umax") == "umax: expected integer");
  CHECK(intError("onePointZero") == "onePointZero: expected integer");
  CHECK(intError("exp") == "exp: expected integer");
  CHECK(intError("frac") == "frac: expected integer");

  // A double read accepts every number.
  double d = 0;
  CHECK(c.field({"over"}).get(d));
  CHECK(d == 9223372036854775808.0);
  CHECK(c.field({"umax"}).get(d));
  CHECK(d == 18446744073709551615.0);
  CHECK(c.field({"onePointZero"}).get(d));
  CHECK(d == 1.0);
  CHECK(c.field({"exp"}).get(d));
  CHECK(d == 1000.0);
  CHECK(c.field({"min"}).get(d));
  CHECK(d == -9223372036854775808.0);
  CHECK(reader.ok());

  // Integers beyond uint64 are not representable by the parser.
  CHECK(parseError("[100000000000000000000]").rfind("invalid JSON: ", 0) == 0);
}

TEST_CASE("JsonReader: depth limit") {
  SUBCASE("default 64") {
    CHECK(parseError(nested(64, "[", "1", "]")) == "<ok>");
    CHECK(parseError(nested(65, "[", "1", "]")) == "invalid JSON: nesting deeper than 64");
    CHECK(parseError(nested(64, R"({"a":)", "1", "}")) == "<ok>");
    CHECK(parseError(nested(65, R"({"a":)", "1", "}")) == "invalid JSON: nesting deeper than 64");
    CHECK(parseError(nested(100000, "[", "", "]")) == "invalid JSON: nesting deeper than 64");
  }
  SUBCASE("custom") {
    JsonReader::Limits limits;
    limits.maxDepth = 3;
    CHECK(parseError("[[[1]]]", limits) == "<ok>");
    CHECK(parseError(R"({"a":[{"b":2}]})", limits) == "<ok>");
    CHECK(parseError("[[[[1]]]]", limits) == "invalid JSON: nesting deeper than 3");
    CHECK(parseError(R"({"a":[{"b":[2]}]})", limits) == "invalid JSON: nesting deeper than 3");
    // simdjson does not count an empty innermost container as a level.
    CHECK(parseError("[[[[]]]]", limits) == "<ok>");
    CHECK(parseError("[[[[[]]]]]", limits) == "invalid JSON: nesting deeper than 3");
  }
  SUBCASE("limit holds across capacity growth") {
    JsonReader::Limits limits;
    limits.maxDepth = 3;
    JsonReader reader(limits);
    const std::string big = "[" + std::string(100000, ' ') + "1]";
    CHECK(reader.parse(big).ok());
    auto deep = reader.parse("[[[[" + std::string(200000, ' ') + "1]]]]");
    REQUIRE(!deep.ok());
    CHECK(deep.message() == "invalid JSON: nesting deeper than 3");
  }
}

TEST_CASE("JsonReader: empty body") {
  CHECK(parseError("") == "request body is empty");
  CHECK(parseError("   ") == "request body is empty");
  CHECK(parseError(" \t\r\n ") == "request body is empty");
  CHECK(parseError(std::string_view()) == "request body is empty");
}

TEST_CASE("JsonReader: syntax errors") {
  const char* bad[] = {"{",     "[1,]",  "{\"a\":}",  "nul", "{} x",     "{'a':1}",
                       "[1 2]", "\"abc", "{\"a\" 1}", "01",  "[NaN]",    "\"\\x\"",
                       "\x01",  "{,}",   "]",         "tru", "[\"\t\"]", "/* */{}"};
  for (const char* json : bad) {
    CAPTURE(json);
    const std::string err = parseError(json);
    CHECK(err.rfind("invalid JSON: ", 0) == 0);
    CHECK(err.size() > std::strlen("invalid JSON: "));
  }
}

TEST_CASE("JsonReader: invalid UTF-8 is rejected") {
  const std::string bad[] = {
      "\"\xFF\"",     "\"\xC0\x80\"",  "\"\xED\xA0\x80\"",  "\"\xF4\x90\x80\x80\"", "\"a\x80\"",
      "\"\xE2\x82\"", "{\"k\xFF\":1}", "[\"ok\",\"\xC3\"]", "\"\xF0\x9D\x84\"",
  };
  for (const std::string& json : bad) {
    CAPTURE(json);
    CHECK(parseError(json) == "invalid JSON: The input is not valid UTF-8");
  }
  // Valid multi-byte text is accepted.
  JsonReader reader;
  JsonCursor c = parseOk(reader, "{\"k\xC3\xA9\":\"\xF0\x9D\x84\x9E\"}");
  std::string s;
  CHECK(c.field({"k\xC3\xA9"}).get(s));
  CHECK(s == "\xF0\x9D\x84\x9E");
}

TEST_CASE("JsonReader: maxArrayItems") {
  JsonReader::Limits limits;
  limits.maxArrayItems = 3;
  JsonReader reader(limits);
  JsonCursor c = parseOk(reader, R"({"ok":[1,2,3],"items":[1,2,3,4],"nested":[[1,2,3,4]]})");
  int calls = 0;
  c.field({"ok"}).forEach([&](const JsonCursor&) { ++calls; });
  CHECK(calls == 3);
  CHECK(reader.ok());

  calls = 0;
  c.field({"items"}).forEach([&](const JsonCursor&) { ++calls; });
  CHECK(calls == 0);
  CHECK(reader.error() == "items: too many items (max 3)");
  CHECK(c.field({"items"}).size() == 4);  // size() is not limited

  JsonReader r2(limits);
  JsonCursor c2 = parseOk(r2, R"({"nested":[[1,2,3,4]]})");
  c2.field({"nested"}).forEach([&](const JsonCursor& inner) {
    inner.forEach([&](const JsonCursor&) { ++calls; });
  });
  CHECK(r2.error() == "nested[0]: too many items (max 3)");

  JsonReader r3(limits);
  JsonCursor c3 = parseOk(r3, "[1,2,3,4,5]");
  c3.forEach([&](const JsonCursor&) { ++calls; });
  CHECK(r3.error() == "request body: too many items (max 3)");
  CHECK(calls == 0);
}

TEST_CASE("JsonReader: forEach paths and forEachMember order") {
  JsonReader reader;
  JsonCursor c = parseOk(reader, R"({"z":1,"a":{"y":[10,20]},"m":"s","b":null})");
  std::vector<std::string> keys;
  std::vector<std::string> paths;
  std::vector<JsonKind> kinds;
  c.forEachMember([&](std::string_view k, const JsonCursor& v) {
    keys.emplace_back(k);
    paths.push_back(v.path());
    kinds.push_back(v.kind());
  });
  CHECK(keys == std::vector<std::string>{"z", "a", "m", "b"});
  CHECK(paths == std::vector<std::string>{"z", "a", "m", "b"});
  CHECK(kinds == std::vector<JsonKind>{JsonKind::Integer, JsonKind::Object, JsonKind::String,
                                       JsonKind::Null});

  std::vector<std::string> elemPaths;
  c.field({"a"}).forEachMember([&](std::string_view, const JsonCursor& v) {
    CHECK(v.path() == "a.y");
    v.forEach([&](const JsonCursor& e) { elemPaths.push_back(e.path()); });
  });
  CHECK(elemPaths == std::vector<std::string>{"a.y[0]", "a.y[1]"});

  // Empty containers.
  int calls = 0;
  JsonReader r2;
  JsonCursor e = parseOk(r2, R"({"o":{},"a":[]})");
  e.field({"o"}).forEachMember([&](std::string_view, const JsonCursor&) { ++calls; });
  e.field({"a"}).forEach([&](const JsonCursor&) { ++calls; });
  CHECK(calls == 0);
  CHECK(e.field({"a"}).size() == 0);
  CHECK(r2.ok());
}

TEST_CASE("JsonReader: one reader, many parses") {
  JsonReader reader;
  auto bad = reader.parse("{");
  CHECK(!bad.ok());
  CHECK(!reader.ok());

  JsonCursor c = parseOk(reader, R"({"a":"x"})");
  CHECK(reader.ok());
  CHECK(reader.error().empty());
  int64_t i = 0;
  CHECK(!c.field({"a"}).get(i));
  CHECK(reader.error() == "a: expected integer");

  // A new parse resets the error state; big then small documents.
  std::string big = "[";
  for (int k = 0; k < 5000; ++k) big += (k ? ",\"item" : "\"item") + std::to_string(k) + "\"";
  big += "]";
  JsonCursor b = parseOk(reader, big);
  CHECK(reader.ok());
  CHECK(b.size() == 5000);
  size_t n = 0;
  b.forEach([&](const JsonCursor& e) {
    std::string_view s;
    CHECK(e.get(s));
    if (n == 4999) {
      CHECK(s == "item4999");
    }
    ++n;
  });
  CHECK(n == 5000);

  JsonCursor small = parseOk(reader, R"({"v":true})");
  bool v = false;
  CHECK(small.field({"v"}).get(v));
  CHECK(v);

  CHECK(reader.parse("").message() == "request body is empty");
  JsonCursor again = parseOk(reader, "[1]");
  CHECK(again.size() == 1);
  CHECK(reader.ok());
}

TEST_CASE("JsonReader: input without padding is copied") {
  // An exact-size heap buffer: reading past its end would trip ASan.
  const std::string text = R"({"key":"value","n":[1,2,3]})";
  std::unique_ptr<char[]> buf(new char[text.size()]);
  std::memcpy(buf.get(), text.data(), text.size());
  JsonReader reader;
  JsonCursor c = parseOk(reader, std::string_view(buf.get(), text.size()));
  buf.reset();  // the document must not point into the input
  std::string s;
  CHECK(c.field({"key"}).get(s));
  CHECK(s == "value");
  CHECK(c.field({"n"}).size() == 3);

  // A view into the middle of a larger string.
  const std::string outer = "xx[7]yy";
  JsonCursor m = parseOk(reader, std::string_view(outer).substr(2, 3));
  m.forEach([](const JsonCursor& e) {
    int64_t v = 0;
    CHECK(e.get(v));
    CHECK(v == 7);
  });
}

TEST_CASE("JsonReader and JsonWriter: one per thread") {
  constexpr int kThreads = 4;
  std::vector<int64_t> sums(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &sums] {
      JsonReader reader;
      for (int iter = 0; iter < 50; ++iter) {
        JsonWriter w;
        w.beginObject().kv("t", t).key("xs").beginArray();
        for (int k = 0; k < 10; ++k) w.value(k);
        w.endArray().endObject();
        auto root = reader.parse(w.str());
        if (!root.ok()) return;
        int64_t tv = -1;
        (*root).field({"t"}).get(tv);
        (*root).field({"xs"}).forEach([&](const JsonCursor& e) {
          int64_t v = 0;
          e.get(v);
          sums[t] += v + tv;
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) CHECK(sums[t] == 50 * (45 + 10 * t));
}

}  // namespace
}  // namespace sbx::json

TEST_CASE("JsonReader: a repeated key anywhere is an error naming the key and where") {
  sbx::json::JsonReader reader;
  auto r = reader.parse(R"({"id":"a","id":"../x"})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == R"(invalid JSON: duplicate key "id")");
  r = reader.parse(R"({"containers":[{"name":"a"},{"name":"b","resource":{"cpu":"1","cpu":"-1"}}]})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == R"(invalid JSON: duplicate key "cpu" in containers[1].resource)");
  r = reader.parse(R"([[{"a":1,"b":2,"a":3}]])");
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == R"(invalid JSON: duplicate key "a" in [0][0])");
  // Escapes are compared decoded: "\u0069d" is "id".
  r = reader.parse(R"({"id":"a","\u0069d":"b"})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() == R"(invalid JSON: duplicate key "id")");
  // The same key in different objects is fine.
  CHECK(reader.parse(R"({"a":{"id":1},"b":{"id":2},"c":[{"id":3},{"id":4}]})").ok());
}
