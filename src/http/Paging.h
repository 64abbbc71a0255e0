#pragma once
// Paging of a list endpoint: `?cursor=<id>&limit=<n>` over items ordered by
// id (SPEC §1 GET /v1/sandboxes): the items after `cursor` in string order,
// at most `limit` of them, and "next_cursor" (the last id of the page) when
// more remain.
//
// Pure functions of their arguments: thread-safe.
#include <cstddef>
#include <string>

#include "http/HttpRequest.h"
#include "json/JsonWriter.h"

namespace sbx::http {

struct PageParams {
  std::string cursor;  // "" = from the first
  size_t limit = 0;
};

// `limit` from the query: a number >= 1 clamped to maxLimit; absent,
// non-numeric or < 1 gives defaultLimit.
PageParams pageParams(const HttpRequest& req, size_t defaultLimit, size_t maxLimit);

// Writes {"items":[...], "next_cursor"?} for the page of `all` (a map keyed
// by id), each item with write(w, value).
template <class Map, class Write>
void writePage(json::JsonWriter& w, const Map& all, const PageParams& p, Write write) {
  auto it = p.cursor.empty() ? all.begin() : all.upper_bound(p.cursor);
  w.beginObject().key("items").beginArray();
  size_t n = 0;
  std::string last;
  for (; it != all.end() && n < p.limit; ++it, ++n) {
    write(w, it->second);
    last = it->first;
  }
  w.endArray();
  if (it != all.end() && n > 0) w.kv("next_cursor", last);
  w.endObject();
}

}  // namespace sbx::http
