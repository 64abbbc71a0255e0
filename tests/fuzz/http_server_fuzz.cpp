// The real HttpServer (http/HttpServer.h) on one end of a socketpair, fed
// the input as a client's bytes, on an EventLoop with a ManualClock: every
// run is deterministic, timeouts included.
//
// Input: 3 control bytes, then the bytes the client sends.
//   byte 0: bits 0-1 how many times the data is split (0-2, 3 = 2), bits
//           2-4 the pause between the pieces (kPauses: 0 to past the idle
//           timeout, so header, body and idle timeouts fire);
//   bytes 1, 2: where the splits fall (n/256 of the data).
// Shorter inputs are sent whole. After the last piece the client half-closes
// (shutdown SHUT_WR) and reads until the server closes.
//
// Invariants: the server closes the connection once the client is done
// (its connection count returns to 0); what it wrote parses as a sequence
// of HTTP/1.1 responses (llhttp); and those are, in order, the exchanges its
// access log recorded, with the same status and body size (100 Continue
// interim responses aside; HEAD responses carry no body).

#include <llhttp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "FuzzTarget.h"
#include "http/AccessLog.h"
#include "http/HttpServer.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/SandboxApi.h"
#include "reactor/Clock.h"
#include "reactor/EventLoop.h"
#include "reactor/Fd.h"

namespace {

using namespace sbx;
using namespace sbx::http;
using namespace std::chrono_literals;

constexpr Duration kTurnStep = 2ms;  // manual time per loop turn
constexpr int kMaxTurns = 3000;      // per phase; ~6 s of manual time
constexpr Duration kPauses[] = {0ms, 1ms, 30ms, 500ms, 1100ms, 2100ms, 0ms, 0ms};
constexpr size_t kBigStreamBytes = 64 * 1024;

HttpServerOptions serverOptions() {
  HttpServerOptions o;
  o.maxHeaderBytes = 4096;
  o.maxHeaderCount = 32;
  o.maxBodyBytes = 64 * 1024;
  o.maxConnections = 4;
  o.headerTimeout = 1s;
  o.bodyTimeout = 1s;
  o.idleTimeout = 2s;
  o.writeTimeout = 5s;
  o.outputHighWater = 8 * 1024;
  return o;
}

struct LoggedExchange {
  std::string method;
  int status = 0;
  uint64_t bytes = 0;
};

class RecordingLog final : public AccessLog {
 public:
  void log(const AccessLogEntry& e) override {
    entries.push_back(LoggedExchange{std::string(e.method), e.status, e.bytes});
  }
  std::vector<LoggedExchange> entries;
};

// Routes shaped like the daemons', answering now, later (timer), through
// loop.post, or streamed (timer ticks; 64 KiB with backpressure).
void addRoutes(EventLoop& loop, Router& r) {
  r.add("GET", "/healthz", [](const ExchangePtr& ex) { ex->respond(200, R"({"ok":true})"); });
  r.add("GET", "/v1/sandboxes", [](const ExchangePtr& ex) {
    const HttpRequest& req = ex->request();
    json::JsonWriter w;
    w.beginObject().key("items").beginArray().endArray();
    w.kv("cursor", req.queryValue("cursor").value_or(""));
    w.kv("limit", req.queryValue("limit").value_or("20"));
    w.endObject();
    ex->respond(200, w.str());
  });
  r.add("POST", "/v1/sandboxes", [](const ExchangePtr& ex) {
    static json::JsonReader reader;
    auto root = reader.parse(ex->request().body);
    if (!root.ok()) {
      ex->respondError(400, root.message());
      return;
    }
    json::JsonWriter w;
    w.beginObject().kv("bytes", ex->request().body.size()).endObject();
    ex->respond(202, w.str());
  });
  r.add("POST", "/v1/sandboxes/statuses", [](const ExchangePtr& ex) {
    auto ids = node::decodeStatusesRequest(ex->request().body, 200);
    if (!ids.ok()) {
      ex->respondError(400, ids.message());
      return;
    }
    json::JsonWriter w;
    w.beginObject().key("missing").beginArray();
    for (const auto& id : *ids) w.value(id);
    w.endArray().endObject();
    ex->respond(200, w.str());
  });
  r.add("GET", "/v1/sandboxes/{id}", [](const ExchangePtr& ex) {
    json::JsonWriter w;
    w.beginObject().kv("id", ex->request().param("id")).endObject();
    ex->respond(200, w.str());
  });
  r.add("PUT", "/v1/sandboxes/{id}", [](const ExchangePtr& ex) {
    HttpHeaders extra;
    extra.add("Location", "/v1/sandboxes/x");
    ex->respond(201, ex->request().body, "application/octet-stream", &extra);
  });
  r.add("DELETE", "/v1/sandboxes/{id}", [&loop](const ExchangePtr& ex) {
    loop.post([ex] {
      json::JsonWriter w;
      w.beginObject().kv("id", ex->request().param("id")).kv("phase", "deleted").endObject();
      ex->respond(200, w.str());
    });
  });
  r.add("GET", "/v1/sandboxes/{id}/containers/{name}/logs", [&loop](const ExchangePtr& ex) {
    const HttpRequest& req = ex->request();
    int left = 3;
    if (auto tail = req.queryValue("tail")) left = static_cast<int>(tail->size() % 5);
    const std::string line = "[" + req.param("name") + "] " + req.param("id") + "\n";
    ex->beginStream(200, "application/x-ndjson");
    auto remaining = std::make_shared<int>(left);
    auto timer = std::make_shared<Timer>();
    *timer = loop.runEvery(5ms, [ex, remaining, timer, line] {
      if (*remaining <= 0 || ex->clientGone()) {
        ex->end();
        timer->cancel();
        return;
      }
      --*remaining;
      ex->write(line);
    });
  });
  r.add("GET", "/v1/sandboxes/{id}/logs", [](const ExchangePtr& ex) {
    ex->beginStream(200, "text/plain");
    auto sent = std::make_shared<size_t>(0);
    auto pump = std::make_shared<std::function<void()>>();
    // ex → onDrain → pump → ex: a cycle until the exchange ends or its
    // connection closes (both clear onDrain).
    *pump = [ex, sent] {
      const std::string chunk(4096, 'l');
      while (*sent < kBigStreamBytes) {
        *sent += chunk.size();
        if (!ex->write(chunk)) return;  // resumes from onDrain
      }
      ex->end();
    };
    ex->onDrain([pump] { (*pump)(); });
    (*pump)();
  });
  r.add("GET", "/api/v1/nodes/{name}/sandboxes/{id}", [&loop](const ExchangePtr& ex) {
    auto timer = std::make_shared<Timer>();
    *timer = loop.runAfter(20ms, [ex, timer] {
      json::JsonWriter w;
      w.beginObject()
          .kv("node", ex->request().param("name"))
          .kv("id", ex->request().param("id"))
          .endObject();
      ex->respond(200, w.str());
    });
  });
  r.add("POST", "/api/v1/nodes/{name}/sandboxes", [](const ExchangePtr& ex) {
    ex->respond(200, ex->request().body, "application/octet-stream");
  });
  r.add("DELETE", "/api/v1/nodes/{name}/sandboxes/{id}",
        [](const ExchangePtr& ex) { ex->respond(204, ""); });
}

// One server for the whole run (as a daemon has); never destroyed, so that
// nothing depends on the order of static destructors.
struct Fixture {
  ManualClock clock;
  EventLoop loop{&clock};
  Router router;
  RecordingLog log;
  std::unique_ptr<HttpServer> server;

