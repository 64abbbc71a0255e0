#include "orch/StoreWriter.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../TestUtil.h"
#include "orch/SqliteStore.h"

using namespace sbx;
using namespace sbx::orch;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("sbx-storewriter-test") {}
};

// Holds worker threads until the test releases it.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = true;
  std::atomic<int> waiting{0};
  void hold() {
    std::lock_guard<std::mutex> lock(m);
    open = false;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(m);
      open = true;
    }
    cv.notify_all();
  }
  void pass() {
    std::unique_lock<std::mutex> lock(m);
    waiting.fetch_add(1);
    cv.wait(lock, [&] { return open; });
  }
};

// A Store whose apply() records each batch, can be held at a gate, and fails
// every batch holding an id that starts with "fail".
class FakeStore : public Store {
 public:
  Status open() override { return {}; }
  Result<std::vector<StoreDocument>> loadAll(const std::string&) override {
    return std::vector<StoreDocument>{};
  }
  Status apply(const std::vector<StoreChange>& changes) override {
    const int now = active_.fetch_add(1) + 1;
    int seen = maxActive_.load();
    while (now > seen && !maxActive_.compare_exchange_weak(seen, now)) {
    }
    started.fetch_add(1);
    gate.pass();
    Status result;
    {
      std::lock_guard<std::mutex> lock(m_);
      batchSizes_.push_back(changes.size());
      for (const auto& c : changes) {
        applied_.push_back(c.id);
        if (c.id.rfind("fail", 0) == 0) result = Error("injected failure");
      }
    }
    active_.fetch_sub(1);
    return result;
  }

  std::vector<size_t> batchSizes() {
    std::lock_guard<std::mutex> lock(m_);
    return batchSizes_;
  }
  std::vector<std::string> applied() {
    std::lock_guard<std::mutex> lock(m_);
    return applied_;
  }
  int maxActive() const { return maxActive_.load(); }

  Gate gate;
  std::atomic<int> started{0};

 private:
  std::mutex m_;
  std::vector<size_t> batchSizes_;
  std::vector<std::string> applied_;
  std::atomic<int> active_{0};
  std::atomic<int> maxActive_{0};
};

StoreChange put(const std::string& id, const std::string& doc = "{}") {
  return StoreChange::put("sandboxes", id, doc);
}

std::vector<StoreChange> puts(const std::string& prefix, int n) {
  std::vector<StoreChange> out;
  for (int i = 0; i < n; ++i) out.push_back(put(prefix + std::to_string(i)));
  return out;
}

std::string padded(int i) {
  std::string s = std::to_string(i);
  return "sbx-" + std::string(4 - std::min<size_t>(4, s.size()), '0') + s;
}

}  // namespace

TEST_CASE("StoreWriter: 1000 submissions commit durably in a few transactions") {
  TempDir tmp;
  const std::string path = tmp.path + "/orch.db";
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  SqliteStore store(path);
  REQUIRE(store.open().ok());
  StoreWriter writer(loop, pool, store);

  constexpr int kCount = 1000;
  std::vector<int> order;
  int failures = 0;
  // Half at once, half while the first transactions run.
  for (int i = 0; i < kCount / 2; ++i) {
    writer.submit(put(padded(i), "{\"n\":" + std::to_string(i) + "}"), [&, i](Status st) {
      if (!st.ok()) ++failures;
      order.push_back(i);
    });
  }
  CHECK(writer.queued() == kCount / 2);
  loop.runOnce(0ms);  // the end of this turn starts the first transaction
  CHECK(writer.queued() < kCount / 2);
  for (int i = kCount / 2; i < kCount; ++i) {
    writer.submit(put(padded(i), "{\"n\":" + std::to_string(i) + "}"), [&, i](Status st) {
      if (!st.ok()) ++failures;
      order.push_back(i);
    });
  }
  REQUIRE(test::runUntil(loop, [&] { return order.size() == kCount; }));
  CHECK(failures == 0);
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(writer.idle());
  CHECK(writer.queued() == 0);
  MESSAGE("transactions for 1000 submissions: " << writer.transactions());
  CHECK(writer.transactions() >= 2);  // maxBatch 512
  CHECK(writer.transactions() <= 10);

  SqliteStore reader(path);
  REQUIRE(reader.open().ok());
  auto docs = reader.loadAll("sandboxes");
  REQUIRE(docs.ok());
  REQUIRE(docs->size() == kCount);
  for (int i = 0; i < kCount; ++i) {
    CHECK((*docs)[static_cast<size_t>(i)].id == padded(i));
    CHECK((*docs)[static_cast<size_t>(i)].doc == "{\"n\":" + std::to_string(i) + "}");
  }
}

