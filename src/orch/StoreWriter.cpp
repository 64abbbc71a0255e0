#include "orch/StoreWriter.h"

#include <chrono>
#include <iterator>
#include <string>
#include <utility>

namespace sbx::orch {

namespace {
// A full pool queue drains in a few milliseconds; polling faster would only
// burn loop turns.
constexpr auto kRetryDelay = std::chrono::milliseconds(10);
constexpr const char* kPoolShutDown = "worker pool is shut down";
}  // namespace

// What one transaction carries to the pool and back. Shared between the
// pool's work() (which alone touches it while the job runs) and its done().
struct StoreWriter::Job {
  std::vector<StoreChange> changes;
  Status result;
};

StoreWriter::StoreWriter(EventLoop& loop, WorkerPool& pool, Store& store, Options options)
    : loop_(loop), pool_(pool), store_(store), options_(options) {
  loop_.assertInLoopThread();
}

StoreWriter::~StoreWriter() {
  loop_.assertInLoopThread();
  // First of all: every pending closure (deferred kick, the pool's done)
  // checks this and leaves the writer alone from now on.
  alive_.reset();
}

void StoreWriter::submit(std::vector<StoreChange> changes, std::function<void(Status)> done) {
  loop_.assertInLoopThread();
  waiters_.push_back(Waiter{changes.size(), nextSeq_++, std::move(done)});
  for (StoreChange& c : changes) changes_.push_back(std::move(c));
  // While a transaction runs its completion starts the next one.
  if (!inFlight_) scheduleKick();
}

void StoreWriter::submit(StoreChange change, std::function<void(Status)> done) {
  std::vector<StoreChange> changes;
  changes.push_back(std::move(change));
  submit(std::move(changes), std::move(done));
}

void StoreWriter::flush(std::function<void()> done) {
  loop_.assertInLoopThread();
  flushes_.push_back(PendingFlush{nextSeq_ - 1, std::move(done)});
  // Even with nothing pending the callback waits for the kick at the end of
  // the turn: never run inside the caller's own call.
  scheduleKick();
}

void StoreWriter::scheduleKick() {
  if (kickScheduled_) return;
  kickScheduled_ = true;
  // At the end of the turn rather than now: everything submitted in this
  // turn then goes in one transaction, and no callback runs inside submit().
  loop_.defer([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    kickScheduled_ = false;
    kick();
  });
}

void StoreWriter::kick() {
  if (!runReadyFlushes()) return;
  // A pending retry timer owns the next attempt: trying on every turn in
  // between would only hammer a full queue.
  if (inFlight_ || waiters_.empty() || retryTimer_.pending()) return;

  size_t take = 0;
  size_t count = 0;
  for (const Waiter& w : waiters_) {
    if (take > 0 && count + w.changes > options_.maxBatch) break;
    count += w.changes;
    ++take;
  }
  auto job = std::make_shared<Job>();
  job->changes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    job->changes.push_back(std::move(changes_.front()));
    changes_.pop_front();
  }
  // The work captures the Store, not the writer: a writer destroyed while
  // the job runs is never touched from the worker.
  auto submitted =
      pool_.submit([&store = store_, job] { job->result = store.apply(job->changes); },
                   [this, job, alive = std::weak_ptr<bool>(alive_)](WorkerPool::JobStatus status) {
                     if (alive.expired()) return;
                     finishJob(*job, status);
                   },
                   "store-apply");
  if (submitted.ok()) {
    inFlight_ = true;
    inFlightWaiters_ = take;
    return;
  }

  if (submitted.message().find(kPoolShutDown) == std::string::npos) {
    // Queue full (or any other refusal that may pass): the changes go back
    // to the front, in order, and wait for the timer.
    for (auto it = job->changes.rbegin(); it != job->changes.rend(); ++it) {
      changes_.push_front(std::move(*it));
    }
    retryTimer_ = loop_.runAfter(kRetryDelay, [this] { kick(); });
    return;
  }
  // The pool will never run anything again: retrying would wait forever.
  std::vector<Waiter> failed(std::make_move_iterator(waiters_.begin()),
                             std::make_move_iterator(waiters_.end()));
  waiters_.clear();
  changes_.clear();
  complete(std::move(failed), Status(submitted.error()));
}

void StoreWriter::finishJob(Job& job, WorkerPool::JobStatus status) {
  inFlight_ = false;
  Status outcome;
  if (status == WorkerPool::JobStatus::Done) {
    ++transactions_;
    outcome = std::move(job.result);
  } else {
    // Cancelled only happens when the pool shuts down with the job still
    // queued: its changes were never applied.
    outcome = Error(std::string("store transaction cancelled: ") + kPoolShutDown, 503);
  }
  std::vector<Waiter> finished(
      std::make_move_iterator(waiters_.begin()),
      std::make_move_iterator(waiters_.begin() + static_cast<std::ptrdiff_t>(inFlightWaiters_)));
  waiters_.erase(waiters_.begin(),
                 waiters_.begin() + static_cast<std::ptrdiff_t>(inFlightWaiters_));
  inFlightWaiters_ = 0;
  // Callbacks before the next transaction starts: what they submit joins it,
  // and a failure to start it (pool shut down) cannot report on later
  // submissions before these.
  if (!complete(std::move(finished), outcome)) return;
  kick();
}

bool StoreWriter::complete(std::vector<Waiter> finished, const Status& outcome) {
  for (Waiter& w : finished) completing_.push_back(Completed{std::move(w), outcome});
  return drainCompleted();
}

bool StoreWriter::drainCompleted() {
  std::weak_ptr<bool> alive = alive_;
  for (size_t n = 0; !completing_.empty(); ++n) {
    if (n == kCallbacksPerTurn) {
      // The rest in a later turn, after other clients' I/O and timers.
      if (!drainPosted_) {
        drainPosted_ = true;
        loop_.postNextTurn([this, alive] {
          if (alive.expired()) return;
          drainPosted_ = false;
          drainCompleted();
        });
      }
      return runReadyFlushes();
    }
    // Popped before the call: a callback that destroys the writer does not
    // leave us holding a reference into its queue.
    Completed c = std::move(completing_.front());
    completing_.pop_front();
    completedSeq_ = c.waiter.seq;
    if (c.waiter.done) c.waiter.done(c.outcome);
    if (alive.expired()) return false;
  }
  return runReadyFlushes();
}

bool StoreWriter::runReadyFlushes() {
  std::weak_ptr<bool> alive = alive_;
  while (!flushes_.empty() && flushes_.front().after <= completedSeq_) {
    std::function<void()> done = std::move(flushes_.front().done);
    flushes_.pop_front();
    if (done) done();
    if (alive.expired()) return false;
  }
  return true;
}

}  // namespace sbx::orch
