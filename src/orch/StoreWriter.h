#pragma once
// StoreWriter: the loop's door to a Store, with group commit. Transactions
// run on the worker pool, one at a time; while one runs, later submissions
// wait and then go together in the next, so a burst of N state transitions
// costs a few fsyncs rather than N. Submissions made in the same loop turn
// go together too: the writer starts a transaction at the end of the turn.
//
// Ordering: changes are applied, and `done` callbacks run, in submission
// order. One job in flight at a time is also what lets a Store that is not
// thread-safe be called from the pool's threads.
//
// Threading: loop-thread only (constructor, every method, destructor). The
// Store is called on a worker thread.
//
// Lifetime: destroying the writer drops what is pending. No callback
// (submit's or flush's) runs after destruction; queued changes are never
// written; a transaction already on the pool still completes there and its
// outcome is ignored (the pool's done for it does not touch the writer). The
// Store must outlive that job: shut the WorkerPool down (it waits for running
// jobs) before destroying the Store, or destroy the writer only when idle().
// The EventLoop and the WorkerPool must outlive the writer.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "base/Result.h"
#include "orch/Store.h"
#include "reactor/EventLoop.h"
#include "reactor/WorkerPool.h"

namespace sbx::orch {

class StoreWriter {
 public:
  struct Options {
    size_t maxBatch = 512;  // changes per transaction; a larger submission goes alone
  };

  // Two constructors rather than `Options options = {}`: GCC cannot use a
  // nested struct's default member initializers in a default argument of
  // the enclosing class.
  StoreWriter(EventLoop& loop, WorkerPool& pool, Store& store, Options options);
  StoreWriter(EventLoop& loop, WorkerPool& pool, Store& store)
      : StoreWriter(loop, pool, store, Options()) {}
  // See "Lifetime" above.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues changes; `done` (may be empty) runs on the loop thread, never
  // inside this call, after the transaction holding them committed (ok) or
  // failed (the error: that transaction's submissions fail, later ones get
  // their own attempt). Changes are applied in submission order; a
  // submission is never split across transactions. While a transaction runs,
  // later submissions wait and then go together in the next one (up to
  // maxBatch changes). When the pool refuses the job (queue full) the writer
  // retries every 10 ms; when the pool is shut down, every waiting
  // submission fails with "worker pool is shut down". An empty submission
  // still takes its turn (its done runs in order).
  void submit(std::vector<StoreChange> changes, std::function<void(Status)> done);
  void submit(StoreChange change, std::function<void(Status)> done);

  // `done` runs on the loop thread, never inside this call, once every
  // submission made before this call has committed or failed (after their
  // callbacks ran).
  void flush(std::function<void()> done);

  // Changes waiting, not yet in a transaction.
  size_t queued() const { return changes_.size(); }
  // Transactions that ran so far (committed or failed).
  uint64_t transactions() const { return transactions_; }
  // Nothing waiting and nothing in flight.
  bool idle() const { return !inFlight_ && waiters_.empty() && completing_.empty(); }

  // Completion callbacks run at most this many per loop turn: a group
  // commit of a thousand submissions would otherwise run a thousand
  // callbacks (HTTP answers, requests to nodes) in one turn and stall every
  // other client of the loop for tens of milliseconds.
  static constexpr size_t kCallbacksPerTurn = 32;

 private:
  struct Waiter {
    size_t changes = 0;  // how many of changes_ are this submission's
    uint64_t seq = 0;
    std::function<void(Status)> done;
  };
  struct PendingFlush {
    uint64_t after = 0;  // runs once completedSeq_ reaches this
    std::function<void()> done;
  };
  struct Job;

  void scheduleKick();
  void kick();
  void finishJob(Job& job, WorkerPool::JobStatus status);
  bool complete(std::vector<Waiter> finished, const Status& outcome);
  // Runs queued completions, kCallbacksPerTurn at most, then posts itself
  // for the rest. False when a callback destroyed the writer.
  bool drainCompleted();
  bool runReadyFlushes();

  EventLoop& loop_;
  WorkerPool& pool_;
  Store& store_;
  Options options_;

  // Every submission not completed yet, oldest first. While a transaction
  // runs, its submissions are the first inFlightWaiters_ of them.
  std::deque<Waiter> waiters_;
  // The changes of the submissions not yet in a transaction, in order.
  std::deque<StoreChange> changes_;
  std::deque<PendingFlush> flushes_;
  // Finished submissions whose callbacks have not run yet, in order.
  struct Completed {
    Waiter waiter;
    Status outcome;
  };
  std::deque<Completed> completing_;
  bool drainPosted_ = false;
  size_t inFlightWaiters_ = 0;
  bool inFlight_ = false;
  bool kickScheduled_ = false;
  uint64_t nextSeq_ = 1;
  uint64_t completedSeq_ = 0;  // submissions up to this one have completed
  uint64_t transactions_ = 0;
  Timer retryTimer_;

  // Lets callbacks that may outlive the writer (deferred kicks, the pool's
  // done) find out that it is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx::orch