TEST_CASE("StoreWriter: changes apply in submission order") {
  for (size_t maxBatch : {size_t{1}, size_t{512}}) {
    CAPTURE(maxBatch);  // 1: each submission its own transaction; 512: all in one
    TempDir tmp;
    EventLoop loop;
    WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
    SqliteStore store(tmp.path + "/orch.db");
    REQUIRE(store.open().ok());
    StoreWriter writer(loop, pool, store, {.maxBatch = maxBatch});
    int done = 0;
    auto count = [&](Status st) {
      CHECK(st.ok());
      ++done;
    };
    writer.submit(put("x", "v1"), count);
    writer.submit(StoreChange::erase("sandboxes", "x"), count);
    writer.submit(put("y", "v1"), count);
    writer.submit(put("y", "v2"), count);
    writer.submit({StoreChange::erase("sandboxes", "z"), put("z", "v1")}, count);
    REQUIRE(test::runUntil(loop, [&] { return done == 5; }));
    CHECK(writer.transactions() == (maxBatch == 1 ? 5u : 1u));

    auto docs = store.loadAll("sandboxes");
    REQUIRE(docs.ok());
    REQUIRE(docs->size() == 2);
    CHECK((*docs)[0].id == "y");
    CHECK((*docs)[0].doc == "v2");
    CHECK((*docs)[1].id == "z");
  }
}

TEST_CASE("StoreWriter: submissions wait for the running transaction, then go together") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  FakeStore store;
  StoreWriter writer(loop, pool, store);
  store.gate.hold();
  int done = 0;
  writer.submit(put("a"), [&](Status st) {
    CHECK(st.ok());
    ++done;
  });
  REQUIRE(test::runUntil(loop, [&] { return store.started == 1; }));
  for (int i = 0; i < 5; ++i) {
    writer.submit(put("b" + std::to_string(i)), [&](Status st) {
      CHECK(st.ok());
      ++done;
    });
  }
  loop.runOnce(0ms);
  CHECK(writer.queued() == 5);
  CHECK(store.started == 1);  // never two at once
  store.gate.release();
  REQUIRE(test::runUntil(loop, [&] { return done == 6; }));
  CHECK(store.batchSizes() == std::vector<size_t>{1, 5});
  CHECK(writer.transactions() == 2);
  CHECK(store.maxActive() == 1);
}

TEST_CASE("StoreWriter: maxBatch bounds a transaction, a submission is never split") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  FakeStore store;
  StoreWriter writer(loop, pool, store, {.maxBatch = 4});
  int done = 0;
  for (int n : {3, 3, 1, 5, 2}) {
    writer.submit(puts("s" + std::to_string(done) + "-", n), [&](Status st) {
      CHECK(st.ok());
      ++done;
    });
  }
  REQUIRE(test::runUntil(loop, [&] { return done == 5; }));
  CHECK(store.batchSizes() == std::vector<size_t>{3, 4, 5, 2});
  CHECK(store.maxActive() == 1);
}

TEST_CASE("StoreWriter: a failed transaction fails only its own submissions") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  FakeStore store;
  StoreWriter writer(loop, pool, store, {.maxBatch = 2});
  std::vector<std::string> results;
  for (const char* id : {"a", "b", "fail-c", "d", "e", "f"}) {
    writer.submit(put(id), [&, id = std::string(id)](Status st) {
      results.push_back(id + (st.ok() ? ":ok" : ":" + st.message()));
    });
  }
  REQUIRE(test::runUntil(loop, [&] { return results.size() == 6; }));
  CHECK(results == std::vector<std::string>{"a:ok", "b:ok", "fail-c:injected failure",
                                            "d:injected failure", "e:ok", "f:ok"});
  CHECK(store.batchSizes() == std::vector<size_t>{2, 2, 2});
  CHECK(writer.transactions() == 3);

  // The writer carries on after a failure.
  bool later = false;
  writer.submit(put("g"), [&](Status st) { later = st.ok(); });
  REQUIRE(test::runUntil(loop, [&] { return later; }));
}

