// Paging of list endpoints: limit parsing and the page written.
#include "http/Paging.h"

#include <doctest/doctest.h>

#include <map>
#include <string>

namespace {

using sbx::http::HttpRequest;
using sbx::http::pageParams;
using sbx::http::writePage;

HttpRequest withQuery(sbx::http::QueryParams q) {
  HttpRequest req;
  req.query = std::move(q);
  return req;
}

std::string page(const std::map<std::string, int>& all, const sbx::http::PageParams& p) {
  sbx::json::JsonWriter w;
  writePage(w, all, p, [](sbx::json::JsonWriter& jw, int v) { jw.value(v); });
  return w.str();
}

}  // namespace

TEST_CASE("pageParams: limit defaults, clamps, and ignores what is not a number >= 1") {
  CHECK(pageParams(withQuery({}), 20, 200).limit == 20);
  CHECK(pageParams(withQuery({{"limit", "5"}}), 20, 200).limit == 5);
  CHECK(pageParams(withQuery({{"limit", "5000"}}), 20, 200).limit == 200);
  for (const char* bad : {"0", "-3", "x", "5x", "", "99999999999999999999"}) {
    CHECK(pageParams(withQuery({{"limit", bad}}), 20, 200).limit == 20);
  }
  CHECK(pageParams(withQuery({{"cursor", "b"}}), 20, 200).cursor == "b");
}

TEST_CASE("writePage: items after the cursor, next_cursor only when more remain") {
  const std::map<std::string, int> all = {{"a", 1}, {"b", 2}, {"c", 3}};
  CHECK(page(all, {"", 2}) == R"({"items":[1,2],"next_cursor":"b"})");
  CHECK(page(all, {"b", 2}) == R"({"items":[3]})");
  CHECK(page(all, {"", 3}) == R"({"items":[1,2,3]})");
  CHECK(page(all, {"c", 2}) == R"({"items":[]})");
  CHECK(page({}, {"", 2}) == R"({"items":[]})");
}
