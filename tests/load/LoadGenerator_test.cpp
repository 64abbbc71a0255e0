// LoadGenerator against an in-process fake daemon on the same EventLoop: the
// sbxlet routes (SPEC §1) or the control plane's (SPEC §2) over an in-memory
// map, with knobs for refusals, slow answers and failed sandboxes.
#include "load/LoadGenerator.h"

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../TestUtil.h"
#include "http/HttpServer.h"
#include "http/Router.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"

using namespace sbx;
using namespace sbx::load;
using namespace std::chrono_literals;

namespace {

const char* kSecret = "s3cret";

// A fake sbxlet (api Sbxlet) or sandboxd-o (api Orch). A sandbox answers
// "creating"/"Pending" to its first `getsBeforeRunning` GETs, then
// `outcome` ("running"/"Running" unless told otherwise).
class FakeDaemon {
 public:
  struct Sandbox {
    std::string phase;
    int gets = 0;
    std::string outcome;
    int ports = 0;
  };

  // ---- knobs ----
  int getsBeforeRunning = 2;
  std::string outcome;                      // default: the API's running phase
  int refuseEveryNthCreate = 0;             // 429 to creates n, 2n, 3n, ...
  Duration answerDelay = Duration::zero();  // every answer waits this long

  // ---- what it holds and saw ----
  std::map<std::string, Sandbox> sandboxes;
  std::vector<std::string> deletes;  // every DELETE's id, in order
  int deletesOfUnknown = 0;
  int creates = 0, gets = 0, lists = 0, statusCalls = 0, unauthorized = 0;
  size_t maxStatusIds = 0;
  int statusIdsUnknown = 0;
  int getsOfUnknown = 0;

