#pragma once
// LoadGenerator: drives sandbox API load against one sbxlet (SPEC §1) or one
// sandboxd-o (SPEC §2) from an EventLoop, and measures it.
//
// A run has three phases:
//   preload  - creates `preload` sandboxes (waits for running when
//              `waitRunning`) so gets and deletes have targets; a create
//              answered 429 is retried after Retry-After. Not in the op stats.
//   measure  - starts ops picked from the mix, either
//              open loop (`rate`): slot k is due at start + k/rate whatever
//              has completed; a slot that finds `maxInFlight` ops unfinished
//              is skipped and counted "skipped (saturated)";
//              closed loop (`concurrency`): C workers, each starting its next
//              op when the previous one (and its wait) finished.
//              Starting stops when `duration` has passed or `count` ops (in
//              open loop: slots, skipped ones included) were started; the
//              phase ends when every started op has finished.
//   cleanup  - (`cleanup`) deletes every sandbox this run created that may
//              still exist, then polls until each is gone (404). Reported in
//              its own row, not in the op stats.
//
// Targets: get, statuses and delete pick ids this run created and has not
// started deleting (a delete takes its id out of the pool when it starts, so
// no two deletes ever target one id). With an empty pool the op runs as a
// create instead (counted as a create, and in `replacedByCreate`).
//
// `waitRunning`: an accepted create is followed by GET polls every
// `pollInterval` until the sandbox is running (row "create→running", timed
// from sending the POST to the poll that saw it running), failed, or
// `waitTimeout` passed. Polls are not get ops. The create's op counts as
// unfinished (in flight) until its wait ends; only then does its id join the
// pool.
//
// Latency histograms hold successful ops only; errors are counted by HTTP
// status ("429", "500"), "transport" (connect/timeout/protocol failures of
// the client), and for waits "failed" and "timeout".
//
// Loop-thread only. `done` runs once, from the loop at the end of a turn
// (never inside run()); the generator may be destroyed from it or after it.
// Destroying the generator earlier cancels everything in flight (requests
// already sent are not undone).

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/Result.h"
#include "http/HttpClient.h"
#include "load/LatencyHistogram.h"
#include "load/LoadMix.h"
#include "reactor/EventLoop.h"

namespace sbx::json {
class JsonReader;
}  // namespace sbx::json

namespace sbx::load {

enum class LoadApi { Sbxlet, Orch };

// "sbxlet", "orch".
const char* loadApiName(LoadApi api);

struct LoadOptions {
  LoadApi api = LoadApi::Sbxlet;
  std::string host = "127.0.0.1";  // IP literal or "localhost"
  uint16_t port = 0;
  std::string secret;  // sent as "Authorization: Bearer <secret>"

  // Exactly one of rate (open loop, ops/s) and concurrency (closed loop).
  double rate = 0;
  int concurrency = 0;
  // At least one of them; 0 = no limit of that kind.
  Duration duration{0};
  uint64_t count = 0;

  LoadMix mix;
  std::string idPrefix;  // "" = "lg-<pid>-"; ids are <prefix><n>, n from 1
  std::string image = "docker.io/library/busybox:1.36";
  std::vector<std::string> args = {"sleep", "3600"};
  std::string cpu = "10m";
  std::string memory = "16Mi";
  int ports = 0;  // Orch: container ports 8080, 8081, ... per sandbox; sbxlet: must be 0

  bool waitRunning = false;
  Duration waitTimeout = std::chrono::seconds(120);
  Duration pollInterval = std::chrono::milliseconds(50);
  bool cleanup = false;
  Duration timeout = std::chrono::seconds(10);  // per request
  size_t maxInFlight = 4096;
  size_t preload = 0;
  uint64_t seed = 1;  // of the op and target picks: same seed, same sequence
};

// Checks options before a run. Messages name the option:
//   "exactly one of rate and concurrency must be set"
//   "statuses is not part of the sandboxd-o API: remove it from the mix"
Status validateLoadOptions(const LoadOptions& options);

// The figures of one row.
struct LoadOpStats {
  uint64_t started = 0;
  uint64_t ok = 0;
  std::map<std::string, uint64_t> errors;           // "429" → 3, "transport" → 1
  std::map<std::string, std::string> errorSamples;  // the first message per key
  LatencyHistogram latency;                         // successful ones

  uint64_t errorCount() const;
  void merge(const LoadOpStats& other);
};

struct LoadReport {
  // What ran.
  LoadApi api = LoadApi::Sbxlet;
  std::string target;  // "127.0.0.1:8080"
  double rate = 0;
  int concurrency = 0;
  Duration duration{0};
  uint64_t count = 0;
  LoadMix mix;
  bool waitRunning = false;
  bool cleanupRequested = false;
  size_t preloadRequested = 0;

