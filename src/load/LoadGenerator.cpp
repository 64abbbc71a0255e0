#include "load/LoadGenerator.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/Quantity.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"

namespace sbx::load {

namespace {

// Preload and cleanup run at most this many sandboxes at a time (and never
// more than maxInFlight): enough to be quick, few enough not to turn setup
// into a load test of its own.
constexpr size_t kBulkParallel = 64;
// The sbxlet's statuses endpoint takes at most 200 ids; its list clamps to 200.
constexpr size_t kMaxStatusIds = 200;
// A preload create answered 429 without a usable Retry-After waits this long.
constexpr auto kDefaultRetryAfter = std::chrono::seconds(1);
constexpr size_t kMaxSampleBytes = 300;

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// Microseconds as milliseconds with two decimals.
double millis2(int64_t micros) { return std::round(static_cast<double>(micros) / 10.0) / 100.0; }

bool validIdPrefix(const std::string& p) {
  if (p.empty() || p.size() > 100) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(p[0])) return false;
  return std::all_of(p.begin(), p.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// The "error" member of a JSON error body, else the body itself (cut short).
std::string errorText(const std::string& body) {
  json::JsonReader reader;
  auto root = reader.parse(body);
  std::string message;
  if (root.ok() && root->field({"error"}).get(message) && !message.empty()) return message;
  std::string text = body.substr(0, kMaxSampleBytes);
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text.empty() ? "(empty body)" : text;
}

// Keep-alive connections worth keeping: one per worker, or one per op that
// may be in flight.
http::HttpClient::Options clientOptions(const LoadOptions& o) {
  http::HttpClient::Options c;
  c.maxIdlePerHost = o.concurrency > 0 ? static_cast<size_t>(o.concurrency) : o.maxInFlight;
  return c;
}

}  // namespace

const char* loadApiName(LoadApi api) { return api == LoadApi::Sbxlet ? "sbxlet" : "orch"; }

Status validateLoadOptions(const LoadOptions& o) {
  if (o.host.empty()) return Error("host is required");
  if (o.port == 0) return Error("port must be 1-65535");
  if (o.secret.empty()) return Error("secret is required (both daemons want a bearer token)");
  const bool open = o.rate > 0, closed = o.concurrency > 0;
  if (o.rate < 0 || !std::isfinite(o.rate)) return Error("rate must be a number > 0");
  if (o.concurrency < 0) return Error("concurrency must be >= 1");
  if (open == closed) return Error("exactly one of rate and concurrency must be set");
  if (o.rate > 1e6) return Error("rate must be at most 1000000 ops/s");
  if (o.duration < Duration::zero()) return Error("duration must not be negative");
  if (o.duration == Duration::zero() && o.count == 0) {
    return Error("a duration or a count is required (or both)");
  }
  if (o.mix.total() == 0) return Error("mix has no operation with a weight above 0");
  if (o.api == LoadApi::Orch && o.mix.includes(LoadOp::Statuses)) {
    return Error("statuses is not part of the sandboxd-o API: remove it from the mix");
  }
  if (!o.idPrefix.empty() && !validIdPrefix(o.idPrefix)) {
    return Error("id prefix \"" + o.idPrefix +
                 "\" must start with a letter or digit, hold only letters, digits, '_', '.', '-'"
                 " and be at most 100 characters");
  }
  if (o.image.empty()) return Error("image is required");
  if (auto cpu = parseCpuMillis(o.cpu); !cpu.ok()) return Error("cpu: " + cpu.message());
  if (auto mem = parseMemoryBytes(o.memory); !mem.ok()) return Error("memory: " + mem.message());
  if (o.ports < 0 || o.ports > 100) return Error("ports must be 0-100");
  if (o.ports > 0 && o.api == LoadApi::Sbxlet) {
    return Error(
        "ports apply to the sandboxd-o API only (sbxlet wants host ports chosen by the caller)");
  }
  if (o.waitTimeout <= Duration::zero()) return Error("wait timeout must be > 0");
  if (o.pollInterval <= Duration::zero()) return Error("poll interval must be > 0");
  if (o.timeout <= Duration::zero()) return Error("timeout must be > 0");
  if (o.maxInFlight == 0) return Error("max in flight must be >= 1");
  return Status();
}

// ---- report ----

uint64_t LoadOpStats::errorCount() const {
  uint64_t n = 0;
  for (const auto& [key, count] : errors) n += count;
  return n;
}

void LoadOpStats::merge(const LoadOpStats& other) {
  started += other.started;
  ok += other.ok;
  for (const auto& [key, count] : other.errors) errors[key] += count;
  for (const auto& [key, text] : other.errorSamples) errorSamples.emplace(key, text);
  latency.merge(other.latency);
}

LoadOpStats LoadReport::total() const {
  LoadOpStats sum;
  for (const auto& row : ops) sum.merge(row);
  return sum;
}

bool LoadReport::failed() const {
  for (const auto& row : ops) {
    if (row.errorCount()) return true;
  }
  return createToRunning.errorCount() || preload.errorCount() || cleanup.errorCount();
}

double LoadReport::throughput(const LoadOpStats& row) const {
  const double s = seconds(wall);
  return s > 0 ? static_cast<double>(row.ok) / s : 0.0;
}

namespace {

// Pads to `width` terminal columns (UTF-8: continuation bytes take none).
std::string padRight(const std::string& s, size_t width) {
  size_t cols = 0;
  for (unsigned char c : s) cols += (c & 0xC0) != 0x80;
  return cols >= width ? s + " " : s + std::string(width - cols, ' ');
}

std::string tableRow(const std::string& name, const LoadOpStats& row, double okPerSec) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%9llu %9llu %9llu %10.2f",
                static_cast<unsigned long long>(row.started),
                static_cast<unsigned long long>(row.ok),
                static_cast<unsigned long long>(row.errorCount()), okPerSec);
  std::string out = padRight(name, 16) + buf;
  const LatencyHistogram& h = row.latency;
  for (int64_t micros : {h.percentile(50), h.percentile(90), h.percentile(99), h.max()}) {
    if (h.count() == 0) {
      std::snprintf(buf, sizeof buf, " %9s", "-");  // no success, no latency
    } else {
      std::snprintf(buf, sizeof buf, " %9.2f", millis2(micros));
    }
    out += buf;
  }
  return out + "\n";
}

// okPerSec < 0: not written (preload and cleanup have no wall time of their own).
void writeRow(json::JsonWriter& w, const LoadOpStats& row, double okPerSec) {
  const LatencyHistogram& h = row.latency;
  w.beginObject()
      .kv("started", row.started)
      .kv("ok", row.ok)
      .kv("errors", row.errorCount())
      .key("errors_by")
      .beginObject();
  for (const auto& [key, count] : row.errors) w.kv(key, count);
  w.endObject();
  if (okPerSec >= 0) w.kv("ok_per_s", std::round(okPerSec * 100) / 100);
  w.kv("p50_ms", millis2(h.percentile(50)))
      .kv("p90_ms", millis2(h.percentile(90)))
      .kv("p99_ms", millis2(h.percentile(99)))
      .kv("max_ms", millis2(h.max()))
      .kv("mean_ms", std::round(h.mean() / 10.0) / 100.0)
      .endObject();
}

std::string describeRun(const LoadReport& r) {
  std::string s = std::string(loadApiName(r.api)) + " " + r.target + ", ";
  char buf[64];
  if (r.rate > 0) {
    std::snprintf(buf, sizeof buf, "open loop at %g ops/s", r.rate);
    s += buf;
  } else {
    s += "closed loop, " + std::to_string(r.concurrency) + " workers";
  }
  if (r.duration > Duration::zero()) s += ", for " + formatDuration(r.duration);
  if (r.count > 0) s += ", at most " + std::to_string(r.count) + " ops";
  s += ", mix " + r.mix.toString();
  if (r.waitRunning) s += ", wait for running";
  return s;
}

}  // namespace