  FakeDaemon(EventLoop& loop, LoadApi api) : loop_(loop), api_(api), server_(loop, router_) {
    const std::string base = api == LoadApi::Sbxlet ? "/v1/sandboxes" : "/api/v1/sandboxes";
    on("POST", base, [this](const http::ExchangePtr& ex) { create(ex); });
    on("GET", base, [this](const http::ExchangePtr& ex) { list(ex); });
    on("GET", base + "/{id}", [this](const http::ExchangePtr& ex) { get(ex); });
    on("DELETE", base + "/{id}", [this](const http::ExchangePtr& ex) { remove(ex); });
    if (api == LoadApi::Sbxlet) {
      on("POST", base + "/statuses", [this](const http::ExchangePtr& ex) { statuses(ex); });
    }
    Status st = server_.listen("127.0.0.1:0");
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.message()));
  }

  uint16_t port() const { return server_.port(); }

 private:
  void on(const char* method, const std::string& pattern, http::Handler h) {
    router_.add(method, pattern, [this, h](const http::ExchangePtr& ex) {
      const std::string* auth = ex->request().headers.find("Authorization");
      if (!auth || *auth != std::string("Bearer ") + kSecret) {
        ++unauthorized;
        return ex->respondError(401, "unauthorized");
      }
      h(ex);
    });
  }

  void answer(const http::ExchangePtr& ex, int status, std::string body) {
    if (answerDelay == Duration::zero()) return ex->respond(status, body);
    held_.push_back(loop_.runAfter(answerDelay, [ex, status, body] { ex->respond(status, body); }));
  }

  std::string running() const { return api_ == LoadApi::Sbxlet ? "running" : "Running"; }

  void writeSandbox(json::JsonWriter& w, const std::string& id, const Sandbox& s) const {
    w.beginObject().kv("id", id);
    if (api_ == LoadApi::Sbxlet) {
      w.kv("phase", s.phase);
      if (s.phase == "error") w.kv("error", "pull failed");
    } else {
      w.key("status").beginObject().kv("phase", s.phase);
      if (s.phase == "Failed") w.kv("message", "no node fits");
      w.endObject();
    }
    w.endObject();
  }

  void create(const http::ExchangePtr& ex) {
    ++creates;
    if (refuseEveryNthCreate && creates % refuseEveryNthCreate == 0) {
      return ex->respondError(429, "rate limit exceeded for sandbox create");
    }
    json::JsonReader reader;
    auto root = reader.parse(ex->request().body);
    CHECK(root.ok());
    if (!root.ok()) return ex->respondError(400, root.message());
    std::string id;
    root->field({"id"}).get(id);
    json::JsonCursor spec = api_ == LoadApi::Sbxlet ? *root : root->field({"spec"});
    size_t containers = 0;
    std::string image, cpu, memory;
    spec.field({"containers"}).forEach([&](const json::JsonCursor& c) {
      ++containers;
      c.field({"image"}).get(image);
      c.field({"resource"}).field({"cpu"}).get(cpu);
      c.field({"resource"}).field({"memory"}).get(memory);
    });
    CHECK(containers == 1);
    CHECK(image == "docker.io/library/busybox:1.36");
    CHECK(cpu == "10m");
    CHECK(memory == "16Mi");
    Sandbox s;
    int64_t expectPort = 8080;
    spec.field({"ports"}).forEach([&](const json::JsonCursor& p) {
      int64_t cp = 0;
      p.field({"container_port"}).get(cp);
      CHECK(cp == expectPort++);
      ++s.ports;
    });
    CHECK(reader.ok());
    if (id.empty() || sandboxes.count(id)) return ex->respondError(400, "bad or duplicate id");
    s.phase = api_ == LoadApi::Sbxlet ? "creating" : "Pending";
    s.outcome = outcome.empty() ? running() : outcome;
    json::JsonWriter w;
    w.beginObject().key("sandbox");
    writeSandbox(w, id, s);
    w.endObject();
    sandboxes[id] = s;
    answer(ex, 202, w.take());
  }

  void get(const http::ExchangePtr& ex) {
    ++gets;
    const std::string& id = ex->request().param("id");
    auto it = sandboxes.find(id);
    if (it == sandboxes.end()) {
      ++getsOfUnknown;
      return ex->respondError(404, "sandbox not found: " + id);
    }
    Sandbox& s = it->second;
    if (++s.gets > getsBeforeRunning) s.phase = s.outcome;
    json::JsonWriter w;
    w.beginObject().key("sandbox");
    writeSandbox(w, id, s);
    w.endObject();
    answer(ex, 200, w.take());
  }

  void list(const http::ExchangePtr& ex) {
    ++lists;
    json::JsonWriter w;
    w.beginObject().key("items").beginArray();
    size_t n = 0;
    for (const auto& [id, s] : sandboxes) {
      if (++n > 200) break;
      writeSandbox(w, id, s);
    }
    w.endArray().endObject();
    answer(ex, 200, w.take());
  }

  void statuses(const http::ExchangePtr& ex) {
    ++statusCalls;
    json::JsonReader reader;
    auto root = reader.parse(ex->request().body);
    CHECK(root.ok());
    if (!root.ok()) return ex->respondError(400, root.message());
    size_t n = 0;
    root->field({"ids"}).forEach([&](const json::JsonCursor& c) {
      std::string id;
      c.get(id);
      ++n;
      if (!sandboxes.count(id)) ++statusIdsUnknown;
    });
    maxStatusIds = std::max(maxStatusIds, n);
    if (n > 200) return ex->respondError(400, "too many ids (max 200)");
    answer(ex, 200, R"({"items":[],"missing":[]})");
  }

  void remove(const http::ExchangePtr& ex) {
    const std::string id = ex->request().param("id");
    deletes.push_back(id);
    if (!sandboxes.erase(id)) {
      ++deletesOfUnknown;
      if (api_ == LoadApi::Orch) return ex->respondError(404, "sandbox not found: " + id);
    }
    json::JsonWriter w;
    if (api_ == LoadApi::Sbxlet) {
      w.beginObject().kv("id", id).kv("phase", "deleted").endObject();
    } else {
      w.beginObject().kv("deleted", id).endObject();
    }
    answer(ex, 200, w.take());
  }

  EventLoop& loop_;
  LoadApi api_;
  http::Router router_;
  http::HttpServer server_;
  std::vector<Timer> held_;  // pending delayed answers
};

LoadMix mixOf(const char* spec) {
  auto r = LoadMix::parse(spec);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.message()));
  return *r;
}

LoadOptions optionsFor(const FakeDaemon& fake, LoadApi api = LoadApi::Sbxlet) {
  LoadOptions o;
  o.api = api;
  o.host = "127.0.0.1";
  o.port = fake.port();
  o.secret = kSecret;
  o.idPrefix = "t-";
  o.pollInterval = 2ms;
  o.waitTimeout = 5s;
  o.timeout = 5s;
  return o;
}

// Runs the generator to its end; the report it handed to `done`.
LoadReport runToEnd(EventLoop& loop, LoadGenerator& gen,
                    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  bool done = false;
  LoadReport got;
  gen.run([&](const LoadReport& r) {
    done = true;
    got = r;
  });
  REQUIRE(test::runUntil(
      loop, [&] { return done; }, limit));
  CHECK(gen.inFlight() == 0);
  return got;
}

