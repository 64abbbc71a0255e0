#include "reactor/TimerQueue.h"

#include <doctest/doctest.h>

#include <random>
#include <vector>

using namespace sbx;
using namespace std::chrono_literals;

TEST_CASE("TimerQueue fires in (deadline, sequence) order") {
  TimerQueue q;
  TimePoint t0(1000s);
  std::vector<int> order;
  q.add(t0 + 30ms, 0ns, [&] { order.push_back(3); });
  q.add(t0 + 10ms, 0ns, [&] { order.push_back(1); });
  q.add(t0 + 20ms, 0ns, [&] { order.push_back(2); });
  q.add(t0 + 10ms, 0ns, [&] { order.push_back(11); });  // same deadline: after 1
  CHECK(q.nextDeadline() == t0 + 10ms);
  CHECK(q.runExpired(t0 + 5ms) == 0);
  CHECK(q.runExpired(t0 + 20ms) == 3);
  CHECK(order == std::vector<int>{1, 11, 2});
  CHECK(q.runExpired(t0 + 1s) == 1);
  CHECK(order == std::vector<int>{1, 11, 2, 3});
  CHECK(q.size() == 0);
  CHECK_FALSE(q.nextDeadline().has_value());
}

TEST_CASE("TimerQueue cancel, stale ids and self-cancel") {
  TimerQueue q;
  TimePoint t0(1000s);
  int fired = 0;
  TimerId a = q.add(t0 + 1ms, 0ns, [&] { ++fired; });
  TimerId b = q.add(t0 + 2ms, 0ns, [&] { ++fired; });
  CHECK(q.cancel(a));
  CHECK_FALSE(q.cancel(a));  // already cancelled
  // The freed slot is reused; the stale id must not cancel the new timer.
  TimerId c = q.add(t0 + 3ms, 0ns, [&] { fired += 10; });
  CHECK(c.slot == a.slot);
  CHECK_FALSE(q.cancel(a));
  CHECK(q.pending(c));
  q.runExpired(t0 + 10ms);
  CHECK(fired == 11);
  CHECK_FALSE(q.pending(b));
  CHECK_FALSE(q.cancel(b));  // already fired

  // A repeating timer that cancels itself from its own callback.
  TimerId self{};
  int ticks = 0;
  self = q.add(t0 + 20ms, 5ms, [&] {
    if (++ticks == 3) CHECK(q.cancel(self));
  });
  for (int i = 0; i < 10; ++i) q.runExpired(t0 + 20ms + i * 5ms);
  CHECK(ticks == 3);
  CHECK(q.size() == 0);
}

TEST_CASE("TimerQueue repeating timers and timers added from callbacks") {
  TimerQueue q;
  TimePoint t0(1000s);
  int ticks = 0;
  TimerId rep = q.add(t0 + 10ms, 10ms, [&] { ++ticks; });
  q.runExpired(t0 + 10ms);
  q.runExpired(t0 + 20ms);
  CHECK(ticks == 2);
  // Fell far behind: fires once, then re-bases on now.
  q.runExpired(t0 + 100ms);
  CHECK(ticks == 3);
  CHECK(q.nextDeadline() == t0 + 110ms);
  CHECK(q.cancel(rep));

  // A callback adding a timer already due does not run it in the same pass.
  int chained = 0;
  std::function<void()> again = [&] {
    ++chained;
    q.add(t0, 0ns, again);
  };
  q.add(t0, 0ns, again);
  CHECK(q.runExpired(t0 + 1s) == 1);
  CHECK(q.runExpired(t0 + 1s) == 1);
  CHECK(chained == 2);
}

TEST_CASE("TimerQueue heap stays ordered under random add/cancel") {
  TimerQueue q;
  std::mt19937 rng(42);
  TimePoint t0(1000s);
  std::vector<TimerId> ids;
  std::vector<int64_t> firedAt;
  for (int i = 0; i < 5000; ++i) {
    int64_t ms = rng() % 10000;
    ids.push_back(q.add(t0 + std::chrono::milliseconds(ms), 0ns, [&, ms] { firedAt.push_back(ms); }));
    if (rng() % 3 == 0) q.cancel(ids[rng() % ids.size()]);
  }
  size_t expected = q.size();
  q.runExpired(t0 + 20s);
  CHECK(firedAt.size() == expected);
  for (size_t i = 1; i < firedAt.size(); ++i) REQUIRE(firedAt[i - 1] <= firedAt[i]);
}