std::string LoadReport::formatTable() const {
  std::string out = "loadgen: " + describeRun(*this) + "\n";
  char buf[160];
  std::snprintf(buf, sizeof buf, "measured for %.2f s\n\n", seconds(wall));
  out += buf;
  out += padRight("op", 16) +
         "  started        ok    errors       ok/s    p50 ms    p90 ms    p99 ms    max ms\n";
  for (size_t i = 0; i < kLoadOpCount; ++i) {
    const LoadOpStats& row = ops[i];
    if (!mix.includes(static_cast<LoadOp>(i)) && row.started == 0) continue;
    out += tableRow(loadOpName(static_cast<LoadOp>(i)), row, throughput(row));
  }
  const LoadOpStats sum = total();
  out += tableRow("total", sum, throughput(sum));
  if (waitRunning) out += tableRow("create→running", createToRunning, throughput(createToRunning));
  out += "\n";
  if (rate > 0) out += "skipped (saturated): " + std::to_string(skippedSaturated) + "\n";
  if (replacedByCreate) {
    out += "replaced by create (no sandbox to target): " + std::to_string(replacedByCreate) + "\n";
  }
  auto phaseLine = [&](const char* name, const LoadOpStats& row, const char* okWord) {
    std::snprintf(
        buf, sizeof buf, "%s: %llu started, %llu %s, %llu errors, p50 %.2f ms, max %.2f ms\n", name,
        static_cast<unsigned long long>(row.started), static_cast<unsigned long long>(row.ok),
        okWord, static_cast<unsigned long long>(row.errorCount()),
        millis2(row.latency.percentile(50)), millis2(row.latency.max()));
    out += buf;
  };
  if (preloadRequested) phaseLine("preload", preload, waitRunning ? "running" : "created");
  if (cleanupRequested) phaseLine("cleanup", cleanup, "gone");
  if (leftBehind) {
    out +=
        "left behind: " + std::to_string(leftBehind) + " sandboxes of this run may still exist\n";
  }
  std::string errorLines;
  auto addErrors = [&](const std::string& name, const LoadOpStats& row) {
    for (const auto& [key, count] : row.errors) {
      auto sample = row.errorSamples.find(key);
      errorLines += "  " + name + " " + key + " x" + std::to_string(count);
      if (sample != row.errorSamples.end()) errorLines += ": " + sample->second;
      errorLines += "\n";
    }
  };
  for (size_t i = 0; i < kLoadOpCount; ++i) addErrors(loadOpName(static_cast<LoadOp>(i)), ops[i]);
  addErrors("create→running", createToRunning);
  addErrors("preload", preload);
  addErrors("cleanup", cleanup);
  if (!errorLines.empty()) out += "errors:\n" + errorLines;
  return out;
}

