#include "http/HttpServer.h"

#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include "HttpTestSupport.h"
#include "json/JsonWriter.h"

using namespace sbx;
using namespace sbx::http;
using namespace sbx::test;
using namespace std::chrono_literals;

namespace {

// Set by /big when write() first reports the client is not keeping up.
std::atomic<int> gBackpressureSeen{0};
constexpr size_t kBigBytes = 32u << 20;  // more than loopback's socket buffers hold

// Routes used by most tests:
//   GET  /healthz            {"ok":true}
//   POST /echo               the request body back
//   GET  /later              answers after 30 ms (asynchronous handler)
//   GET  /v1/sandboxes/{id}/containers/{name}/logs   params and query as JSON
//   GET  /stream             three chunks, one per timer tick
//   GET  /big                32 MiB streamed with backpressure
void standardRoutes(EventLoop& loop, Router& r) {
  r.add("GET", "/healthz", [](const ExchangePtr& ex) { ex->respond(200, R"({"ok":true})"); });
  r.add("POST", "/echo", [](const ExchangePtr& ex) {
    ex->respond(200, ex->request().body, "application/octet-stream");
  });
  r.add("GET", "/later", [&loop](const ExchangePtr& ex) {
    auto t = std::make_shared<Timer>();
    *t = loop.runAfter(30ms, [ex, t] { ex->respond(200, R"({"later":true})"); });
  });
  r.add("GET", "/v1/sandboxes/{id}/containers/{name}/logs", [](const ExchangePtr& ex) {
    const HttpRequest& req = ex->request();
    json::JsonWriter w;
    w.beginObject().kv("id", req.param("id")).kv("name", req.param("name"));
    w.key("x").beginArray();
    for (auto v : req.queryValues("x")) w.value(v);
    w.endArray();
    w.kv("cursor", std::string(req.queryValue("cursor").value_or("-")));
    w.endObject();
    ex->respond(200, w.str());
  });
  r.add("DELETE", "/v1/sandboxes/{id}/containers/{name}/logs",
        [](const ExchangePtr& ex) { ex->respond(204, ""); });
  r.add("GET", "/stream", [&loop](const ExchangePtr& ex) {
    ex->beginStream(200, "application/x-ndjson");
    auto n = std::make_shared<int>(0);
    auto t = std::make_shared<Timer>();
    *t = loop.runEvery(5ms, [ex, n, t] {
      ex->write("{\"n\":" + std::to_string(++*n) + "}\n");
      if (*n == 3) {
        ex->end();
        t->cancel();
      }
    });
  });
  r.add("GET", "/big", [](const ExchangePtr& ex) {
    ex->beginStream(200, "application/octet-stream");
    auto sent = std::make_shared<size_t>(0);
    auto pump = std::make_shared<std::function<void()>>();
    // ex → onDrain → pump → ex is a cycle until the exchange completes,
    // which clears onDrain.
    *pump = [ex, sent] {
      const std::string chunk(64 * 1024, 'b');
      while (*sent < kBigBytes) {
        *sent += chunk.size();
        if (!ex->write(chunk)) {
          gBackpressureSeen.fetch_add(1);
          return;  // resumes from onDrain
        }
      }
      ex->end();
    };
    ex->onDrain([pump] { (*pump)(); });
    (*pump)();
  });
}

}  // namespace

TEST_CASE("HTTP: GET, request ids, 404, 405, HEAD") {
  ServerThread s(standardRoutes);
  RawClient c(s.port());
  REQUIRE(c.connected());
  auto r = c.roundTrip(get("/healthz"));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == R"({"ok":true})");
  CHECK(r->header("content-type") == "application/json");
  CHECK(r->header("x-request-id").size() == 16);

  r = c.roundTrip(get("/healthz", "X-Request-ID: abc-123\r\n"));
  CHECK(r->header("x-request-id") == "abc-123");
  // An id with characters that could forge headers or logs is replaced.
  r = c.roundTrip(get("/healthz", "X-Request-ID: a\"b\r\n"));
  CHECK(r->header("x-request-id") != "a\"b");

  r = c.roundTrip(get("/nope"));
  CHECK(r->status == 404);
  CHECK(r->body == R"({"error":"not found: /nope"})");

  r = c.roundTrip("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  CHECK(r->status == 405);
  CHECK(r->header("allow") == "GET, HEAD");
  CHECK(r->body.find("\"error\"") != std::string::npos);

  r = c.roundTrip("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", /*head=*/true);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("content-length") == "11");
  // No body bytes followed: the next response parses cleanly.
  r = c.roundTrip(get("/healthz"));
  REQUIRE(r);
  CHECK(r->body == R"({"ok":true})");
}

