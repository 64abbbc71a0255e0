#pragma once
// GET /v1/node/loop (sbxlet) and GET /api/v1/loop (sandboxd-o): the event
// loop's health for benchmarks and operators. Turns so far and the longest
// turn (the worst stall any callback imposed on every other client), with
// the loop thread's own CPU time in that turn, and where the turn with the
// most CPU went (worst_turn: I/O events and time, timers, posted, deferred);
// `?reset=1` starts a new
// measurement window after reading.

#include "http/HttpServer.h"

namespace sbx {
class EventLoop;
}

namespace sbx::app {

void serveLoopStats(const http::ExchangePtr& ex, EventLoop& loop);

}  // namespace sbx::app