std::string LoadReport::formatJson() const {
  json::JsonWriter w(2048);
  w.beginObject()
      .kv("api", loadApiName(api))
      .kv("target", target)
      .kv("mode", rate > 0 ? "open" : "closed")
      .kv("rate", rate)
      .kv("concurrency", concurrency)
      .kv("duration_s", seconds(duration))
      .kv("count", count)
      .kv("mix", mix.toString())
      .kv("wait_running", waitRunning)
      .kv("wall_s", std::round(seconds(wall) * 1e6) / 1e6)
      .key("ops")
      .beginObject();
  for (size_t i = 0; i < kLoadOpCount; ++i) {
    w.key(loadOpName(static_cast<LoadOp>(i)));
    writeRow(w, ops[i], throughput(ops[i]));
  }
  w.endObject();
  const LoadOpStats sum = total();
  w.key("total");
  writeRow(w, sum, throughput(sum));
  w.key("create_to_running");
  writeRow(w, createToRunning, throughput(createToRunning));
  w.kv("skipped_saturated", skippedSaturated)
      .kv("replaced_by_create", replacedByCreate)
      .kv("polls", polls)
      .kv("preload_requested", preloadRequested)
      .kv("cleanup_requested", cleanupRequested);
  w.key("preload");
  writeRow(w, preload, -1);
  w.key("cleanup");
  writeRow(w, cleanup, -1);
  w.kv("left_behind", leftBehind).kv("failed", failed()).endObject();
  return w.take();
}

// ---- the generator ----

