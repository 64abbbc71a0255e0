// Router matching (http/Router.h) and the URL codec (http/UrlCodec.h).
//
// Input: a request line without the version, "METHOD TARGET" ("GET" when
// there is no space). The target is routed against the daemons' routes:
//   - a match names a route of that method (or GET for HEAD), with one
//     parameter per {name}, each the percent-decoded raw segment;
//   - the path rebuilt from the matched pattern with percentEncode'd
//     parameters matches again (the same parameters if the same route);
//   - 405 lists the methods, 404 matches no route.
// The whole input also goes through percentEncode/percentDecode (encode then
// decode is the identity) and parseQuery (re-encoded pairs parse the same).

#include <string>
#include <string_view>
#include <vector>

#include "FuzzTarget.h"
#include "http/HttpRequest.h"
#include "http/Router.h"
#include "http/UrlCodec.h"

namespace {

using namespace sbx::http;

struct RouteSpec {
  const char* method;
  const char* pattern;
};

// The routes of sbxlet and sandboxd-o (SPEC §1, §2), and a few odd shapes.
constexpr RouteSpec kRoutes[] = {
    {"GET", "/healthz"},
    {"GET", "/v1/node/status"},
    {"POST", "/v1/sandboxes/statuses"},
    {"POST", "/v1/sandboxes"},
    {"GET", "/v1/sandboxes"},
    {"GET", "/v1/sandboxes/{id}"},
    {"DELETE", "/v1/sandboxes/{id}"},
    {"POST", "/v1/reconcile"},
    {"GET", "/v1/sandboxes/{id}/logs"},
    {"GET", "/v1/sandboxes/{id}/containers/{name}/logs"},
    {"GET", "/api/v1/nodes"},
    {"POST", "/api/v1/nodes"},
    {"GET", "/api/v1/nodes/{name}"},
    {"DELETE", "/api/v1/nodes/{name}"},
    {"POST", "/api/v1/nodes/{name}/heartbeat"},
    {"GET", "/api/v1/sandboxes"},
    {"POST", "/api/v1/sandboxes"},
    {"GET", "/api/v1/sandboxes/{id}"},
    {"DELETE", "/api/v1/sandboxes/{id}"},
    {"GET", "/api/v1/nodes/{name}/sandboxes"},
    {"POST", "/api/v1/nodes/{name}/sandboxes"},
    {"GET", "/api/v1/nodes/{name}/sandboxes/{id}"},
    {"DELETE", "/api/v1/nodes/{name}/sandboxes/{id}"},
    {"GET", "/api/v1/nodes/{name}/sandboxes/{id}/logs"},
    {"GET", "/api/v1/nodes/{name}/sandboxes/{id}/containers/{container}/logs"},
    {"POST", "/api/v1/nodes/{name}/reconcile"},
    {"HEAD", "/v1/probe/{id}"},
    {"PUT", "/"},
    {"GET", "/files/{path}/"},
    {"GET", "/a//{b}"},
};
constexpr size_t kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);

// "/a/b/" → {"a", "b", ""}, as the router splits (a leading '/' dropped).
std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  for (;;) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool isParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

size_t gMatched = kRouteCount;  // set by the handlers

const Router& router() {
  static const Router r = [] {
    Router out;
    for (size_t i = 0; i < kRouteCount; ++i) {
      out.add(kRoutes[i].method, kRoutes[i].pattern, [i](const ExchangePtr&) { gMatched = i; });
    }
    return out;
  }();
  return r;
}

// Routes method + target; on a match runs the handler so gMatched says which.
Router::Match route(HttpRequest& req) {
  gMatched = kRouteCount;
  Router::Match m = router().route(req);
  if (m.outcome == Router::Outcome::Matched) {
    SBX_FUZZ_CHECK(m.handler != nullptr);
    (*m.handler)(ExchangePtr());
    SBX_FUZZ_CHECK(gMatched < kRouteCount);
  }
  return m;
}

