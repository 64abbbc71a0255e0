#include "http/Router.h"

#include <doctest/doctest.h>

#include "http/HttpRequest.h"

using namespace sbx::http;

namespace {
HttpRequest req(const char* method, const char* target) {
  HttpRequest r;
  r.method = method;
  r.target = target;
  return r;
}
}  // namespace

TEST_CASE("Router matches literals and parameters, decodes parameters") {
  Router r;
  int hit = 0;
  r.add("GET", "/v1/sandboxes", [&](const ExchangePtr&) { hit = 1; });
  r.add("GET", "/v1/sandboxes/{id}", [&](const ExchangePtr&) { hit = 2; });
  r.add("DELETE", "/v1/sandboxes/{id}", [&](const ExchangePtr&) { hit = 3; });
  r.add("GET", "/v1/sandboxes/{id}/containers/{name}/logs", [&](const ExchangePtr&) { hit = 4; });
  r.add("POST", "/v1/sandboxes/statuses", [&](const ExchangePtr&) { hit = 5; });

  auto a = req("GET", "/v1/sandboxes?limit=3");
  auto m = r.route(a);
  REQUIRE(m.outcome == Router::Outcome::Matched);
  (*m.handler)(nullptr);
  CHECK(hit == 1);

  auto b = req("GET", "/v1/sandboxes/sbx%2E1%2Fx");
  m = r.route(b);
  REQUIRE(m.outcome == Router::Outcome::Matched);
  (*m.handler)(nullptr);
  CHECK(hit == 2);
  CHECK(b.param("id") == "sbx.1/x");  // an encoded slash stays in the parameter

  auto c = req("GET", "/v1/sandboxes/s1/containers/web/logs");
  m = r.route(c);
  REQUIRE(m.outcome == Router::Outcome::Matched);
  CHECK(c.param("id") == "s1");
  CHECK(c.param("name") == "web");
  CHECK(c.param("missing").empty());

  // Literal routes win over parameters only by registration order; here
  // "statuses" is a POST so GET falls to {id}.
  auto d = req("POST", "/v1/sandboxes/statuses");
  m = r.route(d);
  REQUIRE(m.outcome == Router::Outcome::Matched);
  (*m.handler)(nullptr);
  CHECK(hit == 5);
}

TEST_CASE("Router: 404, 405 with Allow, HEAD falls back to GET, bad escapes") {
  Router r;
  r.add("GET", "/a/{id}", [](const ExchangePtr&) {});
  r.add("DELETE", "/a/{id}", [](const ExchangePtr&) {});
  auto x = req("GET", "/b");
  CHECK(r.route(x).outcome == Router::Outcome::NotFound);
  auto empty = req("GET", "/a/");
  CHECK(r.route(empty).outcome == Router::Outcome::NotFound);  // parameters are never empty
  auto deeper = req("GET", "/a/1/2");
  CHECK(r.route(deeper).outcome == Router::Outcome::NotFound);
  auto put = req("PUT", "/a/1");
  auto m = r.route(put);
  CHECK(m.outcome == Router::Outcome::MethodNotAllowed);
  CHECK(m.allow == "GET, HEAD, DELETE");
  auto head = req("HEAD", "/a/1");
  m = r.route(head);
  CHECK(m.outcome == Router::Outcome::Matched);
  CHECK(m.headFallback);
  auto bad = req("GET", "/a/%G1");
  CHECK(r.route(bad).outcome == Router::Outcome::BadPath);
}