TEST_CASE("HTTP: router parameters and query are percent-decoded") {
  ServerThread s(standardRoutes);
  RawClient c(s.port());
  auto r = c.roundTrip(get("/v1/sandboxes/sbx%2F1/containers/web%20a/logs?x=1&x=two%21&cursor=a+b"));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == R"({"id":"sbx/1","name":"web a","x":["1","two!"],"cursor":"a b"})");
  r = c.roundTrip(get("/v1/sandboxes/a%zz/containers/b/logs"));
  CHECK(r->status == 400);
  r = c.roundTrip(get("/v1/sandboxes/a/containers/b/logs?x=%"));
  CHECK(r->status == 400);
  r = c.roundTrip("PUT /v1/sandboxes/a/containers/b/logs HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  CHECK(r->status == 405);
  CHECK(r->header("allow") == "GET, HEAD, DELETE");
}

TEST_CASE("HTTP: pipelined requests are answered in order, async ones included") {
  ServerThread s(standardRoutes);
  RawClient c(s.port());
  std::string batch = get("/later") + get("/healthz") +
                      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + get("/later") +
                      get("/nope");
  REQUIRE(c.send(batch));
  std::vector<std::string> bodies;
  for (int i = 0; i < 5; ++i) {
    auto r = c.read();
    REQUIRE(r);
    bodies.push_back(r->body);
  }
  CHECK(bodies[0] == R"({"later":true})");
  CHECK(bodies[1] == R"({"ok":true})");
  CHECK(bodies[2] == "hello");
  CHECK(bodies[3] == R"({"later":true})");
  CHECK(bodies[4] == R"({"error":"not found: /nope"})");
}

TEST_CASE("HTTP: chunked request bodies split at every byte boundary") {
  ServerThread s(standardRoutes);
  const std::string req =
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
  RawClient c(s.port());
  for (size_t split = 1; split < req.size(); ++split) {
    REQUIRE(c.send(req.substr(0, split)));
    REQUIRE(c.send(req.substr(split)));
    auto r = c.read();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    REQUIRE(r->body == "hello, world");
  }
  // And one byte per write.
  for (char ch : req) REQUIRE(c.send(std::string_view(&ch, 1)));
  auto r = c.read();
  REQUIRE(r);
  CHECK(r->body == "hello, world");
}

TEST_CASE("HTTP: malformed requests get 400 and the connection closes") {
  ServerThread s(standardRoutes);
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",
      "GET /healthz HTTP/9.1\r\nHost: t\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET /he\x01lthz HTTP/1.1\r\n\r\n",
  };
  for (const char* req : bad) {
    CAPTURE(req);
    RawClient c(s.port());
    auto r = c.roundTrip(req);
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(r->body.rfind("{\"error\":\"malformed request: ", 0) == 0);
    CHECK(r->header("connection") == "close");
    CHECK(c.closedByPeer());
  }
}

TEST_CASE("HTTP: an Upgrade or CONNECT request is answered and closed, bytes after it dropped") {
  // Found by the http_server fuzzer: with a byte after the request, the
  // loop spun forever on llhttp's HPE_PAUSED_UPGRADE.
  ServerThread s(standardRoutes);
  const char* reqs[] = {
      "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nX",
      "CONNECT a:1 HTTP/1.1\r\n\r\nX",
  };
  for (const char* req : reqs) {
    CAPTURE(req);
    RawClient c(s.port());
    auto r = c.roundTrip(req);
    REQUIRE(r);
    CHECK(r->header("connection") == "close");
    CHECK(c.closedByPeer());
  }
  RawClient after(s.port());
  auto r = after.roundTrip(get("/healthz"));
  REQUIRE(r);
  CHECK(r->status == 200);
}