  Fixture() {
    addRoutes(loop, router);
    server = std::make_unique<HttpServer>(loop, router, serverOptions(), &log);
  }

  void turn() {
    loop.runOnce(Duration::zero());
    clock.advance(kTurnStep);
  }
};

Fixture& fixture() {
  static Fixture* f = new Fixture();
  return *f;
}

// The client's end: everything the server wrote, and whether it closed.
struct Client {
  explicit Client(int f) : fd(f) {}

  int fd;
  std::string received;
  bool eof = false;
  bool writeFailed = false;

  void drain() {
    char buf[16 * 1024];
    while (!eof) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN) {
        break;
      } else {
        eof = true;  // ECONNRESET: the server closed with our bytes unread
      }
    }
  }

  // Sends all of `data`, running the loop while the socket is full.
  void send(Fixture& f, std::string_view data) {
    size_t off = 0;
    for (int turns = 0; off < data.size() && !writeFailed && turns < kMaxTurns;) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        f.turn();
        drain();
        ++turns;
      } else {
        writeFailed = true;  // EPIPE: the server closed
      }
    }
  }
};

// Parses what the server wrote as HTTP/1.1 responses. `log` (the server's
// access log, in order) tells which ones answer HEAD: those have no body.
class ResponseParser {
 public:
  struct Response {
    int status = 0;
    uint64_t bodyBytes = 0;
    bool bodySkipped = false;
  };