  // The measure phase: from its first op until its last op finished.
  Duration wall{0};
  std::array<LoadOpStats, kLoadOpCount> ops;
  LoadOpStats createToRunning;
  uint64_t skippedSaturated = 0;
  uint64_t replacedByCreate = 0;
  uint64_t polls = 0;   // GETs of waits (running or gone), in every phase
  LoadOpStats preload;  // ok = created (and running when waitRunning)
  LoadOpStats cleanup;  // ok = deleted and seen gone
  // Sandboxes this run created that may still exist at the end.
  uint64_t leftBehind = 0;

  const LoadOpStats& op(LoadOp o) const { return ops[loadOpIndex(o)]; }
  LoadOpStats total() const;  // the ops rows summed
  // Any error in any row (ops, create→running, preload, cleanup).
  bool failed() const;
  // ok / wall in seconds (0 when wall is 0).
  double throughput(const LoadOpStats& row) const;

  // A human table: one row per op in the mix, create→running, total, then
  // skipped, preload, cleanup and one line per error kind with a sample.
  std::string formatTable() const;
  // One JSON object (no newline) with every figure, latencies in ms.
  std::string formatJson() const;
};

class LoadGenerator {
 public:
  // `options` must pass validateLoadOptions() (aborts otherwise).
  LoadGenerator(EventLoop& loop, LoadOptions options);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Starts the run (once). `done` gets the final report.
  void run(std::function<void(const LoadReport&)> done);
  // Stops starting ops (e.g. on SIGINT): ops in flight finish, then cleanup
  // runs as configured. A preload in progress stops issuing creates.
  void stop();

  // The figures so far; final once `done` ran.
  const LoadReport& report() const { return report_; }
  // Measured ops started and not yet finished (with their waits).
  size_t inFlight() const { return inFlight_; }
  const LoadOptions& options() const { return options_; }

 private:
  enum class Phase { Idle, Preload, Measure, Cleanup, Done };
  struct Reply;
  class IdPool;
  // Judges a poll's answer: true when the wait is over (reply.ok tells how,
  // else reply.key/message say why), false to poll again.
  using Poll = std::function<bool(Reply&)>;

  // Requests.
  void send(const char* method, std::string target, std::string body,
            std::function<void(Reply)> cb);
  std::string sandboxesPath() const;
  std::string sandboxPath(const std::string& id) const;
  std::string createBody(const std::string& id) const;
  // Runs `fn` after `delay`; pending ones are cancelled with the generator.
  void after(Duration delay, std::function<void()> fn);

  // Measured ops; `finished` runs once the op (and its wait) is over.
  void startOp(LoadOp op, std::function<void()> finished);
  void startCreate(std::function<void()> finished);
  void startGet(std::function<void()> finished);
  void startList(std::function<void()> finished);
  void startStatuses(std::function<void()> finished);
  void startDelete(std::function<void()> finished);
  void complete(LoadOpStats& row, TimePoint started, const Reply& reply, bool ok);

  // Polls GET `id` every pollInterval until `judge` says it is over, the
  // answer is a transport error, or `deadline` passes ("timeout").
  void pollUntil(const std::string& id, TimePoint deadline, Poll judge,
                 std::function<void(Reply)> done);
  // Until running (ok), failed ("failed") or sentAt + waitTimeout.
  void waitRunning(const std::string& id, TimePoint sentAt, std::function<void(Reply)> done);

  // Phases.
  void startPreload();
  void preloadMore();
  void preloadOne(std::string id, TimePoint firstSent);
  void startMeasure();
  void onTick();
  void workerNext();
  void maybeEndMeasure();
  void startCleanup();
  void cleanupMore();
  void cleanupOne(std::string id);
  void finish();

  void noteError(LoadOpStats& row, const Reply& reply);
  std::string nextId();
  bool timeUp() const;

  EventLoop& loop_;
  LoadOptions options_;
  http::HttpClient http_;
  std::string authHeader_;
  std::mt19937_64 rng_;
  std::unique_ptr<json::JsonReader> reader_;  // for poll answers
  Phase phase_ = Phase::Idle;
  bool stopping_ = false;
  std::function<void(const LoadReport&)> done_;
  LoadReport report_;

  uint64_t idCounter_ = 0;
  std::unique_ptr<IdPool> pool_;
  // Ids whose create was sent and that have not been seen deleted: what
  // cleanup deletes. Ordered so cleanup runs in a stable order.
  std::set<std::string> alive_;
  std::unordered_map<std::string, int> reading_;  // ids with GETs in flight

  // Measure phase.
  TimePoint measureStart_;
  uint64_t slots_ = 0;  // open loop: slots handled; closed loop: ops started
  bool schedulingDone_ = false;
  size_t inFlight_ = 0;
  int activeWorkers_ = 0;
  Timer tick_;

  // Preload and cleanup: bounded parallel queues.
  size_t bulkActive_ = 0;
  size_t preloadIssued_ = 0;
  std::vector<std::string> cleanupQueue_;

  uint64_t timerSerial_ = 0;
  std::unordered_map<uint64_t, Timer> timers_;
  // Dies with the generator: a deferred `done` checks it is still there.
  std::shared_ptr<bool> lifeToken_ = std::make_shared<bool>(true);
};

}  // namespace sbx::load