bool noRepeats(const std::vector<std::string>& ids) {
  return std::set<std::string>(ids.begin(), ids.end()).size() == ids.size();
}

uint64_t sumStarted(const LoadReport& r) {
  uint64_t n = 0;
  for (const auto& row : r.ops) n += row.started;
  return n;
}

}  // namespace

TEST_CASE("LoadGenerator: validateLoadOptions names what is wrong") {
  LoadOptions o;
  o.port = 8080;
  o.secret = "x";
  o.concurrency = 1;
  o.count = 10;
  o.mix = mixOf("create=1,get=4,list=1,statuses=1,delete=1");
  CHECK(validateLoadOptions(o).ok());

  LoadOptions both = o;
  both.rate = 10;
  CHECK(validateLoadOptions(both).message() == "exactly one of rate and concurrency must be set");
  LoadOptions neither = o;
  neither.concurrency = 0;
  CHECK(validateLoadOptions(neither).message() ==
        "exactly one of rate and concurrency must be set");
  LoadOptions unbounded = o;
  unbounded.count = 0;
  CHECK(validateLoadOptions(unbounded).message() == "a duration or a count is required (or both)");
  LoadOptions noSecret = o;
  noSecret.secret.clear();
  CHECK_FALSE(validateLoadOptions(noSecret).ok());
  LoadOptions badCpu = o;
  badCpu.cpu = "lots";
  CHECK(validateLoadOptions(badCpu).message().rfind("cpu: ", 0) == 0);
  LoadOptions badPrefix = o;
  badPrefix.idPrefix = "a/b";
  CHECK(validateLoadOptions(badPrefix).message().find("id prefix \"a/b\"") == 0);
  LoadOptions noMix = o;
  noMix.mix = LoadMix();
  CHECK_FALSE(validateLoadOptions(noMix).ok());

  SUBCASE("the control plane has no statuses endpoint") {
    LoadOptions orch = o;
    orch.api = LoadApi::Orch;
    CHECK(validateLoadOptions(orch).message() ==
          "statuses is not part of the sandboxd-o API: remove it from the mix");
    orch.mix = mixOf("create=1,get=4,list=1,delete=1");
    CHECK(validateLoadOptions(orch).ok());
    orch.mix = mixOf("statuses=1");
    CHECK_FALSE(validateLoadOptions(orch).ok());
  }
}

TEST_CASE("LoadGenerator: closed loop counts every op it started, in the mix's proportions") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 8;
  o.count = 2000;
  o.mix = mixOf("create=3,get=4,list=1,statuses=1,delete=1");
  o.seed = 42;
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  CHECK(sumStarted(r) == 2000);
  CHECK(r.total().started == 2000);
  CHECK(r.total().ok == 2000);
  CHECK_FALSE(r.failed());
  CHECK(r.wall > Duration::zero());
  // What the daemon saw is what the report says was started.
  CHECK(static_cast<uint64_t>(fake.creates) == r.op(LoadOp::Create).started);
  CHECK(static_cast<uint64_t>(fake.gets) == r.op(LoadOp::Get).started);
  CHECK(static_cast<uint64_t>(fake.lists) == r.op(LoadOp::List).started);
  CHECK(static_cast<uint64_t>(fake.statusCalls) == r.op(LoadOp::Statuses).started);
  CHECK(fake.deletes.size() == r.op(LoadOp::Delete).started);
  CHECK(r.polls == 0);
  for (const auto& row : r.ops) CHECK(row.latency.count() == row.ok);
  // Targets were always sandboxes of the run that still existed.
  CHECK(fake.getsOfUnknown == 0);
  CHECK(fake.statusIdsUnknown == 0);
  CHECK(fake.deletesOfUnknown == 0);
  CHECK(noRepeats(fake.deletes));
  CHECK(fake.unauthorized == 0);
  // Proportions: weights 3:4:1:1:1 over 2000 picks (a few early picks of
  // get/statuses/delete become creates while nothing exists yet).
  auto share = [&](LoadOp op) { return static_cast<double>(r.op(op).started) / 2000.0; };
  CHECK(share(LoadOp::Get) == doctest::Approx(0.4).epsilon(0.15));
  CHECK(share(LoadOp::Create) == doctest::Approx(0.3).epsilon(0.15));
  CHECK(share(LoadOp::List) == doctest::Approx(0.1).epsilon(0.3));
  CHECK(share(LoadOp::Statuses) == doctest::Approx(0.1).epsilon(0.3));
  CHECK(share(LoadOp::Delete) == doctest::Approx(0.1).epsilon(0.3));
  CHECK(r.replacedByCreate < 20);
  // Without cleanup what the run left is reported.
  CHECK(r.leftBehind == fake.sandboxes.size());
  CHECK(r.cleanup.started == 0);
}

