#include "http/Paging.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace sbx::http {

PageParams pageParams(const HttpRequest& req, size_t defaultLimit, size_t maxLimit) {
  PageParams p;
  p.limit = defaultLimit;
  if (auto l = req.queryValue("limit")) {
    int64_t n = 0;
    auto res = std::from_chars(l->data(), l->data() + l->size(), n);
    if (res.ec == std::errc() && res.ptr == l->data() + l->size() && n >= 1) {
      p.limit = static_cast<size_t>(std::min<int64_t>(n, static_cast<int64_t>(maxLimit)));
    }
  }
  p.cursor = std::string(req.queryValue("cursor").value_or(""));
  return p;
}

}  // namespace sbx::http