// One answer, or why there was none.
struct LoadGenerator::Reply {
  bool ok = false;
  int status = 0;       // 0: no HTTP answer
  std::string key;      // error key when !ok: "429", "transport", "timeout", "failed"
  std::string message;  // error message when !ok ("" = take it from body)
  std::string body;
  Duration retryAfter{0};
};

// The ids this run created and has not started deleting: O(1) add, random
// pick and removal.
class LoadGenerator::IdPool {
 public:
  bool empty() const { return ids_.empty(); }
  size_t size() const { return ids_.size(); }
  void add(const std::string& id) {
    if (index_.count(id)) return;
    index_.emplace(id, ids_.size());
    ids_.push_back(id);
  }
  const std::string& pick(std::mt19937_64& rng) const { return ids_[rng() % ids_.size()]; }
  std::string take(std::mt19937_64& rng) {
    const size_t i = rng() % ids_.size();
    std::string id = std::move(ids_[i]);
    index_.erase(id);
    if (i + 1 != ids_.size()) {
      ids_[i] = std::move(ids_.back());
      index_[ids_[i]] = i;
    }
    ids_.pop_back();
    return id;
  }
  // Up to `n` ids, a run of them from a random start (wrapping).
  std::vector<std::string> window(size_t n, std::mt19937_64& rng) const {
    if (ids_.size() <= n) return ids_;
    std::vector<std::string> out;
    out.reserve(n);
    const size_t start = rng() % ids_.size();
    for (size_t k = 0; k < n; ++k) out.push_back(ids_[(start + k) % ids_.size()]);
    return out;
  }

 private:
  std::vector<std::string> ids_;
  std::unordered_map<std::string, size_t> index_;
};

LoadGenerator::LoadGenerator(EventLoop& loop, LoadOptions options)
    : loop_(loop),
      options_(std::move(options)),
      http_(loop, clientOptions(options_)),
      authHeader_("Bearer " + options_.secret),
      rng_(options_.seed),
      reader_(std::make_unique<json::JsonReader>()),
      pool_(std::make_unique<IdPool>()) {
  if (Status st = validateLoadOptions(options_); !st.ok()) {
    std::fprintf(stderr, "LoadGenerator: invalid options: %s\n", st.message().c_str());
    std::abort();
  }
  if (options_.idPrefix.empty()) options_.idPrefix = "lg-" + std::to_string(::getpid()) + "-";
  report_.api = options_.api;
  report_.target =
      (options_.host.find(':') != std::string::npos ? "[" + options_.host + "]" : options_.host) +
      ":" + std::to_string(options_.port);
  report_.rate = options_.rate;
  report_.concurrency = options_.concurrency;
  report_.duration = options_.duration;
  report_.count = options_.count;
  report_.mix = options_.mix;
  report_.waitRunning = options_.waitRunning;
  report_.cleanupRequested = options_.cleanup;
  report_.preloadRequested = options_.preload;
}

LoadGenerator::~LoadGenerator() = default;

void LoadGenerator::run(std::function<void(const LoadReport&)> done) {
  loop_.assertInLoopThread();
  assert(phase_ == Phase::Idle);
  done_ = std::move(done);
  startPreload();
}

void LoadGenerator::stop() {
  loop_.assertInLoopThread();
  stopping_ = true;
  if (phase_ == Phase::Measure && options_.rate > 0 && !schedulingDone_) {
    tick_.cancel();
    schedulingDone_ = true;
    maybeEndMeasure();
  }
  // Closed-loop workers and the preload queue check stopping_ before their
  // next op.
}

// ---- requests ----

void LoadGenerator::send(const char* method, std::string target, std::string body,
                         std::function<void(Reply)> cb) {
  http::HttpClientRequest req;
  req.method = method;
  req.host = options_.host;
  req.port = options_.port;
  req.target = std::move(target);
  req.headers.add("Authorization", authHeader_);
  if (!body.empty()) {
    req.headers.add("Content-Type", "application/json");
    req.body = std::move(body);
  }
  req.timeout = options_.timeout;
  req.connectTimeout = std::min(options_.timeout, Duration(std::chrono::seconds(3)));
  http_.request(std::move(req), [cb = std::move(cb)](Result<http::HttpClientResponse> r) {
    Reply reply;
    if (!r.ok()) {
      reply.key = "transport";
      reply.message = r.message();
    } else {
      reply.status = r->status;
      reply.body = std::move(r->body);
      if (const std::string* ra = r->headers.find("Retry-After")) {
        const int s = std::atoi(ra->c_str());
        if (s > 0 && s < 3600) reply.retryAfter = std::chrono::seconds(s);
      }
    }
    cb(std::move(reply));
  });
}

