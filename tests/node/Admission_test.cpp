#include "node/Admission.h"

#include <doctest/doctest.h>

#include "json/JsonWriter.h"

using namespace sbx;
using namespace sbx::node;

TEST_CASE("Admission: SPEC's messages, verbatim") {
  // The seed's numbers: 8 CPUs, 90% → 7200m; 7000m used.
  Admission a(HostResources{8000, 47721858844LL}, 90);
  REQUIRE(a.admit("old", 7000, 34359738368LL).ok());
  auto cpu = a.admit("new", 2000, 1);
  REQUIRE_FALSE(cpu.ok());
  CHECK(cpu.message() ==
        "insufficient cpu allocatable: requested=2000m used=7000m limit=7200m (90% of host)");
  auto mem = a.admit("new", 100, 17179869184LL);
  REQUIRE_FALSE(mem.ok());
  CHECK(mem.message() ==
        "insufficient memory allocatable: requested=17179869184 used=34359738368 "
        "limit=42949672959 (90% of host)");
  CHECK(a.usedCpu() == 7000);  // failed admissions reserve nothing
}

TEST_CASE("Admission: exact fit, release, restore, re-admit of one id") {
  Admission a(HostResources{2000, 1000}, 100);
  REQUIRE(a.admit("a", 1500, 500).ok());
  REQUIRE(a.admit("b", 500, 500).ok());  // exactly the rest
  CHECK_FALSE(a.admit("c", 1, 1).ok());
  a.release("a");
  a.release("a");  // idempotent
  CHECK(a.usedCpu() == 500);
  REQUIRE(a.admit("c", 1500, 500).ok());
  a.restore("c", 1000, 400);  // replaces, never double-counts
  CHECK(a.usedCpu() == 1500);
  CHECK(a.usedMemory() == 900);
  json::JsonWriter w;
  a.writeResources(w, "2026-11-28T00:00:00Z", "203.0.113.7");
  CHECK(w.str() ==
        R"({"capacity_cpu_milli":2000,"capacity_memory_bytes":1000,"allocatable_cpu_milli":2000,)"
        R"("allocatable_memory_bytes":1000,"used_cpu_milli":1500,"used_memory_bytes":900,)"
        R"("available_cpu_milli":500,"available_memory_bytes":100,"max_alloc_percent":100,)"
        R"("sandboxes":2,"updated_at":"2026-11-28T00:00:00Z","external":"203.0.113.7"})");
}

TEST_CASE("HostResources::detect sees this machine") {
  auto h = HostResources::detect();
  CHECK(h.cpuMilli >= 1000);
  CHECK(h.memoryBytes > (64LL << 20));
}

TEST_CASE("Admission: addresses of the subnet (gateway counted, network and broadcast not)") {
  Admission a(HostResources{64000, int64_t{1} << 40}, 100);
  a.setAddressPool("10.89.0.0/29");  // 8 addresses: 6 usable, one the gateway's
  CHECK(a.addressesUsable() == 6);
  CHECK(a.addressesInUse() == 1);
  for (int i = 0; i < 5; ++i) REQUIRE(a.admit("s" + std::to_string(i), 1, 1).ok());
  auto full = a.admit("s5", 1, 1);
  REQUIRE(!full.ok());
  CHECK(full.message() == "insufficient ip addresses in subnet 10.89.0.0/29: in_use=6 usable=6");
  a.release("s0");
  CHECK(a.admit("s5", 1, 1).ok());

  Admission big(HostResources{64000, int64_t{1} << 40}, 100);
  big.setAddressPool("10.89.0.0/16");
  CHECK(big.addressesUsable() == 65534);
}