TEST_CASE("StoreWriter: flush waits for everything submitted before it, only that") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  FakeStore store;
  StoreWriter writer(loop, pool, store);

  // Idle: the callback still runs on a later turn, not inside flush().
  bool idleFlushed = false;
  writer.flush([&] { idleFlushed = true; });
  CHECK_FALSE(idleFlushed);
  REQUIRE(test::runUntil(loop, [&] { return idleFlushed; }));

  std::vector<std::string> events;
  store.gate.hold();
  writer.submit(put("a"), [&](Status) { events.push_back("a"); });
  REQUIRE(test::runUntil(loop, [&] { return store.started == 1; }));
  writer.flush([&] { events.push_back("flush1"); });
  writer.submit(put("b"), [&](Status) { events.push_back("b"); });
  writer.flush([&] { events.push_back("flush2"); });
  for (int i = 0; i < 3; ++i) loop.runOnce(0ms);
  CHECK(events.empty());
  store.gate.release();
  REQUIRE(test::runUntil(loop, [&] { return events.size() == 4; }));
  CHECK(events == std::vector<std::string>{"a", "flush1", "b", "flush2"});
  CHECK(writer.idle());
}

TEST_CASE("StoreWriter: a full pool queue is retried, not failed") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 1, .maxQueued = 1});
  Gate blocker;
  blocker.hold();
  bool blockerDone = false;
  REQUIRE(pool.submit([&] { blocker.pass(); }, [&](WorkerPool::JobStatus) { blockerDone = true; })
              .ok());
  REQUIRE(test::runUntil(loop, [&] { return blocker.waiting == 1; }));
  REQUIRE(pool.submit([] {}, [](WorkerPool::JobStatus) {}).ok());  // the queue is now full
  REQUIRE_FALSE(pool.submit([] {}, [](WorkerPool::JobStatus) {}).ok());

  FakeStore store;
  StoreWriter writer(loop, pool, store);
  bool done = false;
  Status result = Error("not yet");
  writer.submit(put("a"), [&](Status st) {
    result = st;
    done = true;
  });
  // Each turn waits up to 20 ms, so the 10 ms retry timer fires (and is
  // refused again) in most of them.
  for (int i = 0; i < 5; ++i) loop.runOnce(20ms);
  CHECK_FALSE(done);
  CHECK(writer.queued() == 1);
  CHECK_FALSE(writer.idle());

  blocker.release();
  REQUIRE(test::runUntil(loop, [&] { return done; }));
  CHECK(result.ok());
  CHECK(blockerDone);
  CHECK(store.applied() == std::vector<std::string>{"a"});
}

TEST_CASE("StoreWriter: a shut-down pool fails the queued and the later submissions") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 1, .maxQueued = 16});
  FakeStore store;
  StoreWriter writer(loop, pool, store);

  // The only worker is busy, so the writer's job waits in the pool's queue;
  // shutdown() cancels it, and the writer's callback opens the blocker so
  // that shutdown() can join the worker.
  Gate blocker;
  blocker.hold();
  REQUIRE(pool.submit([&] { blocker.pass(); }, [](WorkerPool::JobStatus) {}).ok());
  REQUIRE(test::runUntil(loop, [&] { return blocker.waiting == 1; }));
  std::vector<std::string> errors;
  writer.submit(put("queued"), [&](Status st) {
    errors.push_back(st.ok() ? "ok" : st.message());
    blocker.release();
  });
  loop.runOnce(0ms);  // the job reaches the pool's queue
  CHECK(writer.queued() == 0);
  writer.submit(put("waiting"),
                [&](Status st) { errors.push_back(st.ok() ? "ok" : st.message()); });
  pool.shutdown();
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] == "store transaction cancelled: worker pool is shut down");
  CHECK(errors[1] == "worker pool is shut down");

  bool flushed = false;
  writer.submit(put("after"), [&](Status st) { errors.push_back(st.ok() ? "ok" : st.message()); });
  writer.flush([&] { flushed = true; });
  REQUIRE(test::runUntil(loop, [&] { return flushed; }));
  REQUIRE(errors.size() == 3);
  CHECK(errors[2] == "worker pool is shut down");
  CHECK(writer.idle());
  CHECK(store.applied().empty());
  CHECK(writer.transactions() == 0);
}

