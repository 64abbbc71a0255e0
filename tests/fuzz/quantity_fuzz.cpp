// Resource quantities and durations (base/Quantity.h): any text parses to a
// positive amount or an error, and what the formatters write parses back to
// the same value.

#include <string>

#include "FuzzTarget.h"
#include "base/Quantity.h"

SBX_FUZZ_TARGET(quantity) {
  if (auto cpu = sbx::parseCpuMillis(input); cpu.ok()) {
    SBX_FUZZ_CHECK(*cpu > 0);
    auto again = sbx::parseCpuMillis(sbx::formatCpuMillis(*cpu));
    SBX_FUZZ_CHECK(again.ok() && *again == *cpu);
  } else {
    SBX_FUZZ_CHECK(!cpu.message().empty());
  }

  if (auto memory = sbx::parseMemoryBytes(input); memory.ok()) {
    SBX_FUZZ_CHECK(*memory > 0);
    // No formatter: plain bytes are a spelling of their own.
    auto again = sbx::parseMemoryBytes(std::to_string(*memory));
    SBX_FUZZ_CHECK(again.ok() && *again == *memory);
  } else {
    SBX_FUZZ_CHECK(!memory.message().empty());
  }

  if (auto d = sbx::parseDuration(input); d.ok()) {
    SBX_FUZZ_CHECK(d->count() >= 0);
    const std::string text = sbx::formatDuration(*d);
    auto again = sbx::parseDuration(text);
    SBX_FUZZ_CHECK(again.ok() && *again == *d);
  } else {
    SBX_FUZZ_CHECK(!d.message().empty());
  }
}