std::string LoadGenerator::sandboxesPath() const {
  return options_.api == LoadApi::Sbxlet ? "/v1/sandboxes" : "/api/v1/sandboxes";
}

std::string LoadGenerator::sandboxPath(const std::string& id) const {
  // Ids are [A-Za-z0-9_.-] (validated prefix + digits): nothing to escape.
  return sandboxesPath() + "/" + id;
}

std::string LoadGenerator::createBody(const std::string& id) const {
  json::JsonWriter w(512);
  w.beginObject().kv("id", id);
  if (options_.api == LoadApi::Orch) w.key("spec").beginObject();
  w.key("containers").beginArray().beginObject().kv("name", "main").kv("image", options_.image);
  w.key("args").beginArray();
  for (const auto& a : options_.args) w.value(a);
  w.endArray();
  w.key("resource").beginObject().kv("cpu", options_.cpu).kv("memory", options_.memory).endObject();
  w.endObject().endArray();
  if (options_.api == LoadApi::Orch) {
    w.key("ports").beginArray();
    for (int i = 0; i < options_.ports; ++i) {
      w.beginObject().kv("container_port", 8080 + i).kv("protocol", "tcp").endObject();
    }
    w.endArray().endObject();
  }
  w.endObject();
  return w.take();
}

void LoadGenerator::after(Duration delay, std::function<void()> fn) {
  const uint64_t key = ++timerSerial_;
  // Erasing the handle inside its own callback is safe: the loop moved the
  // closure out of the timer before running it.
  timers_.emplace(key, loop_.runAfter(delay, [this, key, fn = std::move(fn)] {
    timers_.erase(key);
    fn();
  }));
}

void LoadGenerator::noteError(LoadOpStats& row, const Reply& reply) {
  std::string key = reply.key.empty() ? std::to_string(reply.status) : reply.key;
  ++row.errors[key];
  if (!row.errorSamples.count(key)) {
    std::string text = reply.message.empty() ? errorText(reply.body) : reply.message;
    if (text.size() > kMaxSampleBytes) text.resize(kMaxSampleBytes);
    row.errorSamples.emplace(std::move(key), std::move(text));
  }
}

void LoadGenerator::complete(LoadOpStats& row, TimePoint started, const Reply& reply, bool ok) {
  if (ok) {
    ++row.ok;
    row.latency.record(loop_.now() - started);
  } else {
    noteError(row, reply);
  }
}

std::string LoadGenerator::nextId() { return options_.idPrefix + std::to_string(++idCounter_); }

bool LoadGenerator::timeUp() const {
  return options_.duration > Duration::zero() && loop_.now() - measureStart_ >= options_.duration;
}

namespace {

bool createAccepted(LoadApi api, int status) {
  return api == LoadApi::Sbxlet ? status == 202 : (status >= 200 && status <= 202);
}

bool deleteAccepted(LoadApi api, int status) {
  return status == 200 || (api == LoadApi::Orch && status == 202);
}

}  // namespace

// ---- waits ----

void LoadGenerator::pollUntil(const std::string& id, TimePoint deadline, Poll judge,
                              std::function<void(Reply)> done) {
  after(options_.pollInterval, [this, id, deadline, judge = std::move(judge),
                                done = std::move(done)]() mutable {
    ++report_.polls;
    send("GET", sandboxPath(id), "",
         [this, id, deadline, judge = std::move(judge), done = std::move(done)](Reply r) mutable {
           if (r.status == 0 || judge(r)) {
             done(std::move(r));
             return;
           }
           if (loop_.now() + options_.pollInterval > deadline) {
             Reply t;
             t.key = "timeout";
             t.message = "gave up on " + id + " after " + formatDuration(options_.waitTimeout);
             done(std::move(t));
             return;
           }
           pollUntil(id, deadline, std::move(judge), std::move(done));
         });
  });
}

