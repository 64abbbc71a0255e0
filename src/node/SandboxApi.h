#pragma once
// SandboxApi: sbxlet's HTTP API (SPEC §1) on the router: node status,
// sandbox create/list/get/statuses/logs/delete, all behind the shared-secret
// bearer check (only GET /healthz is open).
//
// Loop-thread only. Log reads and everything blocking go to the pool.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "http/Router.h"

namespace sbx {
class EventLoop;
class WorkerPool;
}

namespace sbx::node {

class Admission;
class SandboxBackend;

struct SandboxApiOptions {
  std::string sharedSecret;      // required: empty refuses every request
  int64_t logReadLimitContainer = 32 << 20;
  int64_t logReadLimitSandbox = 128 << 20;
  std::string externalAddress;
  size_t maxStatusIds = 200;
  // For GET /v1/node/loop (the loop's health); null: route not served.
  EventLoop* loop = nullptr;
};

// The body of POST /v1/sandboxes/statuses: {"ids": [...]} ("sandbox_ids"
// and "sandboxIds" too), more than `maxIds` refused. Null items are skipped.
// Errors are the 400 messages ("too many ids (max 200)", "ids[1]: expected
// string", the reader's "invalid JSON: ..."). Thread-safe (a reader per
// thread).
Result<std::vector<std::string>> decodeStatusesRequest(std::string_view body, size_t maxIds);

class SandboxApi {
 public:
  SandboxApi(SandboxBackend& provisioner, Admission& admission, WorkerPool& pool,
             SandboxApiOptions options);

  void registerRoutes(http::Router& router);

  // Constant-time comparison of "Bearer <secret>" (exposed for tests).
  static bool authorized(const std::string* header, const std::string& secret);

 private:
  http::Handler guarded(http::Handler h);
  void nodeStatus(const http::ExchangePtr& ex);
  void loopStats(const http::ExchangePtr& ex);
  void createSandbox(const http::ExchangePtr& ex);
  void listSandboxes(const http::ExchangePtr& ex);
  void getSandbox(const http::ExchangePtr& ex);
  void statuses(const http::ExchangePtr& ex);
  void logs(const http::ExchangePtr& ex, bool oneContainer);
  void deleteSandbox(const http::ExchangePtr& ex);
  void reconcile(const http::ExchangePtr& ex);

  SandboxBackend& provisioner_;
  Admission& admission_;
  WorkerPool& pool_;
  SandboxApiOptions options_;
  uint64_t idCounter_ = 0;
};

}  // namespace sbx::node
