#include "base/Quantity.h"

#include <doctest/doctest.h>

using namespace sbx;
using namespace std::chrono_literals;

TEST_CASE("parseCpuMillis") {
  CHECK(*parseCpuMillis("250m") == 250);
  CHECK(*parseCpuMillis("1000m") == 1000);
  CHECK(*parseCpuMillis("0.25") == 250);
  CHECK(*parseCpuMillis("0.5") == 500);
  CHECK(*parseCpuMillis("1") == 1000);
  CHECK(*parseCpuMillis("2") == 2000);
  CHECK(*parseCpuMillis("1.5") == 1500);
  CHECK(*parseCpuMillis(".1") == 100);
  CHECK_FALSE(parseCpuMillis("").ok());
  CHECK_FALSE(parseCpuMillis("m").ok());
  CHECK_FALSE(parseCpuMillis("0").ok());
  CHECK_FALSE(parseCpuMillis("0m").ok());
  CHECK_FALSE(parseCpuMillis("-1").ok());
  CHECK_FALSE(parseCpuMillis("0.0001").ok());
  CHECK_FALSE(parseCpuMillis("1.5m").ok());
  CHECK_FALSE(parseCpuMillis("abc").ok());
  CHECK_FALSE(parseCpuMillis("1 ").ok());
  CHECK_FALSE(parseCpuMillis("99999999999999999999").ok());
  CHECK_FALSE(parseCpuMillis("9223372036854775807").ok());  // overflows as millicores
  CHECK(parseCpuMillis("x").message() == "invalid cpu quantity \"x\": expected e.g. 250m, 0.5 or 2");
}

TEST_CASE("parseMemoryBytes") {
  CHECK(*parseMemoryBytes("128Mi") == 128LL << 20);
  CHECK(*parseMemoryBytes("1Gi") == 1LL << 30);
  CHECK(*parseMemoryBytes("128M") == 128000000);
  CHECK(*parseMemoryBytes("1G") == 1000000000);
  CHECK(*parseMemoryBytes("512Ki") == 512 * 1024);
  CHECK(*parseMemoryBytes("1k") == 1000);
  CHECK(*parseMemoryBytes("1073741824") == 1073741824);
  CHECK(*parseMemoryBytes("1.5Gi") == 3LL << 29);
  CHECK(*parseMemoryBytes("7Ei") == 7LL << 60);
  CHECK_FALSE(parseMemoryBytes("8Ei").ok());
  CHECK_FALSE(parseMemoryBytes("").ok());
  CHECK_FALSE(parseMemoryBytes("Mi").ok());
  CHECK_FALSE(parseMemoryBytes("0").ok());
  CHECK_FALSE(parseMemoryBytes("1.5").ok());  // not whole bytes
  CHECK_FALSE(parseMemoryBytes("12XB").ok());
  CHECK_FALSE(parseMemoryBytes("-1Mi").ok());
  CHECK(parseMemoryBytes("lots").message() ==
        "invalid memory quantity \"lots\": expected e.g. 128Mi, 1Gi, 128M or 1G");
}

TEST_CASE("parseDuration and formatDuration") {
  CHECK(*parseDuration("250ms") == 250ms);
  CHECK(*parseDuration("10s") == 10s);
  CHECK(*parseDuration("4m") == 4min);
  CHECK(*parseDuration("8m") == 8min);
  CHECK(*parseDuration("1h30m") == 90min);
  CHECK(*parseDuration("1.5s") == 1500ms);
  CHECK(*parseDuration("0s") == 0s);
  CHECK(*parseDuration("15us") == 15us);
  CHECK_FALSE(parseDuration("").ok());
  CHECK_FALSE(parseDuration("10").ok());
  CHECK_FALSE(parseDuration("s").ok());
  CHECK_FALSE(parseDuration("10x").ok());
  CHECK_FALSE(parseDuration("-1s").ok());
  CHECK_FALSE(parseDuration("99999999999h").ok());
  CHECK(formatDuration(250ms) == "250ms");
  CHECK(formatDuration(10s) == "10s");
  CHECK(formatDuration(4min) == "4m");
  CHECK(formatDuration(90min) == "1h30m");
  CHECK(formatDuration(1500ms) == "1.5s");
  CHECK(formatDuration(0s) == "0s");
  for (std::chrono::nanoseconds d : {std::chrono::nanoseconds(1ns), std::chrono::nanoseconds(999us),
                                     std::chrono::nanoseconds(1s), std::chrono::nanoseconds(61s),
                                     std::chrono::nanoseconds(3601s),
                                     std::chrono::nanoseconds(15s + 250ms)}) {
    CHECK(*parseDuration(formatDuration(d)) == d);
  }
  CHECK(formatCpuMillis(250) == "250m");
}
