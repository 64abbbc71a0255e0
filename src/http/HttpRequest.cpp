#include "http/HttpRequest.h"

namespace sbx::http {

std::string_view HttpRequest::rawPath() const {
  std::string_view t(target);
  return t.substr(0, t.find('?'));
}

std::string_view HttpRequest::rawQuery() const {
  std::string_view t(target);
  size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

const std::string& HttpRequest::param(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return kEmpty;
}

std::optional<std::string_view> HttpRequest::queryValue(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> HttpRequest::queryValues(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : query) {
    if (k == name) out.emplace_back(v);
  }
  return out;
}

void HttpRequest::clear() {
  method.clear();
  target.clear();
  httpMinor = 1;
  headers.clear();
  body.clear();
  requestId.clear();
  params.clear();
  query.clear();
}

}  // namespace sbx::http
