#include "app/MemoryTrim.h"

#include <malloc.h>

#include <memory>

namespace sbx::app {

Timer trimMemoryEvery(EventLoop& loop, WorkerPool& pool, Duration interval) {
  auto busy = std::make_shared<bool>(false);
  return loop.runEvery(interval, [&pool, busy] {
    if (*busy) return;
    auto queued = pool.submit([] { ::malloc_trim(0); }, [busy](WorkerPool::JobStatus) { *busy = false; },
                              "malloc-trim");
    *busy = queued.ok();
  });
}

}  // namespace sbx::app