TEST_CASE("LoadGenerator: the same seed picks the same sequence") {
  std::vector<std::string> deletes[2];
  for (int run = 0; run < 2; ++run) {
    EventLoop loop;
    FakeDaemon fake(loop, LoadApi::Sbxlet);
    LoadOptions o = optionsFor(fake);
    o.concurrency = 1;  // one op at a time: the order is the picks' order
    o.count = 200;
    o.mix = mixOf("create=2,get=1,delete=1");
    o.seed = 7;
    LoadGenerator gen(loop, o);
    runToEnd(loop, gen);
    deletes[run] = fake.deletes;
  }
  CHECK(!deletes[0].empty());
  CHECK(deletes[0] == deletes[1]);
}

TEST_CASE("LoadGenerator: waitRunning records create→running and polls are not gets") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 4;
  o.count = 20;
  o.mix = mixOf("create=1");
  o.waitRunning = true;
  o.pollInterval = 5ms;
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  CHECK(r.op(LoadOp::Create).started == 20);
  CHECK(r.op(LoadOp::Create).ok == 20);
  CHECK(r.op(LoadOp::Get).started == 0);
  CHECK(r.createToRunning.started == 20);
  CHECK(r.createToRunning.ok == 20);
  CHECK(r.createToRunning.errorCount() == 0);
  CHECK(r.createToRunning.latency.count() == 20);
  // Two "creating" answers, then "running": three polls 5 ms apart at least.
  CHECK(r.createToRunning.latency.min() >= 15000);
  CHECK(r.polls == 60);
  CHECK(fake.gets == 60);
  for (const auto& [id, s] : fake.sandboxes) {
    CAPTURE(id);
    CHECK(s.phase == "running");
  }
  // The create's own latency is only the POST.
  CHECK(r.op(LoadOp::Create).latency.max() < r.createToRunning.latency.min());
  CHECK(r.formatTable().find("create→running") != std::string::npos);
}

TEST_CASE("LoadGenerator: a sandbox that fails or never runs is a failed wait") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 2;
  o.count = 4;
  o.mix = mixOf("create=1");
  o.waitRunning = true;

  SUBCASE("phase error") {
    fake.outcome = "error";
    LoadGenerator gen(loop, o);
    const LoadReport r = runToEnd(loop, gen);
    CHECK(r.createToRunning.started == 4);
    CHECK(r.createToRunning.ok == 0);
    CHECK(r.createToRunning.errors.at("failed") == 4);
    CHECK(r.createToRunning.errorSamples.at("failed").find("phase error: pull failed") !=
          std::string::npos);
    CHECK(r.op(LoadOp::Create).ok == 4);  // the create itself was accepted
    CHECK(r.failed());
  }
  SUBCASE("timeout") {
    fake.getsBeforeRunning = 1000000;
    o.waitTimeout = 60ms;
    LoadGenerator gen(loop, o);
    const LoadReport r = runToEnd(loop, gen);
    CHECK(r.createToRunning.errors.at("timeout") == 4);
    CHECK(r.failed());
  }
}

TEST_CASE("LoadGenerator: errors are counted by status, and refused creates are not cleaned up") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  fake.refuseEveryNthCreate = 3;
  LoadOptions o = optionsFor(fake);
  o.concurrency = 3;
  o.count = 30;
  o.mix = mixOf("create=1");
  o.cleanup = true;
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  const LoadOpStats& c = r.op(LoadOp::Create);
  CHECK(c.started == 30);
  CHECK(c.ok == 20);
  CHECK(c.errorCount() == 10);
  CHECK(c.errors.at("429") == 10);
  CHECK(c.errorSamples.at("429") == "rate limit exceeded for sandbox create");
  CHECK(c.latency.count() == 20);
  CHECK(r.failed());
  // Cleanup deleted the 20 that exist, not the refused ids.
  CHECK(fake.deletes.size() == 20);
  CHECK(fake.deletesOfUnknown == 0);
  CHECK(fake.sandboxes.empty());
  const std::string table = r.formatTable();
  CHECK(table.find("create 429 x10: rate limit exceeded for sandbox create") != std::string::npos);
}

