#include "reactor/EventLoop.h"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>
#include <vector>

#include "../TestUtil.h"

using namespace sbx;
using namespace std::chrono_literals;

TEST_CASE("EventLoop timers on an injected clock fire in order and cancel") {
  ManualClock clock;
  EventLoop loop(&clock);
  std::vector<int> order;
  Timer a = loop.runAfter(30ms, [&] { order.push_back(3); });
  Timer b = loop.runAfter(10ms, [&] { order.push_back(1); });
  Timer c = loop.runAfter(20ms, [&] { order.push_back(2); });
  Timer d = loop.runAfter(15ms, [&] { order.push_back(99); });
  d.cancel();
  {
    Timer e = loop.runAfter(5ms, [&] { order.push_back(98); });
  }  // destroyed: cancelled
  clock.advance(25ms);
  loop.runOnce(0ms);
  CHECK(order == std::vector<int>{1, 2});
  CHECK(a.pending());
  CHECK_FALSE(b.pending());
  clock.advance(10ms);
  loop.runOnce(0ms);
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(loop.stats().timers == 0);
}

TEST_CASE("EventLoop runEvery repeats until its handle dies") {
  ManualClock clock;
  EventLoop loop(&clock);
  int ticks = 0;
  Timer t = loop.runEvery(100ms, [&] { ++ticks; });
  for (int i = 0; i < 5; ++i) {
    clock.advance(100ms);
    loop.runOnce(0ms);
  }
  CHECK(ticks == 5);
  t = Timer();
  clock.advance(1s);
  loop.runOnce(0ms);
  CHECK(ticks == 5);
}

TEST_CASE("EventLoop post from 8 threads delivers every job exactly once") {
  EventLoop loop;
  constexpr int kThreads = 8, kPerThread = 20000;
  std::vector<int> seen(kThreads * kPerThread, 0);
  std::atomic<int> started{0};
  int delivered = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      started.fetch_add(1);
      for (int i = 0; i < kPerThread; ++i) {
        int id = t * kPerThread + i;
        loop.post([&, id] {
          loop.assertInLoopThread();
          ++seen[static_cast<size_t>(id)];
          ++delivered;
        });
      }
    });
  }
  CHECK(test::runUntil(loop, [&] { return delivered == kThreads * kPerThread; }));
  for (auto& th : threads) th.join();
  loop.runOnce(0ms);
  CHECK(delivered == kThreads * kPerThread);
  for (int v : seen) REQUIRE(v == 1);
}

TEST_CASE("EventLoop stop from another thread") {
  EventLoop loop;
  std::thread stopper([&] { loop.stop(); });
  loop.run();  // returns once the stop is seen
  stopper.join();
  CHECK(loop.stopped());
}

namespace {
struct Tracked : DeferredDeletable {
  explicit Tracked(int& n) : n(n) {}
  ~Tracked() override { ++n; }
  int& n;
};
}  // namespace

TEST_CASE("EventLoop watchers: readiness, setEvents, removal inside callback, deferred delete") {
  EventLoop loop;
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  Fd a(sv[0]), b(sv[1]);

  int reads = 0;
  int deleted = 0;
  IoWatcher w;
  w = loop.watch(a.get(), EPOLLIN, [&](uint32_t ev) {
    CHECK((ev & EPOLLIN) != 0);
    char buf[16];
    while (::read(a.get(), buf, sizeof buf) > 0) {
    }
    ++reads;
    // Unwatching ourselves and deferring a deletion from inside the
    // callback must be safe.
    w.reset();
    loop.deferDelete(std::make_unique<Tracked>(deleted));
    CHECK(deleted == 0);
  });
  REQUIRE(::write(b.get(), "x", 1) == 1);
  CHECK(test::runUntil(loop, [&] { return reads == 1; }));
  CHECK(deleted == 1);  // at the end of that turn
  CHECK_FALSE(w.active());
  REQUIRE(::write(b.get(), "y", 1) == 1);
  loop.runOnce(20ms);
  CHECK(reads == 1);  // no longer watched

  // EPOLLOUT only when asked for.
  int writable = 0;
  IoWatcher wo = loop.watch(b.get(), 0, [&](uint32_t ev) {
    if (ev & EPOLLOUT) ++writable;
  });
  loop.runOnce(10ms);
  CHECK(writable == 0);
  wo.setEvents(EPOLLOUT);
  CHECK(test::runUntil(loop, [&] { return writable > 0; }));
  CHECK(wo.events() == EPOLLOUT);
  CHECK(loop.stats().watchers == 1);
  wo.reset();
  CHECK(loop.stats().watchers == 0);
}

TEST_CASE("EventLoop a watcher destroyed by another callback in the same turn is not called") {
  EventLoop loop;
  int sv1[2], sv2[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv1) == 0);
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv2) == 0);
  Fd a1(sv1[0]), b1(sv1[1]), a2(sv2[0]), b2(sv2[1]);
  IoWatcher w1, w2;
  int calls = 0;
  // Whichever fires first removes the other: the stale event must be skipped.
  w1 = loop.watch(a1.get(), EPOLLIN, [&](uint32_t) { ++calls; w2.reset(); w1.reset(); });
  w2 = loop.watch(a2.get(), EPOLLIN, [&](uint32_t) { ++calls; w1.reset(); w2.reset(); });
  REQUIRE(::write(b1.get(), "x", 1) == 1);
  REQUIRE(::write(b2.get(), "x", 1) == 1);
  loop.runOnce(100ms);
  loop.runOnce(10ms);
  CHECK(calls == 1);
}

TEST_CASE("EventLoop defer runs at the end of the turn") {
  EventLoop loop;
  std::vector<int> order;
  loop.post([&] {
    order.push_back(1);
    loop.defer([&] { order.push_back(3); });
    order.push_back(2);
  });
  CHECK(test::runUntil(loop, [&] { return order.size() == 3; }));
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("EventLoop: postNextTurn runs in a later turn, also when posted from I/O or a timer") {
  EventLoop loop;
  uint64_t postedIn = 0, ranIn = 0;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  IoWatcher w = loop.watch(fds[0], EPOLLIN, [&](uint32_t) {
    char c;
    (void)::read(fds[0], &c, 1);
    postedIn = loop.stats().turns;
    loop.postNextTurn([&] { ranIn = loop.stats().turns; });
  });
  REQUIRE(::write(fds[1], "x", 1) == 1);
  REQUIRE(sbx::test::runUntil(loop, [&] { return ranIn != 0; }));
  CHECK(ranIn > postedIn);
  // From a timer.
  ranIn = 0;
  Timer t = loop.runAfter(std::chrono::milliseconds(1), [&] {
    postedIn = loop.stats().turns;
    loop.postNextTurn([&] { ranIn = loop.stats().turns; });
  });
  REQUIRE(sbx::test::runUntil(loop, [&] { return ranIn != 0; }));
  CHECK(ranIn > postedIn);
  // From a posted function: the next batch is a later turn already.
  ranIn = 0;
  loop.post([&] {
    postedIn = loop.stats().turns;
    loop.postNextTurn([&] { ranIn = loop.stats().turns; });
  });
  REQUIRE(sbx::test::runUntil(loop, [&] { return ranIn != 0; }));
  CHECK(ranIn > postedIn);
  ::close(fds[0]);
  ::close(fds[1]);
}