TEST_CASE("StoreWriter: destroying the writer with a job in flight is safe") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 1, .maxQueued = 16});
  FakeStore store;
  store.gate.hold();
  int callbacks = 0;
  {
    auto writer = std::make_unique<StoreWriter>(loop, pool, store);
    writer->submit(put("in-flight"), [&](Status) { ++callbacks; });
    REQUIRE(test::runUntil(loop, [&] { return store.started == 1; }));
    writer->submit(put("queued"), [&](Status) { ++callbacks; });
    writer->flush([&] { ++callbacks; });
  }
  store.gate.release();
  // One worker: this job runs after the writer's, so by the time its done
  // arrives the writer's done has been delivered (and ignored) too.
  bool sentinel = false;
  REQUIRE(pool.submit([] {}, [&](WorkerPool::JobStatus) { sentinel = true; }).ok());
  REQUIRE(test::runUntil(loop, [&] { return sentinel; }));
  for (int i = 0; i < 3; ++i) loop.runOnce(0ms);
  CHECK(callbacks == 0);
  // The transaction already on the pool completed; the queued one never ran.
  CHECK(store.applied() == std::vector<std::string>{"in-flight"});
}

TEST_CASE("StoreWriter: a callback may destroy the writer") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  FakeStore store;
  auto writer =
      std::make_unique<StoreWriter>(loop, pool, store, StoreWriter::Options{.maxBatch = 1});
  int callbacks = 0;
  writer->submit(put("a"), [&](Status) {
    ++callbacks;
    writer.reset();
  });
  writer->submit(put("b"), [&](Status) { ++callbacks; });
  writer->flush([&] { ++callbacks; });
  REQUIRE(test::runUntil(loop, [&] { return writer == nullptr; }));
  bool sentinel = false;
  REQUIRE(pool.submit([] {}, [&](WorkerPool::JobStatus) { sentinel = true; }).ok());
  REQUIRE(test::runUntil(loop, [&] { return sentinel; }));
  CHECK(callbacks == 1);
}

TEST_CASE("StoreWriter: a big group commit's callbacks run a slice per loop turn, in order") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  FakeStore store;
  StoreWriter writer(loop, pool, store);
  store.gate.hold();
  writer.submit(put("first"), [](Status) {});
  REQUIRE(test::runUntil(loop, [&] { return store.started == 1; }));
  // 200 submissions queue behind the held transaction and commit together.
  std::vector<int> order;
  std::vector<uint64_t> turnOf;
  for (int i = 0; i < 200; ++i) {
    writer.submit(put("s" + std::to_string(i)), [&, i](Status st) {
      CHECK(st.ok());
      order.push_back(i);
      turnOf.push_back(loop.stats().turns);
    });
  }
  bool flushed = false;
  writer.flush([&] { flushed = true; });
  store.gate.release();
  REQUIRE(test::runUntil(loop, [&] { return order.size() == 200 && flushed; }));
  CHECK(store.batchSizes() == std::vector<size_t>{1, 200});
  for (int i = 0; i < 200; ++i) CHECK(order[i] == i);
  // No turn ran more than kCallbacksPerTurn of them.
  std::map<uint64_t, size_t> perTurn;
  for (uint64_t t : turnOf) ++perTurn[t];
  size_t most = 0;
  for (const auto& [turn, n] : perTurn) most = std::max(most, n);
  CHECK(most <= StoreWriter::kCallbacksPerTurn);
  CHECK(perTurn.size() >= 200 / StoreWriter::kCallbacksPerTurn);
  CHECK(writer.idle());
}
