#pragma once
// Gives freed heap memory back to the kernel now and then.
//
// glibc's malloc keeps what a burst freed (a few hundred connections'
// buffers, ten thousand deleted sandboxes) in its free lists for reuse, so
// a daemon's RSS only ever grows to its high-water mark. malloc_trim(3)
// returns the free pages (madvise) of every arena. It takes milliseconds on
// a large heap, so it runs as a worker-pool job, never on the loop.

#include "reactor/EventLoop.h"
#include "reactor/WorkerPool.h"

namespace sbx::app {

// Every `interval`, one malloc_trim(0) job (skipped while the last one is
// still queued or the pool is full). Keep the Timer for as long as it
// should run.
[[nodiscard]] Timer trimMemoryEvery(EventLoop& loop, WorkerPool& pool, Duration interval);

}  // namespace sbx::app