TEST_CASE("LoadGenerator: a wrong secret is an error per op (401), transport errors too") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 2;
  o.count = 6;
  o.mix = mixOf("create=1,list=1");

  SUBCASE("401") {
    o.secret = "wrong";
    LoadGenerator gen(loop, o);
    const LoadReport r = runToEnd(loop, gen);
    CHECK(r.total().errors.at("401") == 6);
    CHECK(r.total().ok == 0);
    CHECK(fake.unauthorized == 6);
    CHECK(fake.sandboxes.empty());
  }
  SUBCASE("nobody listening") {
    o.port = 1;  // reserved (tcpmux): refused on loopback
    LoadGenerator gen(loop, o);
    const LoadReport r = runToEnd(loop, gen);
    CHECK(r.total().errors.at("transport") == 6);
    CHECK(r.total().errorSamples.at("transport").find("127.0.0.1:1") != std::string::npos);
  }
}

TEST_CASE("LoadGenerator: preload and cleanup leave the daemon empty and stay out of the stats") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 4;
  o.count = 300;
  o.mix = mixOf("create=1,get=2,statuses=1,delete=2");
  o.preload = 30;
  o.waitRunning = true;
  o.cleanup = true;
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  CHECK(r.preload.started == 30);
  CHECK(r.preload.ok == 30);
  CHECK(sumStarted(r) == 300);
  CHECK(static_cast<uint64_t>(fake.creates) == 30 + r.op(LoadOp::Create).started);
  CHECK(r.total().errorCount() == 0);
  CHECK(r.createToRunning.ok == r.op(LoadOp::Create).ok);
  // Deletes: the ops' and cleanup's together never hit one id twice.
  CHECK(noRepeats(fake.deletes));
  CHECK(fake.deletesOfUnknown == 0);
  CHECK(fake.sandboxes.empty());
  CHECK(r.cleanup.started == fake.deletes.size() - r.op(LoadOp::Delete).started);
  CHECK(r.cleanup.ok == r.cleanup.started);
  CHECK(r.cleanup.errorCount() == 0);
  CHECK(r.leftBehind == 0);
  CHECK_FALSE(r.failed());
}

TEST_CASE("LoadGenerator: statuses sends at most 200 ids, all of them known") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 2;
  o.count = 10;
  o.mix = mixOf("statuses=1");
  o.preload = 250;
  o.cleanup = true;
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);
  CHECK(r.op(LoadOp::Statuses).ok == 10);
  CHECK(fake.maxStatusIds == 200);
  CHECK(fake.statusIdsUnknown == 0);
  CHECK(fake.sandboxes.empty());
}

TEST_CASE("LoadGenerator: open loop starts ops on schedule whatever completes") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.rate = 200;
  o.duration = 500ms;
  o.mix = mixOf("create=1,get=3,list=1");
  o.cleanup = true;
  LoadGenerator gen(loop, o);
  const auto t0 = std::chrono::steady_clock::now();
  const LoadReport r = runToEnd(loop, gen);
  const auto took = std::chrono::steady_clock::now() - t0;

  const uint64_t started = sumStarted(r);
  CHECK(started + r.skippedSaturated >= 80);
  CHECK(started + r.skippedSaturated <= 120);
  CHECK(r.skippedSaturated == 0);
  CHECK(r.total().ok == started);
  // Ops were spread over the duration, not started in one burst.
  CHECK(took >= 450ms);
  CHECK(r.wall >= 450ms);
  CHECK(fake.sandboxes.empty());
}

TEST_CASE("LoadGenerator: open loop skips slots while maxInFlight ops are unfinished") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  fake.answerDelay = 50ms;
  LoadOptions o = optionsFor(fake);
  o.rate = 200;
  o.count = 60;  // 300 ms of slots, one every 5 ms
  o.maxInFlight = 2;
  o.mix = mixOf("list=1");
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  const uint64_t started = r.op(LoadOp::List).started;
  CHECK(started + r.skippedSaturated == 60);
  // Two at a time, each ~50 ms: about 12 over 300 ms (loose: timing).
  CHECK(started >= 4);
  CHECK(started <= 20);
  CHECK(r.skippedSaturated >= 40);
  CHECK(r.op(LoadOp::List).ok == started);
  CHECK(r.op(LoadOp::List).latency.min() >= 50000);
  CHECK(r.formatTable().find("skipped (saturated): " + std::to_string(r.skippedSaturated)) !=
        std::string::npos);
}