void LoadGenerator::waitRunning(const std::string& id, TimePoint sentAt,
                                std::function<void(Reply)> done) {
  pollUntil(
      id, sentAt + options_.waitTimeout,
      [this, id](Reply& r) {
        if (r.status != 200) return true;  // !ok: keyed by status
        auto root = reader_->parse(r.body);
        if (!root.ok()) {
          r.key = "failed";
          r.message = id + ": " + root.message();
          return true;
        }
        json::JsonCursor sandbox = root->field({"sandbox"});
        std::string phase, why;
        if (options_.api == LoadApi::Sbxlet) {
          sandbox.field({"phase"}).get(phase);
          sandbox.field({"error"}).get(why);
          if (phase == "running") {
            r.ok = true;
            return true;
          }
          if (phase != "error" && phase != "deleted") return false;
        } else {
          json::JsonCursor status = sandbox.field({"status"});
          status.field({"phase"}).get(phase);
          status.field({"message"}).get(why);
          if (phase == "Running") {
            r.ok = true;
            return true;
          }
          if (phase != "Failed" && phase != "Expired") return false;
        }
        r.key = "failed";
        r.message = id + ": phase " + phase + (why.empty() ? "" : ": " + why);
        return true;
      },
      std::move(done));
}

// ---- measured ops ----

void LoadGenerator::startOp(LoadOp op, std::function<void()> finished) {
  if ((op == LoadOp::Get || op == LoadOp::Statuses || op == LoadOp::Delete) && pool_->empty()) {
    op = LoadOp::Create;
    ++report_.replacedByCreate;
  }
  ++report_.ops[loadOpIndex(op)].started;
  switch (op) {
    case LoadOp::Create:
      return startCreate(std::move(finished));
    case LoadOp::Get:
      return startGet(std::move(finished));
    case LoadOp::List:
      return startList(std::move(finished));
    case LoadOp::Statuses:
      return startStatuses(std::move(finished));
    case LoadOp::Delete:
      return startDelete(std::move(finished));
  }
}

void LoadGenerator::startCreate(std::function<void()> finished) {
  std::string id = nextId();
  alive_.insert(id);
  const TimePoint t0 = loop_.now();
  send("POST", sandboxesPath(), createBody(id),
       [this, id, t0, finished = std::move(finished)](Reply r) mutable {
         LoadOpStats& row = report_.ops[loadOpIndex(LoadOp::Create)];
         const bool ok = createAccepted(options_.api, r.status);
         complete(row, t0, r, ok);
         if (!ok) {
           // A refusal created nothing; after a 5xx or no answer it may exist.
           if (r.status >= 400 && r.status < 500) alive_.erase(id);
           finished();
           return;
         }
         if (!options_.waitRunning) {
           pool_->add(id);
           finished();
           return;
         }
         ++report_.createToRunning.started;
         waitRunning(id, t0, [this, id, t0, finished = std::move(finished)](Reply w) {
           complete(report_.createToRunning, t0, w, w.ok);
           pool_->add(id);
           finished();
         });
       });
}

void LoadGenerator::startGet(std::function<void()> finished) {
  const TimePoint t0 = loop_.now();
  // Held while the GET is out: a delete never picks it meanwhile, or the GET
  // (on another connection) could arrive after it and get a true 404.
  std::string id = pool_->pick(rng_);
  ++reading_[id];
  send("GET", sandboxPath(id), "", [this, id, t0, finished = std::move(finished)](Reply r) {
    if (auto it = reading_.find(id); it != reading_.end() && --it->second == 0) reading_.erase(it);
    complete(report_.ops[loadOpIndex(LoadOp::Get)], t0, r, r.status == 200);
    finished();
  });
}

