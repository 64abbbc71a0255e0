#pragma once
// Admission: CPU and memory bookkeeping against the node's allocatable
// resources (SPEC §1 "Admission"). capacity = host CPUs × 1000 and host
// memory; allocatable = capacity × max_alloc_percent / 100; used = the sum of
// admitted sandboxes not yet deleted.
//
// Loop-thread only: every check-and-reserve runs on the one loop thread, so
// concurrent creates are admitted atomically without locks.

#include <cstdint>
#include <string>
#include <unordered_map>

#include "base/Result.h"

namespace sbx::json {
class JsonWriter;
}

namespace sbx::node {

struct HostResources {
  int64_t cpuMilli = 0;
  int64_t memoryBytes = 0;
  // This host's online CPUs and physical memory.
  static HostResources detect();
};

class Admission {
 public:
  Admission(HostResources capacity, int maxAllocPercent);

  // Reserves `cpuMilli`/`memoryBytes` for sandbox `id`, or explains why not:
  //   insufficient cpu allocatable: requested=2000m used=7000m limit=7200m (90% of host)
  //   insufficient memory allocatable: requested=... used=... limit=... (90% of host)
  //   insufficient ip addresses in subnet 10.89.0.0/16: in_use=65534 usable=65534
  Status admit(const std::string& id, int64_t cpuMilli, int64_t memoryBytes);
  // The subnet sandbox addresses come from: usable = its size minus the
  // network and broadcast addresses; the gateway counts as in use, and so
  // does every admitted sandbox until it is deleted. Unset: not checked.
  void setAddressPool(std::string subnetCidr);
  int64_t addressesUsable() const { return ipUsable_; }
  int64_t addressesInUse() const { return static_cast<int64_t>(reserved_.size()) + (ipUsable_ > 0 ? 1 : 0); }
  // Re-registers a sandbox found at start (no limit check: it was admitted
  // before the restart and is running).
  void restore(const std::string& id, int64_t cpuMilli, int64_t memoryBytes);
  void release(const std::string& id);

  int64_t allocatableCpu() const { return capacity_.cpuMilli * percent_ / 100; }
  int64_t allocatableMemory() const { return capacity_.memoryBytes * percent_ / 100; }
  int64_t usedCpu() const { return usedCpu_; }
  int64_t usedMemory() const { return usedMemory_; }
  const HostResources& capacity() const { return capacity_; }
  int maxAllocPercent() const { return percent_; }

  // The "resources" object of GET /v1/node/status.
  void writeResources(json::JsonWriter& w, const std::string& updatedAt,
                      const std::string& external) const;

 private:
  struct Reservation {
    int64_t cpu = 0;
    int64_t memory = 0;
  };
  HostResources capacity_;
  int percent_;
  std::string subnet_;
  int64_t ipUsable_ = 0;
  int64_t usedCpu_ = 0;
  int64_t usedMemory_ = 0;
  std::unordered_map<std::string, Reservation> reserved_;
};

}  // namespace sbx::node
