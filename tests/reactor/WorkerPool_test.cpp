#include "reactor/WorkerPool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "../TestUtil.h"

using namespace sbx;
using namespace std::chrono_literals;

namespace {
// A gate the test opens to let blocked jobs finish.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> waiting{0};
  void wait() {
    std::unique_lock<std::mutex> lock(m);
    waiting.fetch_add(1);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(m);
      open = true;
    }
    cv.notify_all();
  }
};
}  // namespace

TEST_CASE("WorkerPool completes jobs off the loop thread and delivers done on it") {
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 3, .maxQueued = 1000});
  const auto loopThread = std::this_thread::get_id();
  std::mutex m;
  std::set<std::thread::id> workerThreads;
  int done = 0;
  int sum = 0;
  for (int i = 0; i < 500; ++i) {
    auto r = pool.call(
        [&, i] {
          CHECK(std::this_thread::get_id() != loopThread);
          std::lock_guard<std::mutex> lock(m);
          workerThreads.insert(std::this_thread::get_id());
          return i;
        },
        [&](std::optional<int> v) {
          loop.assertInLoopThread();
          REQUIRE(v.has_value());
          sum += *v;
          ++done;
        });
    REQUIRE(r.ok());
  }
  CHECK(test::runUntil(loop, [&] { return done == 500; }));
  CHECK(sum == 499 * 500 / 2);
  CHECK(workerThreads.size() >= 1);
  CHECK(workerThreads.size() <= 3);
}

TEST_CASE("WorkerPool pushes back when the queue is full") {
  EventLoop loop;
  Gate gate;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 4});
  int done = 0;
  auto blocker = [&] { gate.wait(); };
  auto count = [&](WorkerPool::JobStatus) { ++done; };
  // Two jobs occupy both workers; wait until they are running.
  REQUIRE(pool.submit(blocker, count).ok());
  REQUIRE(pool.submit(blocker, count).ok());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (gate.waiting.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(gate.waiting.load() == 2);
  for (int i = 0; i < 4; ++i) REQUIRE(pool.submit(blocker, count).ok());
  auto full = pool.submit(blocker, count);
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().code == 503);
  CHECK(full.message() == "worker queue full (4 jobs)");
  CHECK(pool.queued() == 4);
  gate.release();
  CHECK(test::runUntil(loop, [&] { return done == 6; }));
  CHECK(pool.submit(blocker, count).ok());  // room again
  CHECK(test::runUntil(loop, [&] { return done == 7; }));
}

TEST_CASE("WorkerPool cancels queued jobs: cancel() and shutdown()") {
  EventLoop loop;
  Gate gate;
  int ran = 0;
  int doneOk = 0, cancelled = 0;
  auto onDone = [&](WorkerPool::JobStatus s) {
    loop.assertInLoopThread();
    if (s == WorkerPool::JobStatus::Done) ++doneOk; else ++cancelled;
  };
  {
    WorkerPool pool(loop, {.threads = 1, .maxQueued = 100});
    REQUIRE(pool.submit([&] { gate.wait(); ++ran; }, onDone).ok());
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (gate.waiting.load() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    auto id = pool.submit([&] { ++ran; }, onDone);
    REQUIRE(id.ok());
    for (int i = 0; i < 5; ++i) REQUIRE(pool.submit([&] { ++ran; }, onDone).ok());
    CHECK(pool.cancel(*id));
    CHECK_FALSE(pool.cancel(*id));
    loop.runOnce(0ms);
    CHECK(cancelled == 1);
    // Release the running job from another thread while shutdown() waits.
    // Released from another thread: shutdown() must wait for the running
    // job whether it finishes before or while shutdown() joins.
    std::thread releaser([&] { gate.release(); });
    pool.shutdown();
    releaser.join();
    CHECK(cancelled == 6);  // the one cancelled plus the five still queued
    CHECK(doneOk == 1);     // the running one finished and was delivered
    CHECK(ran == 1);
    auto after = pool.submit([] {}, onDone);
    CHECK_FALSE(after.ok());
    CHECK(after.message() == "worker pool is shut down");
  }
  CHECK(doneOk + cancelled == 7);
}

TEST_CASE("WorkerPool typed call reports cancellation as nullopt") {
  EventLoop loop;
  Gate gate;
  WorkerPool pool(loop, {.threads = 1, .maxQueued = 10});
  std::optional<std::string> got = "unset";
  REQUIRE(pool.submit([&] { gate.wait(); }, [](WorkerPool::JobStatus) {}).ok());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (gate.waiting.load() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  auto id = pool.call([] { return std::string("never"); }, [&](std::optional<std::string> v) { got = v; });
  REQUIRE(id.ok());
  CHECK(pool.cancel(*id));
  loop.runOnce(0ms);
  CHECK_FALSE(got.has_value());
  gate.release();
}
