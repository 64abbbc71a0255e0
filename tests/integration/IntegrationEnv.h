#pragma once
// What tests/env/up.sh exported (tools/run-integration.sh sources env.sh).
// A missing variable fails the test: these suites never skip silently.

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

namespace sbx::test {

inline std::string envOrFail(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    FAIL("environment variable " << name
                                 << " is not set: run through tools/run-integration.sh");
  }
  return v;
}

}  // namespace sbx::test
