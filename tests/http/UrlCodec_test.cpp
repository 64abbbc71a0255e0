#include "http/UrlCodec.h"

#include <doctest/doctest.h>

using namespace sbx::http;

TEST_CASE("percentDecode") {
  CHECK(percentDecode("a%20b") == "a b");
  CHECK(percentDecode("%2e%2E%2f") == "../");
  CHECK(percentDecode("a+b") == "a+b");
  CHECK(percentDecode("a+b", true) == "a b");
  CHECK(percentDecode("%00") == std::string(1, '\0'));
  CHECK_FALSE(percentDecode("%").has_value());
  CHECK_FALSE(percentDecode("%4").has_value());
  CHECK_FALSE(percentDecode("ab%").has_value());
  CHECK_FALSE(percentDecode("%zz").has_value());
  CHECK(percentDecode("").value().empty());
}

TEST_CASE("percentEncode round-trips") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  CHECK(percentDecode(percentEncode(all)) == all);
  CHECK(percentEncode("a b/c~") == "a%20b%2Fc~");
}

TEST_CASE("parseQuery keeps order and repeated keys") {
  auto q = parseQuery("cursor=sbx-1&limit=5&x=1&x=2&flag&&y=a%26b");
  REQUIRE(q);
  REQUIRE(q->size() == 6);
  CHECK((*q)[0] == std::make_pair(std::string("cursor"), std::string("sbx-1")));
  CHECK((*q)[2].second == "1");
  CHECK((*q)[3].second == "2");
  CHECK((*q)[4] == std::make_pair(std::string("flag"), std::string("")));
  CHECK((*q)[5].second == "a&b");
  CHECK_FALSE(parseQuery("a=%zz").has_value());
  CHECK(parseQuery("")->empty());
}
