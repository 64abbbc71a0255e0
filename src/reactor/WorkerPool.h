#pragma once
// WorkerPool: a few threads for blocking work (containerd gRPC calls, CNI
// plugin execs, fsync). libuv's model: work() runs on a worker, done(status)
// runs on the loop thread afterwards; finished jobs come back through an
// eventfd of the pool's own, one write per batch.
//
// The queue is bounded: submit() on a full queue fails at once (the caller
// answers 503/429 or retries later) instead of blocking the loop.
//
// Threading: the constructor, submit(), cancel(), shutdown() and the
// destructor are loop-thread only. work() runs on a worker thread with every
// signal blocked. done() runs exactly once per accepted job, on the loop
// thread: with Done after work() ran, with Cancelled if it never will
// (cancel() or shutdown() while still queued).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "base/Result.h"
#include "reactor/EventLoop.h"

namespace sbx {

class WorkerPool {
 public:
  enum class JobStatus { Done, Cancelled };
  using JobId = uint64_t;
  using Work = std::function<void()>;
  using Done = std::function<void(JobStatus)>;

  struct Options {
    size_t threads = 4;
    size_t maxQueued = 1024;  // jobs waiting for a worker
  };

  WorkerPool(EventLoop& loop, Options options);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues a job. Error (code 503) "worker queue full (N jobs)" when the
  // queue is at capacity, or "worker pool is shut down".
  Result<JobId> submit(Work work, Done done, const char* tag = "job");

  // Typed convenience: done receives work()'s result, or nullopt if the job
  // was cancelled before it ran.
  template <class F, class D>
  Result<JobId> call(F work, D done, const char* tag = "job") {
    using T = std::invoke_result_t<F>;
    auto slot = std::make_shared<std::optional<T>>();
    return submit([slot, w = std::move(work)]() mutable { slot->emplace(w()); },
                  [slot, d = std::move(done)](JobStatus st) mutable {
                    // Checking has_value() (not only the status) also keeps
                    // GCC 12's -Wmaybe-uninitialized from misfiring here.
                    if (st == JobStatus::Done && slot->has_value()) {
                      d(std::optional<T>(std::in_place, std::move(**slot)));
                    } else {
                      d(std::optional<T>());
                    }
                  },
                  tag);
  }

  // Cancels a job that has not started: its done(Cancelled) runs at the end
  // of this loop turn. Returns false if it is running or finished.
  bool cancel(JobId id);

  // Stops accepting jobs, cancels the queued ones, waits for running ones
  // and delivers every outstanding done() before returning. Idempotent.
  void shutdown();

  size_t queued() const;
  size_t threads() const { return threads_.size(); }

 private:
  struct Job {
    JobId id = 0;
    Work work;
    Done done;
    const char* tag = "job";
    JobStatus status = JobStatus::Done;
  };

  void workerMain();
  void drainCompleted();

  EventLoop& loop_;
  Options options_;
  Fd notifyFd_;
  IoWatcher notifyWatcher_;
  std::vector<std::thread> threads_;

  mutable std::mutex mutex_;
  std::condition_variable workAvailable_;
  std::deque<Job> queue_;      // guarded by mutex_
  std::vector<Job> completed_;  // guarded by mutex_
  bool stopping_ = false;       // guarded by mutex_

  JobId nextId_ = 1;
  bool shutDown_ = false;
};

}  // namespace sbx
