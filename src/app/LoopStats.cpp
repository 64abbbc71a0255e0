#include "app/LoopStats.h"

#include <chrono>

#include "json/JsonWriter.h"
#include "reactor/EventLoop.h"

namespace sbx::app {

void serveLoopStats(const http::ExchangePtr& ex, EventLoop& loop) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  EventLoop::Stats st = loop.stats();
  json::JsonWriter w(256);
  w.beginObject()
      .kv("turns", st.turns)
      .kv("max_stall_us", static_cast<int64_t>(duration_cast<microseconds>(st.maxBusy).count()))
      .kv("max_stall_cpu_us",
          static_cast<int64_t>(duration_cast<microseconds>(st.maxBusyCpu).count()))
      .kv("turns_over_5ms", st.turnsOver5ms)
      .kv("turns_over_5ms_cpu", st.turnsOver5msCpu)
      .key("worst_turn")
      .beginObject()
      .kv("io_events", static_cast<int64_t>(st.worstTurn.ioEvents))
      .kv("io_us", static_cast<int64_t>(duration_cast<microseconds>(st.worstTurn.io).count()))
      .kv("timers_us",
          static_cast<int64_t>(duration_cast<microseconds>(st.worstTurn.timers).count()))
      .kv("posted_us",
          static_cast<int64_t>(duration_cast<microseconds>(st.worstTurn.posted).count()))
      .kv("deferred_us",
          static_cast<int64_t>(duration_cast<microseconds>(st.worstTurn.deferred).count()))
      .endObject()
      .kv("watchers", st.watchers)
      .kv("timers", st.timers)
      .endObject();
  if (ex->request().queryValue("reset") == std::optional<std::string_view>("1"))
    loop.resetMaxBusy();
  ex->respond(200, w.str());
}

}  // namespace sbx::app