// (llhttp itself refuses other non-token characters: "malformed request:
// Invalid header token".)
TEST_CASE("HTTP: header names that are not tokens get 400 \"invalid header name\"") {
  ServerThread s(standardRoutes);
  const char* bad[] = {
      "GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: t\r\n: empty\r\n\r\n",
  };
  for (const char* req : bad) {
    CAPTURE(req);
    RawClient c(s.port());
    auto r = c.roundTrip(req);
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(r->body == R"({"error":"invalid header name"})");
    CHECK(c.closedByPeer());
  }
  RawClient ok(s.port());
  auto r = ok.roundTrip("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Odd_Name.~!#$%&'*+^`|: 1\r\n\r\n");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("HTTP: oversized headers → 431, oversized bodies → 413") {
  HttpServerOptions o;
  o.maxHeaderBytes = 1024;
  o.maxHeaderCount = 10;
  o.maxBodyBytes = 100;
  ServerThread s(standardRoutes, o);
  {
    RawClient c(s.port());
    auto r = c.roundTrip(get("/healthz", "X-Big: " + std::string(2000, 'a') + "\r\n"));
    REQUIRE(r);
    CHECK(r->status == 431);
    CHECK(r->body == R"j({"error":"request headers too large (max 1024 bytes)"})j");
    CHECK(c.closedByPeer());
  }
  {
    RawClient c(s.port());
    auto r = c.roundTrip(get("/" + std::string(2000, 'p')));
    CHECK(r->status == 431);
  }
  {
    RawClient c(s.port());
    std::string many;
    for (int i = 0; i < 11; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    auto r = c.roundTrip(get("/healthz", many));
    CHECK(r->status == 431);
    CHECK(r->body == R"j({"error":"too many request headers (max 10)"})j");
  }
  {
    RawClient c(s.port());
    // Refused from the declared length, before any body byte is read.
    auto r = c.roundTrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n");
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(r->body == R"j({"error":"request body too large (max 100 bytes)"})j");
  }
  {
    RawClient c(s.port());
    auto r = c.roundTrip("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" +
                         std::string(100, 'x') + "\r\n1\r\nx\r\n0\r\n\r\n");
    REQUIRE(r);
    CHECK(r->status == 413);
  }
  {
    RawClient c(s.port());  // exactly at the limit is fine
    auto r = c.roundTrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" +
                         std::string(100, 'x'));
    CHECK(r->status == 200);
    CHECK(r->body.size() == 100);
  }
}

TEST_CASE("HTTP: Expect: 100-continue") {
  ServerThread s(standardRoutes);
  RawClient c(s.port());
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read();
  REQUIRE(interim);
  CHECK(interim->status == 100);
  REQUIRE(c.send("ping"));
  auto r = c.read();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "ping");

  RawClient c2(s.port());
  r = c2.roundTrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: magic\r\n\r\n");
  REQUIRE(r);
  CHECK(r->status == 417);
}

TEST_CASE("HTTP: 10,000 requests on one keep-alive connection") {
  ServerThread s(standardRoutes);
  RawClient c(s.port());
  int ok = 0;
  for (int i = 0; i < 10000; ++i) {
    auto r = c.roundTrip(get("/healthz"));
    if (r && r->status == 200) ++ok;
  }
  CHECK(ok == 10000);
  CHECK(s.onLoop([](HttpServer& srv) { return srv.counters().accepted; }) == 1);
}

TEST_CASE("HTTP: 1,000 concurrent connections") {
  ServerThread s(standardRoutes);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 1000; ++i) {
    clients.push_back(std::make_unique<RawClient>(s.port()));
    REQUIRE(clients.back()->connected());
  }
  for (auto& c : clients) REQUIRE(c->send(get("/later")));
  int ok = 0;
  for (auto& c : clients) {
    auto r = c->read();
    if (r && r->status == 200) ++ok;
  }
  CHECK(ok == 1000);
  CHECK(s.onLoop([](HttpServer& srv) { return srv.connectionCount(); }) == 1000);
}

TEST_CASE("HTTP: at the connection cap an idle connection makes room, oldest first") {
  HttpServerOptions o;
  o.maxConnections = 2;
  ServerThread s(standardRoutes, o);
  RawClient a(s.port());
  REQUIRE(a.roundTrip(get("/healthz")));
  std::this_thread::sleep_for(20ms);  // b's idle deadline is later than a's
  RawClient b(s.port());
  REQUIRE(b.roundTrip(get("/healthz")));
  // Both idle (keep-alive): the newcomer is served and a, nearest its idle
  // timeout, is closed.
  RawClient c(s.port());
  auto r = c.roundTrip(get("/healthz"));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK_FALSE(a.read());  // closed by the server
  auto rb = b.roundTrip(get("/healthz"));
  REQUIRE(rb);
  CHECK(rb->status == 200);
  CHECK(s.onLoop([](HttpServer& srv) { return srv.counters().evictedIdle; }) == 1);
  CHECK(s.onLoop([](HttpServer& srv) { return srv.counters().rejectedOverCap; }) == 0);
}