void LoadGenerator::startList(std::function<void()> finished) {
  const TimePoint t0 = loop_.now();
  std::string target = sandboxesPath();
  if (options_.api == LoadApi::Sbxlet) target += "?limit=" + std::to_string(kMaxStatusIds);
  send("GET", std::move(target), "", [this, t0, finished = std::move(finished)](Reply r) {
    complete(report_.ops[loadOpIndex(LoadOp::List)], t0, r, r.status == 200);
    finished();
  });
}

void LoadGenerator::startStatuses(std::function<void()> finished) {
  json::JsonWriter w(4096);
  w.beginObject().key("ids").beginArray();
  for (const auto& id : pool_->window(kMaxStatusIds, rng_)) w.value(id);
  w.endArray().endObject();
  const TimePoint t0 = loop_.now();
  send("POST", sandboxesPath() + "/statuses", w.take(),
       [this, t0, finished = std::move(finished)](Reply r) {
         complete(report_.ops[loadOpIndex(LoadOp::Statuses)], t0, r, r.status == 200);
         finished();
       });
}

void LoadGenerator::startDelete(std::function<void()> finished) {
  // An id no GET of ours is reading (a few tries; the pool is much larger
  // than the GETs in flight unless it is nearly empty).
  std::string id = pool_->take(rng_);
  for (int tries = 0; reading_.count(id) && tries < 16; ++tries) {
    std::string other = pool_->empty() ? std::string() : pool_->take(rng_);
    pool_->add(id);
    if (other.empty()) break;
    id = std::move(other);
  }
  if (reading_.count(id)) {
    // Everything left is being read: this slot reads too.
    pool_->add(id);
    --report_.ops[loadOpIndex(LoadOp::Delete)].started;
    ++report_.ops[loadOpIndex(LoadOp::Get)].started;
    return startGet(std::move(finished));
  }
  const TimePoint t0 = loop_.now();
  send("DELETE", sandboxPath(id), "", [this, id, t0, finished = std::move(finished)](Reply r) {
    const bool ok = deleteAccepted(options_.api, r.status);
    complete(report_.ops[loadOpIndex(LoadOp::Delete)], t0, r, ok);
    // A failed delete leaves the sandbox to cleanup, not to the pool:
    // it may be half deleted.
    if (ok) alive_.erase(id);
    finished();
  });
}

// ---- phases ----

void LoadGenerator::startPreload() {
  phase_ = Phase::Preload;
  preloadMore();
}

void LoadGenerator::preloadMore() {
  const size_t parallel = std::min(kBulkParallel, options_.maxInFlight);
  while (!stopping_ && bulkActive_ < parallel && preloadIssued_ < options_.preload) {
    ++preloadIssued_;
    ++bulkActive_;
    ++report_.preload.started;
    preloadOne(nextId(), loop_.now());
  }
  if (bulkActive_ == 0) startMeasure();
}

void LoadGenerator::preloadOne(std::string id, TimePoint firstSent) {
  alive_.insert(id);
  send("POST", sandboxesPath(), createBody(id), [this, id, firstSent](Reply r) {
    LoadOpStats& row = report_.preload;
    if (r.status == 429 && !stopping_ &&
        loop_.now() + kDefaultRetryAfter < firstSent + options_.waitTimeout) {
      // Setup is not measured: wait for the control plane's rate limit.
      alive_.erase(id);
      const Duration wait = r.retryAfter > Duration::zero() ? r.retryAfter : kDefaultRetryAfter;
      after(wait, [this, id, firstSent] { preloadOne(id, firstSent); });
      return;
    }
    if (!createAccepted(options_.api, r.status)) {
      if (r.status >= 400 && r.status < 500) alive_.erase(id);
      noteError(row, r);
      --bulkActive_;
      preloadMore();
      return;
    }
    if (!options_.waitRunning) {
      pool_->add(id);
      complete(row, firstSent, r, true);
      --bulkActive_;
      preloadMore();
      return;
    }
    waitRunning(id, firstSent, [this, id, firstSent](Reply w) {
      pool_->add(id);
      complete(report_.preload, firstSent, w, w.ok);
      --bulkActive_;
      preloadMore();
    });
  });
}

