#pragma once
// ImageService: the loop's front to image pulls. Images already present are
// used as they are; concurrent requests for one image share a single pull;
// pulls run on the worker pool under `image_pull_timeout`. Failures read
// `pull image "<ref>": <reason>` (SPEC).
//
// Loop-thread only.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/Result.h"
#include "reactor/Clock.h"
#include "runtime/ImagePuller.h"

namespace sbx {
class WorkerPool;
}

namespace sbx::node {

class ImageService {
 public:
  using Done = std::function<void(Result<runtime::ImageInfo>)>;

  ImageService(WorkerPool& pool, runtime::ImagePuller& puller, Duration pullTimeout);

  // `image` as the client wrote it ("alpine:3.20").
  void ensure(const std::string& image, Done done);

  size_t pullsInFlight() const { return waiting_.size(); }
  // Thread-safe: for reconcile's worker job (stale pull leases).
  runtime::ImagePuller& puller() { return puller_; }

 private:
  WorkerPool& pool_;
  runtime::ImagePuller& puller_;
  Duration pullTimeout_;
  std::map<std::string, std::vector<Done>> waiting_;  // by normalized name
};

}  // namespace sbx::node
