#pragma once
// Fuzz targets: one harness per parser, tests/fuzz/<name>_fuzz.cpp, written
// once and run two ways:
//   - `make fuzz` (tests/fuzz/fuzz.mk): clang + libFuzzer + ASan/UBSan, one
//     binary per harness, LibFuzzerMain.cpp calling the one target it holds;
//   - the unit tests (g++, plain and sanitizer builds): Corpus_test.cpp
//     replays tests/fuzz/corpus/<name>/ and tests/fuzz/crashers/<name>/
//     through every registered target.
//
//   SBX_FUZZ_TARGET(json_reader) {
//     ... use `input` (std::string_view, any bytes) ...
//     SBX_FUZZ_CHECK(roundTripped == original);
//   }
//
// A target must not keep state that changes its behaviour on later inputs
// (reusing a parser or a server is fine), must return normally for any
// input, and reports a broken invariant with SBX_FUZZ_CHECK: it prints the
// condition and aborts, which libFuzzer records as a crash.
//
// Header-only on purpose: the Makefile links tests/**/*_test.cpp and
// tests/fuzz/*_fuzz.cpp into the unit tests and nothing else from here.
// Registration runs in static initialization: not thread-safe, and the order
// between files is unspecified (fuzzTargets() is not sorted).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::fuzz {

using FuzzFunction = void (*)(std::string_view input);

struct FuzzTarget {
  const char* name;
  FuzzFunction run;
};

// Every target linked into this binary.
inline std::vector<FuzzTarget>& fuzzTargets() {
  static std::vector<FuzzTarget> targets;
  return targets;
}

// What the replay is running (a corpus file), named when a check fails.
inline std::string& currentFuzzInput() {
  static std::string name;
  return name;
}

struct FuzzRegistrar {
  FuzzRegistrar(const char* name, FuzzFunction run) { fuzzTargets().push_back({name, run}); }
};

[[noreturn]] inline void fuzzCheckFailed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant failed: %s at %s:%d", condition, file, line);
  if (!currentFuzzInput().empty()) std::fprintf(stderr, " (input %s)", currentFuzzInput().c_str());
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

}  // namespace sbx::fuzz

// Aborts with the condition and its place when `cond` is false. Evaluated in
// every build (not an assert).
#define SBX_FUZZ_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::sbx::fuzz::fuzzCheckFailed(#cond, __FILE__, __LINE__))

// Defines the target `name` (an identifier: the harness, corpus and binary
// name) and registers it. The body follows as a function body.
#define SBX_FUZZ_TARGET(name)                                                                    \
  static void sbxFuzzTarget_##name(std::string_view input);                                      \
  static const ::sbx::fuzz::FuzzRegistrar sbxFuzzRegistrar_##name(#name, &sbxFuzzTarget_##name); \
  static void sbxFuzzTarget_##name(std::string_view input)