void LoadGenerator::startMeasure() {
  phase_ = Phase::Measure;
  measureStart_ = loop_.now();
  if (stopping_) {
    schedulingDone_ = true;
    maybeEndMeasure();
    return;
  }
  if (options_.rate > 0) {
    onTick();
    return;
  }
  activeWorkers_ = options_.concurrency;
  for (int i = 0; i < options_.concurrency; ++i) workerNext();
}

void LoadGenerator::onTick() {
  const TimePoint now = loop_.now();
  const double nanosPerSlot = 1e9 / options_.rate;
  while (!stopping_) {
    if (options_.count && slots_ >= options_.count) break;
    const Duration offset(std::llround(static_cast<double>(slots_) * nanosPerSlot));
    if (options_.duration > Duration::zero() && offset >= options_.duration) break;
    if (measureStart_ + offset > now) {
      // Re-arming from inside the tick's own callback is safe (the fired
      // timer's handle is replaced, its closure already moved out).
      tick_ = loop_.runAt(measureStart_ + offset, [this] { onTick(); });
      return;
    }
    // Due (or overdue after a slow turn: catch up, the schedule is open loop).
    ++slots_;
    if (inFlight_ >= options_.maxInFlight) {
      ++report_.skippedSaturated;
      continue;
    }
    ++inFlight_;
    startOp(options_.mix.pick(rng_()), [this] {
      --inFlight_;
      maybeEndMeasure();
    });
  }
  schedulingDone_ = true;
  maybeEndMeasure();
}

void LoadGenerator::workerNext() {
  if (stopping_ || timeUp() || (options_.count && slots_ >= options_.count)) {
    if (--activeWorkers_ == 0) {
      schedulingDone_ = true;
      maybeEndMeasure();
    }
    return;
  }
  ++slots_;
  ++inFlight_;
  startOp(options_.mix.pick(rng_()), [this] {
    --inFlight_;
    workerNext();
  });
}

void LoadGenerator::maybeEndMeasure() {
  if (phase_ != Phase::Measure || !schedulingDone_ || inFlight_ != 0) return;
  report_.wall = loop_.now() - measureStart_;
  startCleanup();
}

void LoadGenerator::startCleanup() {
  phase_ = Phase::Cleanup;
  if (!options_.cleanup) {
    finish();
    return;
  }
  // Popped from the back: ascending id order.
  cleanupQueue_.assign(alive_.rbegin(), alive_.rend());
  cleanupMore();
}

void LoadGenerator::cleanupMore() {
  const size_t parallel = std::min(kBulkParallel, options_.maxInFlight);
  while (bulkActive_ < parallel && !cleanupQueue_.empty()) {
    std::string id = std::move(cleanupQueue_.back());
    cleanupQueue_.pop_back();
    ++bulkActive_;
    cleanupOne(std::move(id));
  }
  if (bulkActive_ == 0) finish();
}

void LoadGenerator::cleanupOne(std::string id) {
  ++report_.cleanup.started;
  const TimePoint t0 = loop_.now();
  send("DELETE", sandboxPath(id), "", [this, id, t0](Reply r) {
    // 404: it never existed (a create without an answer) or is gone already.
    if (!deleteAccepted(options_.api, r.status) && r.status != 404) {
      noteError(report_.cleanup, r);
      --bulkActive_;
      cleanupMore();
      return;
    }
    pollUntil(
        id, t0 + options_.waitTimeout,
        [](Reply& g) {
          if (g.status == 404) {
            g.ok = true;
            return true;
          }
          return g.status != 200;  // 200: still there, poll again
        },
        [this, id, t0](Reply g) {
          complete(report_.cleanup, t0, g, g.ok);
          if (g.ok) alive_.erase(id);
          --bulkActive_;
          cleanupMore();
        });
  });
}

void LoadGenerator::finish() {
  phase_ = Phase::Done;
  report_.leftBehind = alive_.size();
  // At the end of the turn, outside any HttpClient or timer callback, so
  // `done` may destroy the generator.
  std::weak_ptr<bool> life = lifeToken_;
  loop_.defer([this, life] {
    if (life.expired() || !done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    const LoadReport report = report_;  // `done` may destroy the generator
    done(report);
  });
}

}  // namespace sbx::load