  explicit ResponseParser(const std::vector<LoggedExchange>& log) : log_(log) {
    llhttp_settings_init(&settings_);
    settings_.on_headers_complete = &ResponseParser::onHeadersComplete;
    settings_.on_body = &ResponseParser::onBody;
    settings_.on_message_complete = &ResponseParser::onMessageComplete;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
  }

  // True when `bytes` is a whole number of well-formed responses.
  bool parse(const std::string& bytes) {
    if (llhttp_execute(&parser_, bytes.data(), bytes.size()) != HPE_OK) return false;
    return llhttp_finish(&parser_) == HPE_OK;
  }

  std::vector<Response> responses;  // final (non-1xx) responses
  bool allHttp11 = true;

 private:
  static ResponseParser& self(llhttp_t* p) { return *static_cast<ResponseParser*>(p->data); }

  static int onHeadersComplete(llhttp_t* p) {
    ResponseParser& s = self(p);
    if (llhttp_get_http_major(p) != 1 || llhttp_get_http_minor(p) != 1) s.allHttp11 = false;
    s.current_ = Response{llhttp_get_status_code(p), 0, false};
    if (s.current_.status < 200) return 0;
    const size_t k = s.responses.size();
    if (k < s.log_.size() && s.log_[k].method == "HEAD" && s.log_[k].bytes == 0) {
      s.current_.bodySkipped = true;
      return 1;  // llhttp: no body follows
    }
    return 0;
  }

  static int onBody(llhttp_t* p, const char*, size_t len) {
    self(p).current_.bodyBytes += len;
    return 0;
  }

  static int onMessageComplete(llhttp_t* p) {
    ResponseParser& s = self(p);
    if (s.current_.status >= 200) s.responses.push_back(s.current_);
    return 0;
  }

  const std::vector<LoggedExchange>& log_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  Response current_;
};

}  // namespace

SBX_FUZZ_TARGET(http_server) {
  Fixture& f = fixture();
  f.log.entries.clear();

  unsigned control = 0, split1 = 0, split2 = 0;
  std::string_view data = input;
  if (input.size() >= 3) {
    control = static_cast<unsigned char>(input[0]);
    split1 = static_cast<unsigned char>(input[1]);
    split2 = static_cast<unsigned char>(input[2]);
    data = input.substr(3);
  }
  const unsigned splits = std::min(control & 3u, 2u);
  const Duration pause = kPauses[(control >> 2) & 7u];
  std::vector<size_t> cuts = {data.size() * split1 / 256, data.size() * split2 / 256};
  cuts.resize(splits);
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::string_view> pieces;
  size_t from = 0;
  for (size_t cut : cuts) {
    pieces.push_back(data.substr(from, cut - from));
    from = cut;
  }
  pieces.push_back(data.substr(from));

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("socketpair");
    std::abort();
  }
  // A small send buffer on the server's end: big and pipelined responses
  // meet backpressure (EAGAIN, high water, onDrain) within a few KiB.
  int sndbuf = 16 * 1024;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  Fd clientFd(sv[1]);
  f.server->adopt(Fd(sv[0]));
  SBX_FUZZ_CHECK(f.server->connectionCount() == 1);

  Client client(clientFd.get());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0) {
      f.clock.advance(pause);
      for (int t = 0; t < 3; ++t) {
        f.turn();
        client.drain();
      }
    }
    client.send(f, pieces[i]);
    f.turn();
    client.drain();
  }
  ::shutdown(client.fd, SHUT_WR);
  for (int t = 0; t < kMaxTurns && (f.server->connectionCount() > 0 || !client.eof); ++t) {
    f.turn();
    client.drain();
  }
  SBX_FUZZ_CHECK(f.server->connectionCount() == 0);
  SBX_FUZZ_CHECK(client.eof);
  // Handlers' timers still pending for a client that left fire now, not in
  // the middle of the next input.
  f.clock.advance(1s);
  f.turn();
  f.turn();

  if (!client.received.empty()) {
    SBX_FUZZ_CHECK(client.received.rfind("HTTP/1.1 ", 0) == 0);
  }
  ResponseParser parser(f.log.entries);
  SBX_FUZZ_CHECK(parser.parse(client.received));
  SBX_FUZZ_CHECK(parser.allHttp11);
  SBX_FUZZ_CHECK(parser.responses.size() == f.log.entries.size());
  for (size_t i = 0; i < parser.responses.size(); ++i) {
    const auto& got = parser.responses[i];
    const auto& logged = f.log.entries[i];
    SBX_FUZZ_CHECK(got.status == logged.status);
    SBX_FUZZ_CHECK(got.bodySkipped || got.bodyBytes == logged.bytes);
  }
}