TEST_CASE("LoadGenerator: stop() ends a run early and still cleans up") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  LoadOptions o = optionsFor(fake);
  o.concurrency = 3;
  o.duration = std::chrono::hours(1);
  o.mix = mixOf("create=1,get=1");
  o.cleanup = true;
  LoadGenerator gen(loop, o);
  bool done = false;
  gen.run([&](const LoadReport&) { done = true; });
  REQUIRE(test::runUntil(loop, [&] { return gen.report().total().ok >= 50; }));
  gen.stop();
  REQUIRE(test::runUntil(loop, [&] { return done; }));
  const LoadReport& r = gen.report();
  CHECK(r.total().ok == r.total().started);
  CHECK(r.total().started < 1000);
  CHECK(fake.sandboxes.empty());
  CHECK(r.cleanup.ok == static_cast<uint64_t>(fake.creates));
}

TEST_CASE("LoadGenerator: the control plane's shapes, ports and Running phase") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Orch);
  LoadOptions o = optionsFor(fake, LoadApi::Orch);
  o.concurrency = 3;
  o.count = 40;
  o.mix = mixOf("create=2,get=1,list=1,delete=1");
  o.ports = 2;
  o.waitRunning = true;
  o.cleanup = true;
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  CHECK(sumStarted(r) == 40);
  CHECK(r.total().errorCount() == 0);
  CHECK(r.op(LoadOp::Statuses).started == 0);
  CHECK(r.createToRunning.ok == r.op(LoadOp::Create).ok);
  CHECK(r.createToRunning.ok > 0);
  CHECK(fake.statusCalls == 0);
  CHECK(fake.sandboxes.empty());
  CHECK(noRepeats(fake.deletes));
  CHECK_FALSE(r.failed());

  SUBCASE("Failed is a failed wait") {
    FakeDaemon failing(loop, LoadApi::Orch);
    failing.outcome = "Failed";
    LoadOptions f = optionsFor(failing, LoadApi::Orch);
    f.concurrency = 1;
    f.count = 2;
    f.mix = mixOf("create=1");
    f.waitRunning = true;
    LoadGenerator gen2(loop, f);
    const LoadReport r2 = runToEnd(loop, gen2);
    CHECK(r2.createToRunning.errors.at("failed") == 2);
    CHECK(r2.createToRunning.errorSamples.at("failed").find("phase Failed: no node fits") !=
          std::string::npos);
  }
}

TEST_CASE("LoadGenerator: the JSON report holds every figure") {
  EventLoop loop;
  FakeDaemon fake(loop, LoadApi::Sbxlet);
  fake.refuseEveryNthCreate = 2;
  LoadOptions o = optionsFor(fake);
  o.concurrency = 1;
  o.count = 10;
  o.mix = mixOf("create=1");
  LoadGenerator gen(loop, o);
  const LoadReport r = runToEnd(loop, gen);

  const std::string text = r.formatJson();
  json::JsonReader reader;
  auto root = reader.parse(text);
  REQUIRE_MESSAGE(root.ok(), text);
  std::string api, mode, mix;
  int64_t started = 0, ok = 0, errors = 0, by429 = 0, skipped = -1;
  double p50 = -1, wall = -1;
  bool failed = false;
  root->field({"api"}).get(api);
  root->field({"mode"}).get(mode);
  root->field({"mix"}).get(mix);
  root->field({"wall_s"}).get(wall);
  root->field({"skipped_saturated"}).get(skipped);
  root->field({"failed"}).get(failed);
  json::JsonCursor create = root->field({"ops"}).field({"create"});
  create.field({"started"}).get(started);
  create.field({"ok"}).get(ok);
  create.field({"errors"}).get(errors);
  create.field({"errors_by"}).field({"429"}).get(by429);
  create.field({"p50_ms"}).get(p50);
  CHECK(reader.ok());
  CHECK(api == "sbxlet");
  CHECK(mode == "closed");
  CHECK(mix == "create=1");
  CHECK(wall > 0);
  CHECK(skipped == 0);
  CHECK(failed);
  CHECK(started == 10);
  CHECK(ok == 5);
  CHECK(errors == 5);
  CHECK(by429 == 5);
  CHECK(p50 >= 0);
  CHECK(root->field({"create_to_running"}).present());
  CHECK(root->field({"cleanup"}).present());
}