void checkRouting(std::string_view method, std::string_view target) {
  HttpRequest req;
  req.method = std::string(method);
  req.target = std::string(target);
  Router::Match m = route(req);
  switch (m.outcome) {
    case Router::Outcome::NotFound:
    case Router::Outcome::BadPath:
      return;
    case Router::Outcome::MethodNotAllowed: {
      // "GET, HEAD, DELETE": never the method asked for (that would match).
      SBX_FUZZ_CHECK(!m.allow.empty());
      std::string_view allow = m.allow;
      for (;;) {
        const size_t comma = allow.find(", ");
        SBX_FUZZ_CHECK(allow.substr(0, comma) != req.method);
        if (comma == std::string_view::npos) break;
        allow.remove_prefix(comma + 2);
      }
      return;
    }
    case Router::Outcome::Matched:
      break;
  }
  const size_t index = gMatched;
  const RouteSpec& spec = kRoutes[index];
  SBX_FUZZ_CHECK(req.method == spec.method || (m.headFallback && req.method == "HEAD" &&
                                               std::string_view(spec.method) == "GET"));
  SBX_FUZZ_CHECK(!m.headFallback || req.method == "HEAD");

  const std::vector<std::string_view> pattern = split(spec.pattern);
  const std::vector<std::string_view> raw = split(req.rawPath());
  SBX_FUZZ_CHECK(pattern.size() == raw.size());
  std::string rebuilt;
  size_t p = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    rebuilt += '/';
    if (!isParam(pattern[i])) {
      SBX_FUZZ_CHECK(pattern[i] == raw[i]);
      rebuilt += pattern[i];
      continue;
    }
    SBX_FUZZ_CHECK(p < req.params.size());
    const auto& [name, value] = req.params[p++];
    SBX_FUZZ_CHECK(name == pattern[i].substr(1, pattern[i].size() - 2));
    SBX_FUZZ_CHECK(!value.empty());
    auto decoded = percentDecode(raw[i]);
    SBX_FUZZ_CHECK(decoded.has_value() && *decoded == value);
    SBX_FUZZ_CHECK(req.param(name) == value);
    rebuilt += percentEncode(value);
  }
  SBX_FUZZ_CHECK(p == req.params.size());

  // The rebuilt path routes again: to this route with the same parameters,
  // or to an earlier one whose literal an encoded parameter now spells.
  HttpRequest again;
  again.method = req.method;
  again.target = rebuilt;
  Router::Match m2 = route(again);
  SBX_FUZZ_CHECK(m2.outcome == Router::Outcome::Matched);
  SBX_FUZZ_CHECK(gMatched <= index);
  if (gMatched == index) SBX_FUZZ_CHECK(again.params == req.params);
}

void checkCodec(std::string_view input) {
  const std::string encoded = percentEncode(input);
  for (char c : encoded) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                            c == '~' || c == '%';
    SBX_FUZZ_CHECK(unreserved);
  }
  auto decoded = percentDecode(encoded);
  SBX_FUZZ_CHECK(decoded.has_value() && *decoded == input);
  auto decodedPlus = percentDecode(encoded, true);
  SBX_FUZZ_CHECK(decodedPlus.has_value() && *decodedPlus == input);

  if (auto d = percentDecode(input)) {
    SBX_FUZZ_CHECK(d->size() <= input.size());
    auto back = percentDecode(percentEncode(*d));
    SBX_FUZZ_CHECK(back.has_value() && *back == *d);
  }

  if (auto q = parseQuery(input)) {
    std::string rebuilt;
    for (const auto& [k, v] : *q) {
      if (!rebuilt.empty()) rebuilt += '&';
      rebuilt += percentEncode(k) + "=" + percentEncode(v);
    }
    auto again = parseQuery(rebuilt);
    SBX_FUZZ_CHECK(again.has_value());
    SBX_FUZZ_CHECK(*again == *q);

    HttpRequest req;
    req.query = *q;
    for (const auto& kv : *q) {
      const std::vector<std::string_view> values = req.queryValues(kv.first);
      SBX_FUZZ_CHECK(!values.empty());
      SBX_FUZZ_CHECK(req.queryValue(kv.first) == values.front());
    }
  }
}

}  // namespace

SBX_FUZZ_TARGET(router) {
  const size_t space = input.find(' ');
  if (space == std::string_view::npos) {
    checkRouting("GET", input);
  } else {
    checkRouting(input.substr(0, space), input.substr(space + 1));
  }
  checkCodec(input);
}
