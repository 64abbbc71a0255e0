#include "node/Admission.h"

#include <unistd.h>

#include <cstdlib>

#include "json/JsonWriter.h"

namespace sbx::node {

HostResources HostResources::detect() {
  HostResources r;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long pageSize = ::sysconf(_SC_PAGESIZE);
  r.cpuMilli = (cpus > 0 ? cpus : 1) * 1000;
  r.memoryBytes = (pages > 0 && pageSize > 0) ? static_cast<int64_t>(pages) * pageSize : 0;
  return r;
}

Admission::Admission(HostResources capacity, int maxAllocPercent)
    : capacity_(capacity), percent_(maxAllocPercent) {}

Status Admission::admit(const std::string& id, int64_t cpuMilli, int64_t memoryBytes) {
  const std::string pct = " (" + std::to_string(percent_) + "% of host)";
  if (cpuMilli > allocatableCpu() - usedCpu_) {
    return Error("insufficient cpu allocatable: requested=" + std::to_string(cpuMilli) +
                 "m used=" + std::to_string(usedCpu_) + "m limit=" +
                 std::to_string(allocatableCpu()) + "m" + pct);
  }
  if (memoryBytes > allocatableMemory() - usedMemory_) {
    return Error("insufficient memory allocatable: requested=" + std::to_string(memoryBytes) +
                 " used=" + std::to_string(usedMemory_) +
                 " limit=" + std::to_string(allocatableMemory()) + pct);
  }
  if (ipUsable_ > 0 && !reserved_.count(id) && addressesInUse() + 1 > ipUsable_) {
    return Error("insufficient ip addresses in subnet " + subnet_ + ": in_use=" +
                 std::to_string(addressesInUse()) + " usable=" + std::to_string(ipUsable_));
  }
  restore(id, cpuMilli, memoryBytes);
  return {};
}

void Admission::setAddressPool(std::string subnetCidr) {
  subnet_ = std::move(subnetCidr);
  ipUsable_ = 0;
  size_t slash = subnet_.find('/');
  if (slash == std::string::npos) return;
  int prefix = std::atoi(subnet_.c_str() + slash + 1);
  if (prefix < 1 || prefix > 30) return;
  ipUsable_ = (int64_t{1} << (32 - prefix)) - 2;
}

void Admission::restore(const std::string& id, int64_t cpuMilli, int64_t memoryBytes) {
  release(id);
  reserved_[id] = Reservation{cpuMilli, memoryBytes};
  usedCpu_ += cpuMilli;
  usedMemory_ += memoryBytes;
}

void Admission::release(const std::string& id) {
  auto it = reserved_.find(id);
  if (it == reserved_.end()) return;
  usedCpu_ -= it->second.cpu;
  usedMemory_ -= it->second.memory;
  reserved_.erase(it);
}

void Admission::writeResources(json::JsonWriter& w, const std::string& updatedAt,
                               const std::string& external) const {
  w.beginObject()
      .kv("capacity_cpu_milli", capacity_.cpuMilli)
      .kv("capacity_memory_bytes", capacity_.memoryBytes)
      .kv("allocatable_cpu_milli", allocatableCpu())
      .kv("allocatable_memory_bytes", allocatableMemory())
      .kv("used_cpu_milli", usedCpu_)
      .kv("used_memory_bytes", usedMemory_)
      .kv("available_cpu_milli", allocatableCpu() - usedCpu_)
      .kv("available_memory_bytes", allocatableMemory() - usedMemory_)
      .kv("max_alloc_percent", percent_)
      .kv("sandboxes", static_cast<int64_t>(reserved_.size()));
  if (ipUsable_ > 0) {
    w.kv("subnet_cidr", subnet_).kv("ip_in_use", addressesInUse()).kv("ip_usable", ipUsable_);
  }
  w
      .kv("updated_at", updatedAt);
  if (!external.empty()) w.kv("external", external);
  w.endObject();
}

}  // namespace sbx::node