TEST_CASE("HTTP: at the cap a fresh connection is not evicted before an older keep-alive one") {
  // A fresh connection's deadline (10 s header timeout) is earlier than a
  // keep-alive one's (60 s idle): by deadline, newcomers evicted each other.
  HttpServerOptions o;
  o.maxConnections = 2;
  ServerThread s(standardRoutes, o);
  RawClient old(s.port());
  REQUIRE(old.roundTrip(get("/healthz")));
  std::this_thread::sleep_for(20ms);
  RawClient fresh(s.port());  // connected, nothing sent yet
  auto until = std::chrono::steady_clock::now() + 5s;
  while (s.onLoop([](HttpServer& srv) { return srv.connectionCount(); }) < 2 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(5ms);
  }
  RawClient newcomer(s.port());
  auto r = newcomer.roundTrip(get("/healthz"));
  REQUIRE(r);
  CHECK(r->status == 200);
  auto rf = fresh.roundTrip(get("/healthz"));
  REQUIRE(rf);
  CHECK(rf->status == 200);
  CHECK_FALSE(old.read());  // the longest idle one went
}

TEST_CASE("HTTP: over the connection cap, none idle → 503 and close, the server keeps accepting") {
  HttpServerOptions o;
  o.maxConnections = 2;
  ServerThread s(standardRoutes, o);
  // Two connections in the middle of their headers: busy, not idle.
  RawClient a(s.port()), b(s.port());
  REQUIRE(a.send("GET /healthz HTTP/1.1\r\n"));
  REQUIRE(b.send("GET /healthz HTTP/1.1\r\n"));
  auto bothReading = [&] { return s.onLoop([](HttpServer& srv) { return srv.connectionCount(); }) == 2; };
  auto until = std::chrono::steady_clock::now() + 5s;
  while (!bothReading() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(50ms);  // their first bytes are read: phase Headers
  RawClient c(s.port());
  auto r = c.read();
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body == R"({"error":"too many connections, retry later"})");
  // A slot frees up: new connections are served again.
  a = RawClient(0);  // closes the first
  std::optional<Response> after;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!(after && after->status == 200) && std::chrono::steady_clock::now() < deadline) {
    RawClient d(s.port());
    after = d.roundTrip(get("/healthz"));
  }
  REQUIRE(after);
  CHECK(after->status == 200);
}

TEST_CASE("HTTP: a slowloris client gets 408 while others are served") {
  HttpServerOptions o;
  o.headerTimeout = 300ms;
  ServerThread s(standardRoutes, o);
  RawClient slow(s.port());
  std::atomic<bool> slowDone{false};
  std::optional<Response> slowResponse;
  auto started = std::chrono::steady_clock::now();
  std::thread slowThread([&] {
    // One byte every 20 ms: never completes the headers in time.
    std::string req = get("/healthz", "X-Padding: " + std::string(200, 'p') + "\r\n");
    for (char ch : req) {
      if (!slow.send(std::string_view(&ch, 1))) break;
      std::this_thread::sleep_for(20ms);  // the slow client's pace, not a wait
      if (slowDone) break;
    }
  });
  // Meanwhile a normal client is served promptly, many times.
  RawClient fast(s.port());
  int served = 0;
  while (std::chrono::steady_clock::now() - started < 250ms) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = fast.roundTrip(get("/healthz"));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < 100ms);
    ++served;
  }
  slowResponse = slow.read();
  slowDone = true;
  slowThread.join();
  REQUIRE(slowResponse);
  CHECK(slowResponse->status == 408);
  CHECK(slowResponse->body == R"({"error":"timed out reading request headers"})");
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);
  CHECK(served > 10);
}

TEST_CASE("HTTP: body timeout → 408; idle keep-alive connections are closed") {
  HttpServerOptions o;
  o.bodyTimeout = 200ms;
  o.idleTimeout = 200ms;
  ServerThread s(standardRoutes, o);
  RawClient c(s.port());
  auto r = c.roundTrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf");
  REQUIRE(r);
  CHECK(r->status == 408);
  CHECK(r->body == R"({"error":"timed out reading request body"})");

  RawClient idle(s.port());
  REQUIRE(idle.roundTrip(get("/healthz")));
  auto t0 = std::chrono::steady_clock::now();
  CHECK(idle.closedByPeer());
  CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
}

