// The loop's HTTP client against the loop's HTTP server, both on one loop:
// the way the control plane will talk to node agents.
#include <doctest/doctest.h>

#include "../TestUtil.h"
#include "http/HttpClient.h"
#include "http/HttpServer.h"

using namespace sbx;
using namespace sbx::http;
using namespace std::chrono_literals;

TEST_CASE("HttpClient against HttpServer on one loop") {
  EventLoop loop;
  Router router;
  router.add("GET", "/healthz", [](const ExchangePtr& ex) { ex->respond(200, R"({"ok":true})"); });
  router.add("POST", "/echo/{id}", [](const ExchangePtr& ex) {
    ex->respond(201, ex->request().param("id") + ":" + ex->request().body, "text/plain");
  });
  router.add("GET", "/stream", [&loop](const ExchangePtr& ex) {
    ex->beginStream(200, "text/event-stream");
    auto n = std::make_shared<int>(0);
    auto t = std::make_shared<Timer>();
    *t = loop.runEvery(1ms, [ex, n, t] {
      ex->write("data: " + std::to_string(++*n) + "\n\n");
      if (*n == 5) {
        ex->end();
        t->cancel();
      }
    });
  });
  HttpServer server(loop, router);
  REQUIRE(server.listen("127.0.0.1:0").ok());
  HttpClient client(loop);

  HttpClientRequest get;
  get.host = "127.0.0.1";
  get.port = server.port();
  get.target = "/healthz";

  SUBCASE("many requests over a small keep-alive pool") {
    int ok = 0;
    for (int i = 0; i < 200; ++i) {
      client.request(get, [&](Result<HttpClientResponse> r) {
        REQUIRE(r.ok());
        CHECK(r->status == 200);
        CHECK(r->body == R"({"ok":true})");
        CHECK(r->headers.find("X-Request-ID") != nullptr);
        ++ok;
      });
    }
    CHECK(test::runUntil(loop, [&] { return ok == 200; }));
    // Pooled connections were reused: far fewer accepts than requests.
    CHECK(server.counters().accepted <= 200);
    CHECK(client.idleConnections() <= 8);
    uint64_t acceptedBefore = server.counters().accepted;
    int again = 0;
    client.request(get, [&](Result<HttpClientResponse> r) {
      CHECK(r.ok());
      ++again;
    });
    CHECK(test::runUntil(loop, [&] { return again == 1; }));
    CHECK(server.counters().accepted == acceptedBefore);
  }

  SUBCASE("POST with body, path parameters, 404 and 405") {
    HttpClientRequest post = get;
    post.method = "POST";
    post.target = "/echo/sbx%2D1";
    post.body = "payload";
    std::optional<Result<HttpClientResponse>> a, b, c;
    client.request(post, [&](Result<HttpClientResponse> r) { a = std::move(r); });
    HttpClientRequest missing = get;
    missing.target = "/missing";
    client.request(missing, [&](Result<HttpClientResponse> r) { b = std::move(r); });
    HttpClientRequest wrong = get;
    wrong.method = "DELETE";
    client.request(wrong, [&](Result<HttpClientResponse> r) { c = std::move(r); });
    CHECK(test::runUntil(loop, [&] { return a && b && c; }));
    REQUIRE(a->ok());
    CHECK(a->value().status == 201);
    CHECK(a->value().body == "sbx-1:payload");
    REQUIRE(b->ok());
    CHECK(b->value().status == 404);
    CHECK(b->value().body == R"({"error":"not found: /missing"})");
    REQUIRE(c->ok());
    CHECK(c->value().status == 405);
    CHECK(*c->value().headers.find("Allow") == "GET, HEAD");
  }

  SUBCASE("a streamed (chunked) response arrives whole") {
    HttpClientRequest s = get;
    s.target = "/stream";
    std::optional<Result<HttpClientResponse>> got;
    client.request(s, [&](Result<HttpClientResponse> r) { got = std::move(r); });
    CHECK(test::runUntil(loop, [&] { return got.has_value(); }));
    REQUIRE(got->ok());
    CHECK(got->value().body == "data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n");
  }

  SUBCASE("server limits reach the client as statuses") {
    HttpClientRequest big = get;
    big.method = "POST";
    big.target = "/echo/x";
    big.body.assign((1 << 20) + 1, 'x');
    std::optional<Result<HttpClientResponse>> got;
    client.request(big, [&](Result<HttpClientResponse> r) { got = std::move(r); });
    CHECK(test::runUntil(loop, [&] { return got.has_value(); }));
    REQUIRE(got->ok());
    CHECK(got->value().status == 413);
  }

  SUBCASE("a server shut down mid-pool: the client reconnects or reports") {
    int ok = 0;
    client.request(get, [&](Result<HttpClientResponse> r) { ok += r.ok(); });
    CHECK(test::runUntil(loop, [&] { return ok == 1; }));
    bool stopped = false;
    server.shutdown(1s, [&] { stopped = true; });
    CHECK(test::runUntil(loop, [&] { return stopped; }));
    std::optional<Result<HttpClientResponse>> after;
    client.request(get, [&](Result<HttpClientResponse> r) { after = std::move(r); });
    CHECK(test::runUntil(loop, [&] { return after.has_value(); }));
    REQUIRE_FALSE(after->ok());
    CHECK(after->message().find("Connection refused") != std::string::npos);
  }
}
