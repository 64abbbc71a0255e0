#pragma once
// A parsed server-side request.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/HttpMessage.h"
#include "http/UrlCodec.h"
#include "reactor/Clock.h"

namespace sbx::http {

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // as sent: "/v1/sandboxes?cursor=a"
  std::string_view rawPath() const;   // target up to '?'
  std::string_view rawQuery() const;  // after '?', "" if none
  int httpMinor = 1;                  // HTTP/1.<minor>
  HttpHeaders headers;
  std::string body;
  std::string requestId;  // the client's X-Request-ID or a generated one
  TimePoint startedAt;    // first byte of the request

  // Set by the router: decoded values of {name} segments.
  std::vector<std::pair<std::string_view, std::string>> params;
  // Decoded query (repeated keys kept, in order).
  QueryParams query;

  // The decoded path parameter `name` ("" if the route has none).
  const std::string& param(std::string_view name) const;
  // The first value of query key `name`.
  std::optional<std::string_view> queryValue(std::string_view name) const;
  // Every value of query key `name`.
  std::vector<std::string_view> queryValues(std::string_view name) const;

  void clear();
};

}  // namespace sbx::http