TEST_CASE("HTTP: HTTP/1.0 and Connection: close end the connection after the response") {
  ServerThread s(standardRoutes);
  RawClient a(s.port());
  auto r = a.roundTrip("GET /healthz HTTP/1.0\r\n\r\n");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(a.closedByPeer());
  RawClient b(s.port());
  r = b.roundTrip(get("/healthz", "Connection: close\r\n"));
  CHECK(r->header("connection") == "close");
  CHECK(b.closedByPeer());
  RawClient streamed(s.port());  // a 1.0 client gets a close-delimited stream
  r = streamed.roundTrip("GET /stream HTTP/1.0\r\n\r\n");
  REQUIRE(r);
  CHECK(r->header("transfer-encoding").empty());
  CHECK(r->header("connection") == "close");
  CHECK(r->body == "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
  RawClient c(s.port());  // 1.0 with keep-alive stays open
  r = c.roundTrip("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(r->header("connection") == "keep-alive");
  r = c.roundTrip("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("HTTP: streaming responses, chunked, with backpressure") {
  ServerThread s(standardRoutes);
  RawClient c(s.port());
  auto r = c.roundTrip(get("/stream"));
  REQUIRE(r);
  CHECK(r->header("transfer-encoding") == "chunked");
  CHECK(r->body == "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");

  // A client that does not read: once the socket buffers are full the
  // server's write() reports it and the handler stops producing, instead of
  // buffering 32 MiB; it resumes from onDrain when the client reads.
  gBackpressureSeen = 0;
  RawClient slow(s.port());
  REQUIRE(slow.send(get("/big")));
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (gBackpressureSeen.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  REQUIRE(gBackpressureSeen.load() >= 1);
  auto big = slow.read();
  REQUIRE(big);
  CHECK(big->body.size() == kBigBytes);
  CHECK(big->body.find_first_not_of('b') == std::string::npos);
  // Completing after a pause proves onDrain resumed the producer: nothing
  // else calls it again.
  // The connection is still usable afterwards.
  auto next = slow.roundTrip(get("/healthz"));
  REQUIRE(next);
  CHECK(next->status == 200);
}

TEST_CASE("HTTP: graceful shutdown finishes in-flight requests and closes idle ones") {
  std::atomic<bool> doneCalled{false};
  ServerThread s(standardRoutes);
  RawClient idle(s.port());
  REQUIRE(idle.roundTrip(get("/healthz")));
  RawClient busy(s.port());
  REQUIRE(busy.send(get("/later")));
  // Make sure the /later request has been dispatched before shutting down.
  for (int i = 0; i < 1000; ++i) {
    if (s.onLoop([](HttpServer& srv) { return srv.counters().requests; }) >= 2) break;
    std::this_thread::yield();
  }
  s.onLoop([&](HttpServer& srv) {
    srv.shutdown(5s, [&] { doneCalled = true; });
  });
  auto r = busy.read();
  REQUIRE(r);
  CHECK(r->body == R"({"later":true})");
  CHECK(r->header("connection") == "close");
  CHECK(busy.closedByPeer());
  CHECK(idle.closedByPeer());
  for (int i = 0; i < 1000 && !doneCalled; ++i) {
    s.onLoop([](HttpServer&) {});
  }
  CHECK(doneCalled);
  RawClient late(s.port());
  CHECK_FALSE(late.connected());
}

TEST_CASE("HTTP: parseListenAddress") {
  CHECK(parseListenAddress(":8080")->port == 8080);
  CHECK(parseListenAddress(":8080")->host.empty());
  CHECK(parseListenAddress("127.0.0.1:0")->host == "127.0.0.1");
  CHECK(parseListenAddress("[::1]:80")->ipv6);
  CHECK(parseListenAddress("localhost:1")->host == "127.0.0.1");
  CHECK_FALSE(parseListenAddress("8080").ok());
  CHECK_FALSE(parseListenAddress(":99999").ok());
  CHECK_FALSE(parseListenAddress("example.com:80").ok());
  CHECK(parseListenAddress("example.com:80").message() ==
        "invalid listen address \"example.com:80\": host must be an IP address");
}
