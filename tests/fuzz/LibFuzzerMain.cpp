// libFuzzer's entry point for a binary that links exactly one harness
// (tests/fuzz/fuzz.mk builds build/fuzz/<name> from <name>_fuzz.cpp and this
// file). Only in the clang build: the unit tests replay the corpus instead.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "FuzzTarget.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const sbx::fuzz::FuzzFunction run = [] {
    const auto& targets = sbx::fuzz::fuzzTargets();
    if (targets.size() != 1) {
      std::fprintf(stderr, "fuzz binary links %zu targets, want exactly 1\n", targets.size());
      std::abort();
    }
    return targets.front().run;
  }();
  run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
